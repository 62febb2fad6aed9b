"""Slot-die coating: wet film thickness and loadings.

Equations (docs/process_model.md; Thomitzek et al., Sustainability 14 (2022) 1530, slot-die coating step;
the pre-metered film of a slot die is the volume flow spread over web speed and coating width):

* wet film thickness  h_wet = V̇ / (v · w)
* wet loading         m_wet = ρ_slurry · h_wet
* dry loading         m_dry = m_wet · x_solids
"""

from __future__ import annotations

import numpy as np

from microdesign.errors import ArrayLike, check_fraction, check_positive

_ML_MIN_TO_M3_S = 1e-6 / 60.0
_M_MIN_TO_M_S = 1.0 / 60.0
_MM_TO_M = 1e-3
_KG_M2_TO_MG_CM2 = 100.0  # 1 kg.m-2 = 1e6 mg / 1e4 cm2


def wet_film_thickness_m(flow_rate_mL_min: ArrayLike, web_speed_m_min: ArrayLike, coating_width_mm: ArrayLike) -> ArrayLike:
    """h_wet = V̇/(v·w) [m].

    Args:
        flow_rate_mL_min: slurry volume flow V̇ [mL.min-1].
        web_speed_m_min: web (substrate) speed v [m.min-1].
        coating_width_mm: coated width w [mm].

    Raises:
        ConfigError: a non-positive flow, speed or width.
    """
    check_positive("flow_rate_mL_min", flow_rate_mL_min, "slot-die coating")
    check_positive("web_speed_m_min", web_speed_m_min, "slot-die coating")
    check_positive("coating_width_mm", coating_width_mm, "slot-die coating")
    flow = np.asarray(flow_rate_mL_min, dtype=float) * _ML_MIN_TO_M3_S
    speed = np.asarray(web_speed_m_min, dtype=float) * _M_MIN_TO_M_S
    width = np.asarray(coating_width_mm, dtype=float) * _MM_TO_M
    return flow / (speed * width)


def wet_loading_mg_cm2(slurry_density_g_cm3: ArrayLike, wet_film_thickness: ArrayLike) -> ArrayLike:
    """m_wet = ρ_slurry · h_wet [mg.cm-2] (ρ in g.cm-3, h in m)."""
    check_positive("slurry_density_g_cm3", slurry_density_g_cm3, "slot-die coating")
    density_kg_m3 = np.asarray(slurry_density_g_cm3, dtype=float) * 1000.0
    return density_kg_m3 * wet_film_thickness * _KG_M2_TO_MG_CM2


def dry_loading_mg_cm2(wet_loading: ArrayLike, solids_content: ArrayLike) -> ArrayLike:
    """m_dry = m_wet · x_solids [mg.cm-2].

    Raises:
        ConfigError: solids content not in the open interval (0, 1).
    """
    check_fraction("solids_content", solids_content, "slot-die coating", open_low=True, open_high=True)
    return wet_loading * np.asarray(solids_content, dtype=float)
