"""Metric calibration: the log-ratio GP, its validity check, and what the cell model gets."""

from __future__ import annotations

import json
import math
from types import SimpleNamespace

import numpy as np
import pytest
from scipy.stats import qmc

from microdesign.campaign.evaluate import TrialEvaluator
from microdesign.campaign.stubs import StubCell, StubCharacteriser, StubGenerator
from microdesign.characterise import metrics as M
from microdesign.characterise.calibration import (FORMAT_VERSION, RECORD_PREFIX, CalibrationData, MetricCalibration,
                                                  calibration_data, configured_metric_calibration, leave_one_out,
                                                  log_ratio, resolve_metric_calibration)
from microdesign.errors import ConfigError
from microdesign.objective import CellQuantity

PARAMS = ("am_weight_fraction", "porosity", "cbd_adhesion")
BOUNDS = {"am_weight_fraction": (0.85, 0.97), "porosity": (0.25, 0.5), "cbd_adhesion": (0.0, 1.0)}
LABELLING = {"phase_fractions": "design", "pore_neighbour_penalty": 2.0}
VALIDITY = {"generator": "g", "weights_sha256": "ab" * 32, "labelling": LABELLING, "cube_size_voxels": 16,
            "tau_estimator": "transport_averaged"}


def _designs(n: int, seed: int = 3) -> list[dict[str, float]]:
    unit = qmc.Halton(3, seed=seed).random(n)
    return [{k: BOUNDS[k][0] + u * (BOUNDS[k][1] - BOUNDS[k][0]) for k, u in zip(PARAMS, row)} for row in unit]


def _tau_log_ratio(d: dict[str, float]) -> float:
    """The generator's τ too high by up to 13 % at low CBD adhesion (as the shipped model's)."""
    return -0.12 * (1.0 - d["cbd_adhesion"])


def _file(tmp_path, n: int = 24, noise_sd: float = 0.01, validity=None, ratio=_tau_log_ratio) -> str:
    rng = np.random.default_rng(0)
    designs = [{"index": i, "inputs": d,
                "log_ratio": {M.TORTUOSITY_THROUGH_PLANE: [ratio(d) + noise_sd * rng.standard_normal(),
                                                           noise_sd ** 2]}}
               for i, d in enumerate(_designs(n))]
    path = tmp_path / "metric_calibration_16.json"
    path.write_text(json.dumps({"format_version": FORMAT_VERSION, "parameters": list(PARAMS),
                                "bounds": {k: list(v) for k, v in BOUNDS.items()},
                                "metrics": [M.TORTUOSITY_THROUGH_PLANE], "designs": designs,
                                "validity": validity or VALIDITY}))
    return str(path)


def _generator(**changes):
    g = SimpleNamespace(name="g", metadata=SimpleNamespace(weights_sha256="ab" * 32), labelling=dict(LABELLING))
    for k, v in changes.items():
        setattr(g, k, v)
    return g


def test_scaling_an_estimate_keeps_its_relative_ci_and_a_transport_average_recomputes_to_the_scaled_mean():
    tau, eps = np.array([1.8, 2.4, 3.1, 2.0]), np.array([0.30, 0.34, 0.28, 0.33])
    est = M.MetricEstimate.transport_averaged(M.TORTUOSITY_THROUGH_PLANE, tau, eps)
    s = est.scaled(0.9)
    again = M.MetricEstimate.transport_averaged(M.TORTUOSITY_THROUGH_PLANE, s.values, eps)
    assert s.mean == pytest.approx(0.9 * est.mean) and again.mean == pytest.approx(s.mean)
    assert again.ci95_half_width == pytest.approx(s.ci95_half_width) and s.relative_ci95 == pytest.approx(est.relative_ci95)
    with pytest.raises(ValueError, match="positive finite"):
        est.scaled(0.0)


def test_log_ratio_and_its_variance_follow_the_delta_method():
    ref = {"mean": 2.0, "std": 0.4, "values": [1.6, 2.0, 2.4, 2.0]}
    ev = {"mean": 2.5, "std": 0.6, "values": [2.0, 2.5, 3.1, 2.4, 2.5, 2.5, 2.6, 2.4, 2.5]}
    r, var = log_ratio(ref, ev)
    assert r == pytest.approx(math.log(0.8))
    assert var == pytest.approx((0.2 / 2.0) ** 2 + (0.2 / 2.5) ** 2)
    assert log_ratio({**ref, "mean": 0.0}, ev) is None and log_ratio(ref, {**ev, "values": [2.5]}) is None


