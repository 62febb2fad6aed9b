"""The full cell's physics: base point, energy = integral V I dt, power and thickness trends,
protocols, failures as values, model re-use."""

from __future__ import annotations

import math

import numpy as np
import pybamm
import pytest

from microdesign.cell import (
    RESULT_KEYS,
    CathodeStructure,
    CellModel,
    CellResult,
    ConstantCurrent,
    ConstantPower,
    PowerSweep,
    build_cell_model,
)
from microdesign.characterise import metrics as M
from microdesign.config import compose

CHEN = CathodeStructure.from_parameter_values(pybamm.ParameterValues("Chen2020"))
CHEN_L = 75.6e-6


@pytest.fixture(scope="module")
def model() -> CellModel:
    return build_cell_model(compose("cell").cell)


@pytest.fixture(scope="module")
def chen_metrics() -> M.MicrostructureMetrics:
    return CHEN.to_metrics()


def _assert_all_finite(result: CellResult) -> None:
    for key, value in result.to_dict().items():
        if isinstance(value, float):
            assert math.isfinite(value), key


def test_base_point_reproduces_chen2020_capacity(model, chen_metrics):
    """Chen2020's own cathode at Chen2020's own area: the same capacity as plain PyBaMM (same current,
    C/2 = 2.5 A) and within 1% of the LG M50's 5 Ah."""
    area = 0.065 * 1.58
    design = model.design(chen_metrics, CHEN_L, electrode_area_m2=area)
    ours, _ = model.run_protocol(design, ConstantCurrent(current_A=2.5))
    assert ours.ok, ours.reason
    pv = pybamm.ParameterValues("Chen2020")
    pv["Current function [A]"] = 2.5
    plain = pybamm.Simulation(pybamm.lithium_ion.DFN(), parameter_values=pv, solver=pybamm.IDAKLUSolver())
    q_plain = float(plain.solve([0, 3 * 3600 * 2])["Discharge capacity [A.h]"].entries[-1])
    assert ours.capacity_Ah == pytest.approx(q_plain, rel=1e-3)
    assert ours.capacity_Ah == pytest.approx(5.0, rel=0.01)
    assert design.stack.anode_thickness_m == pytest.approx(85.2e-6, rel=1e-9)


def test_energy_is_the_integral_of_voltage_times_current(model, chen_metrics):
    design = model.design(chen_metrics, CHEN_L)
    res, sol = model.run_protocol(design, ConstantPower(60.0))
    assert res.ok, res.reason
    t = sol["Time [s]"].entries
    V, I = sol["Voltage [V]"].entries, sol["Current [A]"].entries
    assert res.energy_Wh == pytest.approx(np.trapezoid(V * I, t) / 3600, rel=2e-3)
    assert res.capacity_Ah == pytest.approx(np.trapezoid(I, t) / 3600, rel=2e-3)
    np.testing.assert_allclose(V * I, 60.0, rtol=1e-4)  # constant power held (solver tolerance)
    assert res.mean_voltage_V == pytest.approx(res.energy_Wh / res.capacity_Ah)
    assert res.volumetric_energy_density_Wh_L == pytest.approx(res.energy_Wh / design.geometry.volume_L)
    assert res.specific_energy_Wh_kg == pytest.approx(res.energy_Wh / design.geometry.mass_kg)
    # per gram of AM: Q / (X_AM rho_AM L A)
    am_g = 0.665 * 4.75 * CHEN_L * 100 * design.geometry.electrode_area_m2 * 1e4
    assert res.cathode_capacity_mAh_g_am == pytest.approx(res.capacity_Ah * 1e3 / am_g, rel=1e-9)
    assert 150 < res.cathode_capacity_mAh_g_am < 230  # NMC811 between 2.5 and 4.2 V


def test_more_power_less_energy_and_one_build_per_sweep(model, chen_metrics):
    builds = model.n_builds
    powers = (10.0, 50.0, 120.0, 250.0)
    curve = model.sweep(chen_metrics, 70e-6, PowerSweep(powers))
    assert model.n_builds == builds + 1  # one model for the whole Ragone curve
    assert [r.power_W for r in curve] == list(powers)
    assert all(r.ok for r in curve), [r.reason for r in curve]
    energies = [r.energy_Wh for r in curve]
    assert all(a > b for a, b in zip(energies, energies[1:])), energies
    for r in curve:  # a constant-power discharge delivers its power on average
        assert r.mean_power_W == pytest.approx(r.power_W, rel=1e-4)
    # cell-level sanity: a 4680 with Chen2020 electrodes at 10 W (Kench et al. 2024: ~730 W.h.L-1 optimum)
    assert 600 < curve[0].volumetric_energy_density_Wh_L < 900


def test_thicker_electrodes_store_more_at_low_power_and_retain_less_at_high_power(model, chen_metrics):
    low, high = 10.0, 150.0
    thin = model.ragone(chen_metrics, 50e-6, [low, high])
    thick = model.ragone(chen_metrics, 110e-6, [low, high])
    assert all(r.ok for r in thin + thick), [r.reason for r in thin + thick]
    assert thick[0].energy_Wh > thin[0].energy_Wh  # fewer foils and separators per can
    retention_thin = thin[1].energy_Wh / thin[0].energy_Wh
    retention_thick = thick[1].energy_Wh / thick[0].energy_Wh
    assert retention_thick < retention_thin
    assert thick[0].jelly_roll_length_m < thin[0].jelly_roll_length_m


