"""Robust objectives on the analytic stages: each statistic equals a brute-force Monte Carlo that runs the
generator, the characterisation and the cell for every tolerance sample, within its error."""

from __future__ import annotations

import math

import numpy as np
import pytest

from microdesign.campaign.evaluate import TrialEvaluator
from microdesign.campaign.stubs import StubCell, StubCharacteriser, StubGenerator
from microdesign.design.manufacturing import ManufacturingDesign
from microdesign.errors import ConfigError
from microdesign.objective import CellQuantity, ObjectiveValue
from microdesign.objective.robust import RobustObjective, statistic
from microdesign.process.chain import ProcessModel

BOUNDS = {"am_weight_fraction": (0.88, 0.97), "porosity": (0.25, 0.50), "cbd_adhesion": (0.0, 1.0)}
SETTING = {"am_weight_fraction": 0.95, "carbon_to_binder_weight_ratio": 1.2, "line_load_N_mm": 500.0,
           "dry_loading_mg_cm2": 30.0, "cbd_adhesion": 0.5}
# three times the tolerances of conf/process/nmc811_default.yaml: a spread well above the characterisation noise
TOLERANCES = {"flow_rate_mL_min": {"distribution": "normal", "relative": 0.03},
              "web_speed_m_min": {"distribution": "normal", "relative": 0.015},
              "line_load_N_mm": {"distribution": "uniform", "relative": 0.15},
              "am_weight_fraction": {"distribution": "normal", "absolute": 0.006},
              "dry_porosity": {"distribution": "normal", "absolute": 0.03}}
CUBE = 40  # voxels: per-design porosity standard error ~0.001, a tenth of the tolerance spread


def _design_map(tolerances=TOLERANCES):
    return ManufacturingDesign(ProcessModel(tolerances=tolerances), BOUNDS)


def _evaluator(objective, dm):
    return TrialEvaluator(StubGenerator(), StubCharacteriser(), StubCell(), objective, ("cbd_adhesion",),
                          cube_size_voxels=CUBE, n_cubes=4, adaptive=False, design_map=dm)


def _brute_force(dm, setting, n, seed):
    """Energy of each tolerance sample with the generator and the characterisation run for it (2 cubes)."""
    ev = _evaluator(None, dm)
    design = dm.map(setting)
    smp = dm.sample(design, n, seed)
    y = np.zeros(n)
    for i in range(n):
        params = {"porosity": smp["porosity"][i], "am_weight_fraction": smp["generator_am_weight_fraction"][i],
                  "cbd_adhesion": setting["cbd_adhesion"]}
        try:
            dm.check_bounds(params)
        except ConfigError:
            continue  # outside the training bounds: a failed part (value 0)
        vols = ev.generator.sample(params, n=2, size_voxels=CUBE, seed=10_000 + i)
        metrics = ev.characteriser.characterise(vols, ev.generator.voxel_size_m)
        cell = ev.cell.simulate(metrics, ev.thickness_m({"mass_loading_mg_cm2": smp["dry_loading_mg_cm2"][i]}, metrics))
        y[i] = cell.volumetric_energy_density_Wh_L
    return y


@pytest.fixture(scope="module")
def brute():
    return _brute_force(_design_map(), SETTING, 400, seed=123)


def _bootstrap_se(y, kind, **kw):
    rng = np.random.default_rng(0)
    return float(np.std([statistic(y[rng.integers(0, y.size, y.size)], kind, **kw) for _ in range(300)], ddof=1))


@pytest.mark.parametrize("kind,kw", [("mean", {}), ("quantile", {"quantile_level": 0.05}),
                                     ("mean_minus_k_std", {"k": 2.0}), ("yield", {})])
