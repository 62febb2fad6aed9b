"""The process chain (formulation -> coating -> drying -> calendering): by hand, conservation, vectorisation, ProcessModel."""

import numpy as np
import pytest

from microdesign.process import ProcessModel, evaluate_process
from microdesign.process.chain import DEFAULT_INPUTS


def test_chain_thickness_and_density_follow_from_loading():
    s = evaluate_process({})
    # h = m_dry/(rho_solids (1 - eps)); density = m_dry/h = rho_solids (1 - eps)
    m_dry_g_cm2 = s["dry_loading_mg_cm2"] * 1e-3
    assert s["thickness_m"] == pytest.approx(m_dry_g_cm2 / (s["solids_density_g_cm3"] * (1 - s["porosity"])) / 100.0, rel=1e-12)
    assert s["coating_density_g_cm3"] == pytest.approx(s["solids_density_g_cm3"] * (1 - s["porosity"]), rel=1e-12)
    assert s["dry_coating_density_g_cm3"] == pytest.approx(s["solids_density_g_cm3"] * (1 - s["dry_porosity"]), rel=1e-12)
    # the loading is conserved through calendering: m = rho h before and after
    assert s["dry_coating_density_g_cm3"] * s["dry_thickness_m"] == pytest.approx(s["coating_density_g_cm3"] * s["thickness_m"], rel=1e-12)


def test_chain_vectorised_matches_scalar():
    loads = np.array([0.0, 300.0, 1500.0])
    vec = evaluate_process({"line_load_N_mm": loads})
    for i, q in enumerate(loads):
        sca = evaluate_process({"line_load_N_mm": float(q)})
        for k, v in sca.items():
            assert vec[k][i] == pytest.approx(v, rel=1e-12), k
    assert set(DEFAULT_INPUTS) >= {"line_load_N_mm", "min_porosity", "compaction_resistance_N_mm"}


@pytest.mark.parametrize("w_am", [0.85, 0.9, 0.96, 0.99])
@pytest.mark.parametrize("q", [0.0, 200.0, 2000.0])
def test_volume_balance(w_am, q):
    s = evaluate_process({"am_weight_fraction": w_am, "line_load_N_mm": q})
    assert s["porosity"] + s["am_volume_fraction"] + s["cbd_volume_fraction"] == pytest.approx(1.0, abs=1e-12)
    assert s["cbd_volume_fraction"] == pytest.approx(s["conductive_additive_volume_fraction"] + s["binder_volume_fraction"])


def test_process_model_evaluate_changes():
    m = ProcessModel()
    base = m.evaluate()
    harder = m.evaluate(line_load_N_mm=1500.0)
    assert harder.porosity < base.porosity
    assert harder.dry_loading_mg_cm2 == pytest.approx(base.dry_loading_mg_cm2)