def test_the_gp_learns_a_smooth_discrepancy_and_leave_one_out_shows_the_gain(tmp_path):
    data = CalibrationData.load(_file(tmp_path))
    cal = MetricCalibration(data)
    for d in _designs(6, seed=11):  # designs it has not seen
        factor, sd = cal.factors(d)[M.TORTUOSITY_THROUGH_PLANE]
        assert math.log(factor) == pytest.approx(_tau_log_ratio(d), abs=0.02) and 0 < sd < 0.05
    loo = leave_one_out(data, M.TORTUOSITY_THROUGH_PLANE)
    assert loo["n"] == 24 and loo["mae_calibrated"] < 0.3 * loo["mae_uncalibrated"]
    assert loo["coverage_95"] >= 0.8


def test_a_calibration_refuses_another_generator_labelling_cube_side_or_tau_estimator(tmp_path):
    data = CalibrationData.load(_file(tmp_path))
    MetricCalibration.check_validity(data, _generator(), 16, "transport_averaged")
    cases = [(_generator(metadata=SimpleNamespace(weights_sha256="cd" * 32)), 16, "transport_averaged", "weights_sha256"),
             (_generator(labelling={"phase_fractions": "design", "pore_neighbour_penalty": 3.0}), 16,
              "transport_averaged", "labelling"),
             (_generator(), 64, "transport_averaged", "cube_size_voxels"), (_generator(), 16, "mean", "tau_estimator")]
    for gen, size, tau_estimator, what in cases:
        with pytest.raises(ConfigError, match=f"campaign.metric_calibration.*{what}"):
            MetricCalibration.check_validity(data, gen, size, tau_estimator)


def test_resolving_the_setting(tmp_path):
    path = _file(tmp_path)
    assert configured_metric_calibration({}) == "none" and configured_metric_calibration({"metric_calibration": None}) == "none"
    assert resolve_metric_calibration("none", _generator(), None, 16, "transport_averaged") is None
    assert resolve_metric_calibration("auto", _generator(), None, 16, "transport_averaged") is None  # no checkpoint
    assert isinstance(resolve_metric_calibration(path, _generator(), None, 16, "transport_averaged"), MetricCalibration)
    with pytest.raises(ConfigError, match="campaign.metric_calibration.*cube_size_voxels"):
        resolve_metric_calibration(path, _generator(), None, 64, "transport_averaged")
    with pytest.raises(ConfigError, match="campaign.metric_calibration.*metric calibration file"):
        resolve_metric_calibration(str(tmp_path / "absent.json"), _generator(), None, 16, "transport_averaged")


def test_auto_takes_the_checkpoints_file_for_the_cube_side_and_skips_one_that_does_not_fit(tmp_path, caplog):
    ckpt = tmp_path / "model"
    ckpt.mkdir()
    _file(ckpt)
    assert isinstance(resolve_metric_calibration("auto", _generator(), str(ckpt), 16, "transport_averaged"),
                      MetricCalibration)
    assert resolve_metric_calibration("auto", _generator(), str(ckpt), 24, "transport_averaged") is None
    assert resolve_metric_calibration("auto", _generator(), str(ckpt), 16, "mean") is None
    assert "does not fit this evaluation" in caplog.text


def _evaluator(calibration, cube_size_voxels: int = 16, **kw) -> TrialEvaluator:
    return TrialEvaluator(StubGenerator(), StubCharacteriser(), StubCell(), CellQuantity(noise="none"),
                          list(PARAMS), cube_size_voxels=cube_size_voxels, n_cubes=3, adaptive=False,
                          metric_calibration=calibration, **kw)


def test_the_cell_model_gets_the_calibrated_metrics_and_the_trial_records_them_and_the_factor(tmp_path):
    cal = MetricCalibration(CalibrationData.load(_file(tmp_path, ratio=lambda d: math.log(0.8))))
    design = {**_designs(1, seed=5)[0], "mass_loading_mg_cm2": 20.0}
    plain = _evaluator(None).evaluate(design, seed=1)
    calibrated = _evaluator(cal).evaluate(design, seed=1)
    assert plain.status == calibrated.status == "completed", (plain.reason, calibrated.reason)
    factor = calibrated.cell.extra[RECORD_PREFIX + "pore_tortuosity_factor"]
    assert factor == pytest.approx(0.8, rel=0.02)
    tau = M.TORTUOSITY_THROUGH_PLANE
    assert calibrated.metrics[tau].mean == pytest.approx(factor * plain.metrics[tau].mean)
    assert calibrated.metrics[M.SSA_AM_PORE].mean == plain.metrics[M.SSA_AM_PORE].mean  # not calibrated
    # what the cell model used is the trial's metrics: the stub's energy rises with ε/τ
    assert calibrated.objective.value > plain.objective.value
    again = StubCell().simulate(calibrated.metrics, calibrated.cathode_thickness_m)
    assert again.volumetric_energy_density_Wh_L == pytest.approx(calibrated.cell.volumetric_energy_density_Wh_L)