def test_c_rate_is_relative_to_the_designs_own_c10_capacity(model, chen_metrics):
    res = model.simulate(chen_metrics, CHEN_L, ConstantCurrent(1.0))
    assert res.ok, res.reason
    q10 = res.extra["C/10 capacity [A.h]"]
    assert res.current_A == pytest.approx(q10, rel=1e-4)  # 1C of the design's own C/10 capacity
    assert res.capacity_Ah < q10  # rate loss
    assert res.duration_s == pytest.approx(res.capacity_Ah / q10 * 3600, rel=1e-4)


def test_absurd_power_is_a_failed_result_not_an_exception(model, chen_metrics):
    res = model.simulate(chen_metrics, CHEN_L, ConstantPower(1e6))
    assert isinstance(res, CellResult)
    assert res.status == "failed" and "cut-off" in res.reason
    _assert_all_finite(res)
    # and the cached model still works afterwards
    assert model.simulate(chen_metrics, CHEN_L, ConstantPower(20.0)).ok


def test_simulate_returns_one_result_and_refuses_a_sweep(model, chen_metrics):
    from microdesign.errors import ConfigError

    assert isinstance(model.simulate(chen_metrics, CHEN_L, ConstantPower(20.0)), CellResult)
    with pytest.raises(ConfigError, match="sweep"):
        model.simulate(chen_metrics, CHEN_L, PowerSweep((10.0, 20.0)))
    one = model.sweep(chen_metrics, CHEN_L, ConstantPower(20.0))
    assert len(one) == 1 and one[0] == model.simulate(chen_metrics, CHEN_L, ConstantPower(20.0))


def test_infeasible_geometry_is_a_failed_result(model, chen_metrics):
    builds = model.n_builds
    res = model.simulate(chen_metrics, 0.015, ConstantPower(10.0))  # 15 mm coatings in a 23 mm radius can
    assert res.status == "failed" and "infeasible geometry" in res.reason
    assert model.n_builds == builds  # nothing was built
    _assert_all_finite(res)


def test_failed_characterisation_gives_failed_results(model):
    failed = M.MicrostructureMetrics.failed("pore network does not percolate through-plane", 1e-7, 64)
    res = model.simulate(failed, CHEN_L, ConstantPower(10.0))
    assert res.status == "failed" and "percolate" in res.reason
    sweep = model.sweep(failed, CHEN_L, PowerSweep((10.0, 20.0)))
    assert [r.status for r in sweep] == ["failed", "failed"]


def test_result_dict_has_pybamm_style_keys(model, chen_metrics):
    res = model.simulate(chen_metrics, CHEN_L, {"kind": "constant_power", "power_W": 20.0})
    d = res.to_dict()
    for key in ("Energy [W.h]", "Volumetric energy density [W.h.L-1]", "Specific energy [W.h.kg-1]",
                "Discharge capacity [A.h]", "Jelly-roll length [m]", "Electrode area [m2]", "Cell mass [kg]",
                "Can volume [L]", "Positive electrode thickness [m]", "N/P ratio"):
        assert key in d
    assert len(RESULT_KEYS) + len(res.extra) == len(d)
    with pytest.raises(ValueError):
        CellResult(status="ok", energy_Wh=float("nan"))
    assert CellResult.failed("x", energy_Wh=float("inf")).energy_Wh == 0.0


@pytest.mark.parametrize("option, low, high", [("cyl_21700", 4.8, 6.2), ("pouch", 30.0, 70.0)])
def test_other_formats_simulate_and_21700_is_an_lg_m50(option, low, high, chen_metrics):
    """Chen2020's electrodes wound into the 21700 format give about the LG M50's 5 A.h (the slight excess
    is the assumed core and clearances); the pouch simulates with its own area and volume."""
    m = build_cell_model(compose("cell", [f"cell_format@cell.cell_format={option}"]).cell)
    res = m.simulate(chen_metrics, CHEN_L, ConstantPower(5.0))
    assert res.ok, res.reason
    assert res.cell_format == m.cell_format.name
    assert low < res.capacity_Ah < high
    assert res.volumetric_energy_density_Wh_L == pytest.approx(res.energy_Wh / m.cell_format.volume_L)


def test_area_override_rescales_the_area_proportional_masses(model, chen_metrics):
    """Overriding the electrode area keeps Wh/kg consistent: coatings, foils, separators and
    electrolyte scale with area; housing and hardware keep the format's mass."""
    full = model.design(chen_metrics, CHEN_L).geometry
    half = model.design(chen_metrics, CHEN_L, electrode_area_m2=full.electrode_area_m2 / 2).geometry
    for key, mass in full.mass_breakdown_kg.items():
        expect = mass if key in ("housing", "hardware") else mass / 2
        assert half.mass_breakdown_kg[key] == pytest.approx(expect, rel=1e-12), key
