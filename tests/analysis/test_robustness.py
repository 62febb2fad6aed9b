"""Robustness analysis of a manufacturing design: tolerance windows, distribution, Sobol indices, plots."""

from __future__ import annotations

import numpy as np
import pytest

from microdesign.analysis.robustness import plot_histograms, plot_sobol, robustness_at
from microdesign.campaign.evaluate import TrialEvaluator
from microdesign.campaign.stubs import StubCell, StubCharacteriser, StubGenerator
from microdesign.design.manufacturing import ManufacturingDesign
from microdesign.errors import ConfigError
from microdesign.objective.robust import RobustObjective
from microdesign.process.chain import ProcessModel

BOUNDS = {"am_weight_fraction": (0.88, 0.97), "porosity": (0.25, 0.50), "cbd_adhesion": (0.0, 1.0)}
SETTING = {"am_weight_fraction": 0.95, "carbon_to_binder_weight_ratio": 1.0, "line_load_N_mm": 500.0,
           "dry_loading_mg_cm2": 30.0, "cbd_adhesion": 0.5}


def _run(tolerances, **kw):
    dm = ManufacturingDesign(ProcessModel(tolerances=tolerances), BOUNDS)
    obj = RobustObjective(specification=300.0)
    ev = TrialEvaluator(StubGenerator(), StubCharacteriser(), StubCell(), obj, ("cbd_adhesion",),
                        cube_size_voxels=24, n_cubes=3, adaptive=False, design_map=dm)
    e = ev.evaluate(SETTING, seed=0)
    return robustness_at(SETTING, e.metrics, ev, obj, **kw)


def test_windows_distribution_and_sobol_find_the_dominant_tolerance(tmp_path):
    # a wide line-load window and a negligible web-speed one: the line load carries the variance
    r = _run({"line_load_N_mm": {"distribution": "uniform", "relative": 0.3},
              "web_speed_m_min": {"distribution": "normal", "relative": 1e-4}}, n_samples=256, sobol_base_samples=64)
    assert r.windows["line_load_N_mm"] == pytest.approx((350.0, 500.0, 650.0))
    assert r.windows["web_speed_m_min"] == pytest.approx((10.0 - 2e-3, 10.0, 10.0 + 2e-3))
    assert r.values.shape == (256,) and r.failed_share == 0.0 and r.std > 0
    assert r.quantile_05 < r.mean and r.yield_share == pytest.approx(np.mean(r.values >= 300.0))
    assert r.sobol["line_load_N_mm"]["ST"] > 0.9 and r.sobol["web_speed_m_min"]["ST"] < 0.05
    assert plot_histograms({"robust": r}, tmp_path / "h.png", "W.h.L-1").stat().st_size > 0
    assert plot_sobol({"robust": r}, tmp_path / "s.png").stat().st_size > 0


def test_without_tolerances_or_design_map_it_is_refused():
    with pytest.raises(ConfigError, match="tolerance"):
        _run({}, n_samples=16, sobol_base_samples=None)
    ev = TrialEvaluator(StubGenerator(), StubCharacteriser(), StubCell(), None, ("porosity",))
    with pytest.raises(ConfigError, match="manufacturing"):
        robustness_at(SETTING, None, ev, RobustObjective())


def test_response_surface_serves_the_sobol_analysis_without_more_cell_runs():
    dm = ManufacturingDesign(ProcessModel(tolerances={"line_load_N_mm": {"distribution": "uniform", "relative": 0.3},
                                                      "flow_rate_mL_min": {"distribution": "normal", "relative": 0.02}}),
                             BOUNDS)
    obj = RobustObjective(n_cell_simulations=16, noise="none")
    ev = TrialEvaluator(StubGenerator(), StubCharacteriser(), StubCell(), obj, ("cbd_adhesion",),
                        cube_size_voxels=24, n_cubes=3, adaptive=False, design_map=dm)
    e = ev.evaluate(SETTING, seed=0)
    calls = []
    simulate = ev.cell.simulate
    ev.cell.simulate = lambda m, h, protocol=None: calls.append(h) or simulate(m, h)
    r = robustness_at(SETTING, e.metrics, ev, obj, n_samples=256, sobol_base_samples=64)
    assert len(calls) == 1 + 16  # the nominal design and the surface's subsample
    assert r.sobol["line_load_N_mm"]["ST"] + r.sobol["flow_rate_mL_min"]["ST"] == pytest.approx(1.0, abs=0.15)
