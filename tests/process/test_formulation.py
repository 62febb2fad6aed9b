"""Formulation: solids and slurry densities, phase volume fractions and the weight-fraction split, by hand."""

import pytest

from microdesign.process.formulation import Formulation


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
