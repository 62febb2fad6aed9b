"""The process chain: formulation -> slot-die coating -> drying -> calendering -> electrode structure.

:func:`evaluate_process` is vectorised: every input may be a scalar or a numpy array ``n`` (the
Monte Carlo of :mod:`microdesign.process.tolerance` passes arrays). :class:`ProcessModel` is the
config-built stage object (``conf/process/*.yaml``). Equations and sources: the modules
:mod:`~microdesign.process.formulation`, :mod:`~microdesign.process.coating`,
:mod:`~microdesign.process.drying`, :mod:`~microdesign.process.calendering`; docs/process_model.md.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from microdesign.errors import ArrayLike, ConfigError
from microdesign.process.calendering import calendered_porosity
from microdesign.process.coating import dry_loading_mg_cm2, wet_film_thickness_m, wet_loading_mg_cm2
from microdesign.process.drying import ConstantDryingPorosity, DryingModel
from microdesign.process.formulation import (C65_DENSITY_G_CM3, NMC811_DENSITY_G_CM3, NMP_DENSITY_G_CM3,
                                             PVDF_DENSITY_G_CM3, Formulation)
from microdesign.process.linked import press_density_g_cm3, thickness_m

#: Process inputs and their defaults. Sources: formulation densities and solids content, see
#: :mod:`microdesign.process.formulation`; calendering, :mod:`microdesign.process.calendering`.
#: Coating flow, speed and width are chosen so that the dry loading (≈ 23.9 mg.cm-2) and the
#: calendered thickness (≈ 80 µm) are close to the Chen2020 LG M50 cathode (75.6 µm).
DEFAULT_INPUTS: dict[str, float] = {
    "am_weight_fraction": 0.96,
    "carbon_to_binder_weight_ratio": 1.0,
    "am_density_g_cm3": NMC811_DENSITY_G_CM3,
    "conductive_additive_density_g_cm3": C65_DENSITY_G_CM3,
    "binder_density_g_cm3": PVDF_DENSITY_G_CM3,
    "solvent_density_g_cm3": NMP_DENSITY_G_CM3,
    "solids_content": 0.65,
    "flow_rate_mL_min": 536.0,
    "web_speed_m_min": 10.0,
    "coating_width_mm": 300.0,
    "line_load_N_mm": 500.0,
    "min_porosity": 0.20,
    "compaction_resistance_N_mm": 700.0,
}

OUTPUTS: tuple[str, ...] = (
    "solids_density_g_cm3", "slurry_density_g_cm3", "wet_film_thickness_m", "wet_loading_mg_cm2",
    "dry_loading_mg_cm2", "dry_porosity", "dry_thickness_m", "dry_coating_density_g_cm3",
    "porosity", "thickness_m", "coating_density_g_cm3", "am_volume_fraction", "cbd_volume_fraction",
    "conductive_additive_volume_fraction", "binder_volume_fraction",
)


def _coating_thickness_m(mass_loading_mg_cm2: ArrayLike, solids_density_g_cm3: ArrayLike, porosity: ArrayLike) -> ArrayLike:
    """h = m_dry/(ρ_solids(1 − ε)): the linked-parameter thickness with PD = ρ_solids(1 − ε)."""
    return thickness_m(mass_loading_mg_cm2, press_density_g_cm3(porosity, solids_density_g_cm3))


def evaluate_process(inputs: Mapping[str, ArrayLike], drying: DryingModel | None = None) -> dict[str, ArrayLike]:
    """Run the process chain.

    Args:
        inputs: every key of :data:`DEFAULT_INPUTS` (missing keys take the default); unknown keys are
            an error except ``dry_porosity`` (read by the drying model).
        drying: the drying meta-model (default :class:`ConstantDryingPorosity` ε_dry = 0.50).

    Returns:
        Every key of :data:`OUTPUTS`, each a float or an array of the inputs' shape. Densities g.cm-3,
        loadings mg.cm-2, thicknesses m; volume fractions of pore + AM + CBD sum to 1.

    Raises:
        ConfigError: an unknown input or any invalid value (named), before computing anything.
    """
    unknown = set(inputs) - set(DEFAULT_INPUTS) - {"dry_porosity"}
    if unknown:
        name = sorted(unknown)[0]
        raise ConfigError(name, inputs[name], f"one of the process inputs {sorted(DEFAULT_INPUTS)}", "process")
    x = {**DEFAULT_INPUTS, **inputs}
    drying = drying or ConstantDryingPorosity()

    formulation = Formulation.from_am_weight_fraction(
        x["am_weight_fraction"], carbon_to_binder_weight_ratio=x["carbon_to_binder_weight_ratio"],
        am_density_g_cm3=x["am_density_g_cm3"], conductive_additive_density_g_cm3=x["conductive_additive_density_g_cm3"],
        binder_density_g_cm3=x["binder_density_g_cm3"], solvent_density_g_cm3=x["solvent_density_g_cm3"],
        solids_content=x["solids_content"],
    ) if np.ndim(x["carbon_to_binder_weight_ratio"]) == 0 else _formulation_array_ratio(x)
    rho_solids = formulation.solids_density_g_cm3
    rho_slurry = formulation.slurry_density_g_cm3

    h_wet = wet_film_thickness_m(x["flow_rate_mL_min"], x["web_speed_m_min"], x["coating_width_mm"])
    m_wet = wet_loading_mg_cm2(rho_slurry, h_wet)
    m_dry = dry_loading_mg_cm2(m_wet, x["solids_content"])

    eps_dry = drying.dry_porosity(x)
    h_dry = _coating_thickness_m(m_dry, rho_solids, eps_dry)

    eps = calendered_porosity(eps_dry, x["line_load_N_mm"], x["min_porosity"], x["compaction_resistance_N_mm"])
    h = _coating_thickness_m(m_dry, rho_solids, eps)
    phases = formulation.phase_volume_fractions(eps)

    out = {
        "solids_density_g_cm3": rho_solids,
        "slurry_density_g_cm3": rho_slurry,
        "wet_film_thickness_m": h_wet,
        "wet_loading_mg_cm2": m_wet,
        "dry_loading_mg_cm2": m_dry,
        "dry_porosity": eps_dry,
        "dry_thickness_m": h_dry,
        "dry_coating_density_g_cm3": m_dry * 1e-3 / (h_dry * 100.0),
        "porosity": eps,
        "thickness_m": h,
        "coating_density_g_cm3": m_dry * 1e-3 / (h * 100.0),
        "am_volume_fraction": phases["active_material"],
        "cbd_volume_fraction": phases["cbd"],
        "conductive_additive_volume_fraction": phases["conductive_additive"],
        "binder_volume_fraction": phases["binder"],
    }
    scalar = all(np.ndim(v) == 0 for v in x.values())
    return {k: (float(v) if scalar else np.broadcast_to(np.asarray(v, dtype=float), _shape(x)).copy())
            for k, v in out.items()}


def _shape(x: Mapping[str, ArrayLike]) -> tuple[int, ...]:
    return np.broadcast_shapes(*(np.shape(v) for v in x.values()))


def _formulation_array_ratio(x: Mapping[str, ArrayLike]) -> Formulation:
    """Formulation when the carbon:binder ratio is itself an array (Monte Carlo over it)."""
    ratio = np.asarray(x["carbon_to_binder_weight_ratio"], dtype=float)
    if (ratio <= 0).any() or not np.isfinite(ratio).all():
        raise ConfigError("carbon_to_binder_weight_ratio", float(ratio.min()), "> 0", "formulation")
    rest = 1.0 - np.asarray(x["am_weight_fraction"], dtype=float)
    carbon = rest * ratio / (1.0 + ratio)
    return Formulation(am_weight_fraction=x["am_weight_fraction"], conductive_additive_weight_fraction=carbon,
                       binder_weight_fraction=rest - carbon, am_density_g_cm3=x["am_density_g_cm3"],
                       conductive_additive_density_g_cm3=x["conductive_additive_density_g_cm3"],
                       binder_density_g_cm3=x["binder_density_g_cm3"],
                       solvent_density_g_cm3=x["solvent_density_g_cm3"], solids_content=x["solids_content"])


@dataclass(frozen=True)
class ElectrodeStructure:
    """Structure of one calendered cathode coating (one side), as :func:`evaluate_process` computes it.

    Units: densities g.cm-3, loadings mg.cm-2, thicknesses m, fractions 1.
    """

    solids_density_g_cm3: float
    slurry_density_g_cm3: float
    wet_film_thickness_m: float
    wet_loading_mg_cm2: float
    dry_loading_mg_cm2: float
    dry_porosity: float
    dry_thickness_m: float
    dry_coating_density_g_cm3: float
    porosity: float
    thickness_m: float
    coating_density_g_cm3: float
    am_volume_fraction: float
    cbd_volume_fraction: float
    conductive_additive_volume_fraction: float
    binder_volume_fraction: float

    def to_dict(self) -> dict[str, float]:
        return asdict(self)


class ProcessModel:
    """Config-built process-to-structure stage.

    Args:
        inputs: base process inputs (keys of :data:`DEFAULT_INPUTS`; missing ones take defaults).
        drying: drying meta-model (default constant ε_dry = 0.50).
        tolerances: input name -> :class:`~microdesign.process.tolerance.Tolerance` or its dict form
            (``{distribution: normal, relative: 0.02}``).

    Raises:
        ConfigError: an unknown input, an invalid value, or a tolerance on an unknown input (named),
            at construction.
    """

    def __init__(self, inputs: Mapping[str, float] | None = None, drying: DryingModel | None = None,
                 tolerances: Mapping[str, Any] | None = None):
        from microdesign.process.tolerance import Tolerance

        self.inputs = {**DEFAULT_INPUTS, **dict(inputs or {})}
        self.drying = drying or ConstantDryingPorosity()
        self.tolerances = {k: (v if isinstance(v, Tolerance) else Tolerance(**dict(v)))
                           for k, v in dict(tolerances or {}).items()}
        for name in self.tolerances:
            if name not in DEFAULT_INPUTS and name != "dry_porosity":
                raise ConfigError(f"tolerances.{name}", name, f"one of the process inputs {sorted(DEFAULT_INPUTS)}", "process")
        self.evaluate()  # validate the base point now, before any expensive work

    def evaluate(self, **changes: float) -> ElectrodeStructure:
        """The structure at the base inputs with ``changes`` applied."""
        return ElectrodeStructure(**evaluate_process({**self.inputs, **changes}, self.drying))

    def propagate(self, n_samples: int = 10_000, seed: int = 0):
        """Monte Carlo of the configured tolerances through the chain (see :func:`~microdesign.process.tolerance.propagate`)."""
        from microdesign.process.tolerance import propagate

        base = dict(self.inputs)
        if "dry_porosity" in self.tolerances and "dry_porosity" not in base:
            base["dry_porosity"] = float(self.drying.dry_porosity(base))
        return propagate(lambda x: evaluate_process(x, self.drying), base, self.tolerances,
                         n_samples=n_samples, seed=seed)