def test_robust_statistic_equals_brute_force_monte_carlo(kind, kw, brute):
    spec = float(np.median(brute))  # yield near 0.5: its most sensitive point
    obj = RobustObjective(statistic=kind, specification=spec, n_samples=256, **kw)
    out = _evaluator(obj, _design_map()).evaluate(SETTING, seed=7)
    assert out.status == "completed", out.reason
    robust = out.objective
    reference = statistic(brute, kind, specification=spec, **kw)
    err = math.sqrt(robust.variance + _bootstrap_se(brute, kind, specification=spec, **kw) ** 2)
    assert abs(robust.value - reference) <= 3 * err, (robust.value, reference, err)
    nominal = robust.summary["nominal"]
    if kind in ("quantile", "mean_minus_k_std"):
        # the tolerances matter: the statistic is resolved well away from the nominal value
        assert reference < nominal - 3 * err and robust.value < nominal - 3 * err
    assert robust.summary["failed_share"] == 0.0
    assert robust.summary["std"] == pytest.approx(np.std(brute, ddof=1), rel=0.25)


def test_nominal_statistic_is_the_plain_objective_and_costs_no_samples():
    dm = _design_map()
    plain = _evaluator(CellQuantity(), dm).evaluate(SETTING, seed=7).objective
    nominal = _evaluator(RobustObjective(statistic="nominal"), dm).evaluate(SETTING, seed=7).objective
    assert nominal == plain and not nominal.summary
    # without a manufacturing context a sampled statistic fails with the reason, never silently
    cell_ok = _evaluator(CellQuantity(), dm).evaluate(SETTING, seed=7)
    out = RobustObjective(statistic="mean").evaluate(cell_ok.cell, cell_ok.metrics)
    assert not out.ok and "manufacturing" in out.reason


def test_design_at_the_bounds_edge_loses_its_low_tail():
    """Calendered to the generator's lowest training porosity, tolerance drift leaves the validated range:
    those samples fail, the 5th percentile collapses while the nominal value is the best of the two."""
    dm = ManufacturingDesign(ProcessModel(tolerances={"line_load_N_mm": {"distribution": "uniform", "relative": 0.05}}),
                             BOUNDS)
    edge = {**SETTING, "line_load_N_mm": 1230.0}   # eps = 0.2 + 0.3 exp(-1230/700) = 0.2518
    inside = {**SETTING, "line_load_N_mm": 900.0}
    obj = RobustObjective(statistic="quantile", n_samples=128)
    e = _evaluator(obj, dm).evaluate(edge, seed=1).objective
    i = _evaluator(obj, dm).evaluate(inside, seed=1).objective
    assert 0.1 < e.summary["failed_share"] < 0.9 and i.summary["failed_share"] == 0.0
    assert e.value == 0.0 and i.value > 0.9 * i.summary["nominal"]


def test_summary_round_trips_and_default_attrs_unchanged():
    v = ObjectiveValue("ok", 1.0, 1.0, 0.1, summary={"yield": 0.9})
    assert ObjectiveValue.from_attrs(v.to_attrs()) == v
    assert "summary" not in ObjectiveValue("ok", 1.0, 1.0, 0.1).to_attrs()


@pytest.mark.parametrize("kw,name", [({"statistic": "median"}, "statistic"), ({"quantile_level": 1.2}, "quantile_level"),
                                     ({"statistic": "yield"}, "specification"), ({"n_samples": 3}, "n_samples"),
                                     ({"out_of_bounds": "clip"}, "out_of_bounds")])
def test_bad_settings_are_refused(kw, name):
    with pytest.raises(ConfigError, match=name):
        RobustObjective(**kw)


def test_response_surface_on_a_subsample_matches_simulating_every_sample():
    dm = _design_map()
    full = _evaluator(RobustObjective(statistic="quantile", n_samples=256, noise="none"), dm).evaluate(SETTING, seed=7).objective
    sub_obj = RobustObjective(statistic="quantile", n_samples=256, n_cell_simulations=24, noise="none")
    calls = []
    ev = _evaluator(sub_obj, dm)
    simulate = ev.cell.simulate
    ev.cell.simulate = lambda m, h, protocol=None: calls.append(h) or simulate(m, h)
    sub = ev.evaluate(SETTING, seed=7).objective
    assert len(calls) == 1 + 24  # the nominal design and the subsample (noise=none: no re-simulations)
    assert 0 < sub_obj.last_surrogate_variance < sub.variance
    assert abs(sub.value - full.value) <= 3 * math.sqrt(sub.variance + full.variance)
    assert sub.summary["std"] == pytest.approx(full.summary["std"], rel=0.15)
