"""Linked parameters (mass loading, press density -> thickness, porosity): round trips, edits, the Chen2020 recast."""

import pytest

from microdesign.process import LinkedParameters


def test_linked_parameters_inverse_round_trip():
    lp = LinkedParameters(mass_loading_mg_cm2=25.0, press_density_g_cm3=3.2, crystallographic_density_g_cm3=4.75,
                          active_fraction=0.93)
    back = LinkedParameters.from_structure(lp.thickness_m, lp.porosity, lp.am_volume_fraction, 4.75)
    for field in ("mass_loading_mg_cm2", "press_density_g_cm3", "active_fraction"):
        assert getattr(back, field) == pytest.approx(getattr(lp, field), rel=1e-12)
    # by hand: 25 mg/cm2 = 0.025 g/cm2 over 3.2 g/cm3 = 78.125 um
    assert lp.thickness_m == pytest.approx(78.125e-6, rel=1e-12)
    assert lp.porosity == pytest.approx(1 - 3.2 / 4.75, rel=1e-12)


def test_editing_an_input_updates_every_derived_quantity():
    lp = LinkedParameters(mass_loading_mg_cm2=20.0, press_density_g_cm3=3.0, crystallographic_density_g_cm3=4.75)
    denser = lp.with_inputs(press_density_g_cm3=3.3)
    assert denser.porosity < lp.porosity
    assert denser.thickness_m < lp.thickness_m
    assert denser.am_volume_fraction > lp.am_volume_fraction


def test_chen2020_positive_electrode_recast_reproduces_base_point():
    pybamm = pytest.importorskip("pybamm")
    pv = pybamm.ParameterValues("Chen2020")
    lp = LinkedParameters.from_pybamm(pv, "Positive", crystallographic_density_g_cm3=4.75)
    assert abs(lp.thickness_m - pv["Positive electrode thickness [m]"]) < 1e-9
    assert abs(lp.porosity - pv["Positive electrode porosity"]) < 1e-9
    assert abs(lp.am_volume_fraction - pv["Positive electrode active material volume fraction"]) < 1e-9
    # Chen2020 has no CBD term: the whole solid is active material
    assert lp.active_fraction == pytest.approx(1.0, abs=1e-12)


def test_measured_press_density_is_the_mass_of_the_measured_phases():
    """PD = X_AM rho_AM + X_CBD rho_CBD (g.cm-3) and h = ML/(PD 100): 0.6 x 4.75 + 0.1 x 1.9 = 3.04 g.cm-3,
    so 30.4 mg.cm-2 coats 100 um; a porosity of 1 (no solid) is refused."""
    from microdesign.errors import ConfigError
    from microdesign.process.linked import measured_press_density_g_cm3, thickness_m

    pd = measured_press_density_g_cm3(0.3, 0.6, 0.1, 4.75, 1.9)
    assert pd == pytest.approx(3.04, rel=1e-12)
    assert thickness_m(30.4, pd) == pytest.approx(100e-6, rel=1e-12)
    with pytest.raises(ConfigError, match="porosity"):
        measured_press_density_g_cm3(1.0, 0.0, 0.0, 4.75, 1.9)
