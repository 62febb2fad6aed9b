"""Each process-model equation against a value computed by hand (DESIGN.md §3.1)."""

import math

import numpy as np
import pytest

from microdesign.process.calendering import calendered_porosity, line_load_for_porosity
from microdesign.process.coating import dry_loading_mg_cm2, wet_film_thickness_m, wet_loading_mg_cm2
from microdesign.process.formulation import Formulation
from microdesign.process.chain import DEFAULT_INPUTS, evaluate_process


def test_solids_and_slurry_density_by_hand():
    f = Formulation(0.90, 0.05, 0.05, am_density_g_cm3=5.0, conductive_additive_density_g_cm3=2.0,
                    binder_density_g_cm3=1.8, solvent_density_g_cm3=1.0, solids_content=0.6)
    specific_volume = 0.90 / 5.0 + 0.05 / 2.0 + 0.05 / 1.8  # 0.18 + 0.025 + 0.027777...
    assert f.solids_density_g_cm3 == pytest.approx(1 / 0.2327777777777778, rel=1e-12)
    assert f.solids_density_g_cm3 == pytest.approx(1 / specific_volume, rel=1e-12)
    assert f.slurry_density_g_cm3 == pytest.approx(1 / (0.6 * specific_volume + 0.4 / 1.0), rel=1e-12)


def test_phase_volume_fractions_by_hand():
    f = Formulation(0.90, 0.05, 0.05, am_density_g_cm3=5.0, conductive_additive_density_g_cm3=2.0,
                    binder_density_g_cm3=1.8)
    x = f.phase_volume_fractions(0.3)
    total = 0.18 + 0.025 + 0.05 / 1.8
    assert x["active_material"] == pytest.approx(0.7 * 0.18 / total, rel=1e-12)
    assert x["cbd"] == pytest.approx(0.7 * (0.025 + 0.05 / 1.8) / total, rel=1e-12)
    assert x["pore"] + x["active_material"] + x["cbd"] == pytest.approx(1.0, abs=1e-12)


def test_from_am_weight_fraction_splits_rest_by_ratio():
    f = Formulation.from_am_weight_fraction(0.94, carbon_to_binder_weight_ratio=2.0)
    assert f.conductive_additive_weight_fraction == pytest.approx(0.04)
    assert f.binder_weight_fraction == pytest.approx(0.02)


def test_slot_die_coating_by_hand():
    # 600 mL/min over 0.25 m at 12 m/min: 1e-5 m3/s / (0.2 m/s * 0.25 m) = 2e-4 m
    h = wet_film_thickness_m(600.0, 12.0, 250.0)
    assert h == pytest.approx(2.0e-4, rel=1e-12)
    # 2 g/cm3 = 2000 kg/m3; 2000 * 2e-4 = 0.4 kg/m2 = 40 mg/cm2
    m_wet = wet_loading_mg_cm2(2.0, h)
    assert m_wet == pytest.approx(40.0, rel=1e-12)
    assert dry_loading_mg_cm2(m_wet, 0.65) == pytest.approx(26.0, rel=1e-12)


def test_calendering_meyer_by_hand_and_inverse():
    eps = calendered_porosity(0.5, 700.0, 0.2, 700.0)
    assert eps == pytest.approx(0.2 + 0.3 * math.exp(-1.0), rel=1e-12)
    assert line_load_for_porosity(eps, 0.5, 0.2, 700.0) == pytest.approx(700.0, rel=1e-12)
    assert calendered_porosity(0.5, 0.0, 0.2, 700.0) == pytest.approx(0.5)


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
