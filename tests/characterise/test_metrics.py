"""Result types of characterisation: CI arithmetic and the zero-interface case."""

import numpy as np
import pytest
from scipy import stats

from microdesign.characterise.metrics import POROSITY, MetricEstimate, MicrostructureMetrics


def test_ci_is_student_t_half_width():
    v = np.array([0.30, 0.32, 0.31, 0.35])
    e = MetricEstimate.from_values(POROSITY, v)
    assert e.mean == pytest.approx(0.32)
    assert e.std == pytest.approx(np.std(v, ddof=1))
    assert e.ci95_half_width == pytest.approx(stats.t.ppf(0.975, 3) * np.std(v, ddof=1) / 2.0)
    assert e.relative_ci95 == pytest.approx(e.ci95_half_width / 0.32)


def test_relative_ci_zero_when_all_cubes_agree_even_at_zero_mean():
    assert MetricEstimate.from_values("x", [0.0, 0.0, 0.0]).relative_ci95 == 0.0
    assert MetricEstimate.from_values("x", [-1e-3, 1e-3]).relative_ci95 == float("inf")
    assert MetricEstimate.from_values("x", [1.0]).relative_ci95 == float("inf")  # one cube: no CI


def test_non_finite_values_rejected():
    with pytest.raises(ValueError, match="finite"):
        MetricEstimate.from_values("x", [1.0, np.inf])


def test_failed_result_carries_conductivities_and_no_estimates():
    m = MicrostructureMetrics.failed("pore network does not percolate through-plane", 4e-7, 32, 3,
                                     bulk_conductivity_S_m={"active_material": 0.18, "cbd": 760.0})
    assert not m.ok and m.estimates == {} and m.bulk_conductivity_S_m["cbd"] == 760.0
    assert "percolate" in m.reason