def test_cubes_of_another_side_fail_the_trial_with_the_reason_and_a_fidelity_level_of_another_side_drops_it(tmp_path):
    from microdesign.optim.cost import FidelityLevel

    cal = MetricCalibration(CalibrationData.load(_file(tmp_path)))
    design = {**_designs(1, seed=5)[0], "mass_loading_mg_cm2": 20.0}
    e = _evaluator(cal, cube_size_voxels=12).evaluate(design, seed=1)
    assert e.status == "failed" and e.reason.startswith("metric_calibration:") and "16^3" in e.reason
    levels = [FidelityLevel("low", 0.5, 1.0, n_cubes=2, cube_size_voxels=12),
              FidelityLevel("high", 1.0, 10.0, n_cubes=3, cube_size_voxels=16)]
    ev = _evaluator(cal, levels=levels)
    assert ev.at_level(0.5).metric_calibration is None and ev.at_level(1.0).metric_calibration is cal


def test_calibration_data_pairs_the_designs_of_the_two_files():
    gen = SimpleNamespace(name="g", parameter_names=PARAMS, training_bounds=BOUNDS,
                          metadata=SimpleNamespace(weights_sha256="ab" * 32), labelling=dict(LABELLING))
    d0 = {**_designs(1)[0], "mass_loading_mg_cm2": 20.0}

    def file(mean, std, n, size):
        est = {"mean": mean, "std": std, "values": [mean] * n}
        return {"settings": {"designs_seed": 15, "n_cubes": n, "size_voxels": size, "structures": {"line": "x"},
                             "tau_estimator": "transport_averaged"},
                "designs": [{"index": 0, "inputs": d0, "metrics": {"estimates": {M.TORTUOSITY_THROUGH_PLANE: est}}}]}

    data = calibration_data(file(2.0, 0.2, 4, 128), file(2.2, 0.4, 16, 16), gen, metrics=[M.TORTUOSITY_THROUGH_PLANE])
    (d,) = data["designs"]
    assert d["log_ratio"][M.TORTUOSITY_THROUGH_PLANE][0] == pytest.approx(math.log(2.0 / 2.2))
    assert set(d["inputs"]) == set(PARAMS)
    assert data["validity"] == {**VALIDITY, "cube_size_voxels": 16}
    other = file(2.2, 0.4, 16, 16)
    other["designs"][0]["inputs"] = {**d0, "porosity": 0.3}
    with pytest.raises(ConfigError, match="evaluation"):
        calibration_data(file(2.0, 0.2, 4, 128), other, gen)


def test_a_stop_judged_on_the_objective_judges_and_keeps_the_calibrated_metrics(tmp_path):
    from microdesign.characterise import Characteriser, SubcubeSampler
    from microdesign.characterise.testing import random_three_phase

    big = random_three_phase(40, porosity=0.45, cbd_fraction=0.1, correlation_voxels=1.5, seed=7)
    source = SimpleNamespace(voxel_size_m=0.4e-6, sample=lambda params, n, size_voxels, seed:
                             SubcubeSampler(big, size_voxels)(n, seed))
    cal = MetricCalibration(CalibrationData.load(_file(tmp_path, ratio=lambda d: math.log(0.8),
                                                       validity={**VALIDITY, "cube_size_voxels": 12})))
    design = {**_designs(1, seed=5)[0], "mass_loading_mg_cm2": 20.0}

    def run(calibration):
        characteriser = Characteriser(adaptive={"min_cubes": 3, "batch_cubes": 3},
                                      bulk_conductivity_S_m={"active_material": 1.0, "cbd": 10.0})
        return TrialEvaluator(source, characteriser, StubCell(), CellQuantity(metrics=[M.TORTUOSITY_THROUGH_PLANE]),
                              list(PARAMS), cube_size_voxels=12, adaptive=True, target_relative_ci=0.5, max_cubes=6,
                              adaptive_target="objective", metric_calibration=calibration).evaluate(design, seed=3)

    plain, calibrated = run(None), run(cal)
    assert plain.status == calibrated.status == "completed", (plain.reason, calibrated.reason)
    assert calibrated.metrics.n_cubes == plain.metrics.n_cubes  # the relative CIs, hence the stop, are unchanged
    factor = calibrated.cell.extra[RECORD_PREFIX + "pore_tortuosity_factor"]
    tau = M.TORTUOSITY_THROUGH_PLANE
    assert calibrated.metrics[tau].mean == pytest.approx(factor * plain.metrics[tau].mean)
    again = StubCell().simulate(calibrated.metrics, calibrated.cathode_thickness_m)
    assert again.volumetric_energy_density_Wh_L == pytest.approx(calibrated.cell.volumetric_energy_density_Wh_L)
