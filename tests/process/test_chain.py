"""Conservation, monotonicity and round-trips of the process model; the Chen2020 recast."""

import numpy as np
import pytest

from microdesign.process import LinkedParameters, ProcessModel, evaluate_process
from microdesign.process.calendering import calendered_porosity


@pytest.mark.parametrize("w_am", [0.85, 0.9, 0.96, 0.99])
@pytest.mark.parametrize("q", [0.0, 200.0, 2000.0])
def test_volume_balance(w_am, q):
    s = evaluate_process({"am_weight_fraction": w_am, "line_load_N_mm": q})
    assert s["porosity"] + s["am_volume_fraction"] + s["cbd_volume_fraction"] == pytest.approx(1.0, abs=1e-12)
    assert s["cbd_volume_fraction"] == pytest.approx(s["conductive_additive_volume_fraction"] + s["binder_volume_fraction"])


def test_more_line_load_lower_porosity_never_below_minimum():
    loads = np.linspace(0.0, 50_000.0, 2001)
    eps = calendered_porosity(0.5, loads, 0.2, 700.0)
    assert np.all(np.diff(eps) < 0) or np.all(np.diff(eps) <= 0)
    assert np.all(np.diff(eps[:200]) < 0)  # strictly decreasing where not saturated
    assert np.all(eps >= 0.2)
    s = evaluate_process({"line_load_N_mm": loads})
    assert np.all(np.diff(s["thickness_m"]) <= 0)
    assert np.all(np.diff(s["coating_density_g_cm3"]) >= 0)


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


def test_process_model_evaluate_changes():
    m = ProcessModel()
    base = m.evaluate()
    harder = m.evaluate(line_load_N_mm=1500.0)
    assert harder.porosity < base.porosity
    assert harder.dry_loading_mg_cm2 == pytest.approx(base.dry_loading_mg_cm2)
