"""TrialEvaluator: the adaptive stop judged on the objective's CI (``adaptive_target``)."""

from __future__ import annotations

import math

import pytest

from microdesign.campaign.evaluate import TrialEvaluator
from microdesign.campaign.stubs import StubCell
from microdesign.characterise import Characteriser, SubcubeSampler
from microdesign.characterise import metrics as M
from microdesign.characterise.testing import random_three_phase
from microdesign.errors import ConfigError
from microdesign.objective import CellQuantity

DX = 0.4e-6  # voxel edge [m]
INPUTS = {"am_weight_fraction": 0.94, "porosity": 0.45, "cbd_adhesion": 0.5, "mass_loading_mg_cm2": 25.0}


class CubesOfOneVolume:
    """A generator stand-in: subcubes of one correlated three-phase volume (the design is ignored)."""

    voxel_size_m = DX

    def __init__(self):
        self.big = random_three_phase(40, porosity=0.45, cbd_fraction=0.1, correlation_voxels=1.5, seed=7)

    def sample(self, params, n, size_voxels, seed):
        return SubcubeSampler(self.big, size_voxels)(n, seed)


class CountingCell(StubCell):
    def simulate(self, metrics, cathode_thickness_m, protocol=None):
        self.calls = getattr(self, "calls", 0) + 1
        return super().simulate(metrics, cathode_thickness_m, protocol)


def _evaluator(target: str, relative_ci: float, cell=None, max_cubes: int = 9) -> TrialEvaluator:
    characteriser = Characteriser(adaptive={"min_cubes": 3, "batch_cubes": 3},
                                  bulk_conductivity_S_m={"active_material": 1.0, "cbd": 10.0})
    return TrialEvaluator(CubesOfOneVolume(), characteriser, cell or CountingCell(),
                          CellQuantity(metrics=[M.AM_VOLUME_FRACTION, M.POROSITY]),
                          ["am_weight_fraction", "porosity", "cbd_adhesion"], cube_size_voxels=12, adaptive=True,
                          target_relative_ci=relative_ci, max_cubes=max_cubes, adaptive_target=target)


def test_the_objective_meets_a_target_the_metrics_miss_and_its_last_cell_run_is_the_trials():
    cell = CountingCell()
    e = _evaluator("objective", 0.05, cell).evaluate(INPUTS, seed=3)
    assert e.status == "completed", e.reason
    ci = 1.96 * math.sqrt(e.objective.variance) / abs(e.objective.value)
    assert e.metrics.stop_reason == "ci_target_met" and e.metrics.n_cubes == 3 and ci <= 0.05
    assert max(est.relative_ci95 for est in e.metrics.estimates.values()) > 0.05  # every_metric would go on
    # one cell run for the design and one per propagated metric, judged once: not repeated for the result
    assert cell.calls == 1 + 2
    # what was reused is what a fresh run on the final metrics gives
    again = CellQuantity(metrics=[M.AM_VOLUME_FRACTION, M.POROSITY]).evaluate(
        StubCell().simulate(e.metrics, e.cathode_thickness_m), e.metrics,
        resimulate=lambda m: StubCell().simulate(m, _evaluator("objective", 0.05).thickness_m(INPUTS, m)))
    assert e.objective.value == pytest.approx(again.value, rel=1e-12)
    assert e.objective.variance == pytest.approx(again.variance, rel=1e-9)
    by_metric = _evaluator("every_metric", 0.05).evaluate(INPUTS, seed=3)
    assert by_metric.metrics.n_cubes > 3


def test_an_objective_target_not_met_reaches_the_cap_with_the_same_cubes_as_every_metric():
    cell = CountingCell()
    tight = _evaluator("objective", 1e-9, cell).evaluate(INPUTS, seed=3)
    metric = _evaluator("every_metric", 1e-9).evaluate(INPUTS, seed=3)
    assert tight.metrics.stop_reason == metric.metrics.stop_reason == "cap_reached"
    assert tight.metrics.n_cubes == metric.metrics.n_cubes == 9
    assert tight.objective.value == pytest.approx(metric.objective.value, rel=1e-12)
    # judged after each of the batches (3, then 6 more: the cap), 1 + 2 cell runs each, none after
    assert cell.calls == 2 * 3


def test_a_cell_that_fails_on_the_judged_metrics_is_recorded_once_not_run_again():
    from microdesign.cell.result import CellResult

    class FailingCell(CountingCell):
        def simulate(self, metrics, cathode_thickness_m, protocol=None):
            super().simulate(metrics, cathode_thickness_m, protocol)
            return CellResult.failed("stub: the solver did not converge")

    cell = FailingCell()
    e = _evaluator("objective", 0.05, cell, max_cubes=6).evaluate(INPUTS, seed=3)
    assert e.status == "failed" and e.reason == "cell: stub: the solver did not converge"
    assert e.metrics.stop_reason == "cap_reached" and e.metrics.n_cubes == 6  # a failed judgement meets no target
    assert cell.calls == 2  # one per judged batch, the last one the trial's
    assert e.cell is not None and not e.cell.ok and e.timings["cell"] > 0 and "objective" not in e.timings


def test_an_unknown_adaptive_target_is_refused():
    with pytest.raises(ConfigError, match="adaptive_target"):
        _evaluator("objective_ci", 0.05)


def test_auto_judges_the_objective_only_where_its_noise_is_the_metrics_cis():
    from microdesign.campaign.evaluate import resolve_adaptive_target
    from microdesign.objective import CellQuantities
    from microdesign.objective.robust import RobustObjective

    assert _evaluator("auto", 0.05).adaptive_target == "objective"
    # a robust statistic adds Monte Carlo error that cubes do not reduce; a vector has no single CI
    others = [RobustObjective(statistic="quantile"),
              CellQuantities([{"quantity": "volumetric_energy_density_Wh_L"}, {"quantity": "specific_energy_Wh_kg"}]),
              CellQuantity(noise="none")]  # its CI is 0 whatever the cubes
    for objective in others:
        assert resolve_adaptive_target("auto", objective) == "every_metric"
        with pytest.raises(ConfigError, match="adaptive_target"):
            resolve_adaptive_target("objective", objective)
