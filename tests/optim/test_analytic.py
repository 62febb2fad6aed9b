"""The analytic two-level problem of the multi-fidelity tests and benchmark (docs/multi_fidelity.md)."""

from __future__ import annotations

import numpy as np

from microdesign.optim.analytic import CURRIN_OPTIMUM, Trace, currin_high, currin_low


def test_currin_optimum_and_values():
    g = np.linspace(0.0, 1.0, 401)
    G = np.stack(np.meshgrid(g, g), -1).reshape(-1, 2)
    f = currin_high(G)
    assert abs(f.max() - CURRIN_OPTIMUM) < 2e-3 and np.allclose(G[np.argmax(f)], [0.2175, 0.0], atol=5e-3)
    # a value by hand: at (0.5, 0.5), 1 - exp(-1) times the rational factor (2300/8 + 1900/4 + 1046 + 60) / (12.5 + 125 + 2 + 20)
    assert np.isclose(currin_high([[0.5, 0.5]])[0], (1 - np.exp(-1.0)) * (287.5 + 475 + 1046 + 60) / 159.5)


def test_currin_low_is_the_average_of_four_shifted_high_values():
    x = np.array([[0.4, 0.3]])
    pts = [[0.45, 0.35], [0.45, 0.25], [0.35, 0.35], [0.35, 0.25]]
    assert np.isclose(currin_low(x)[0], np.mean([currin_high([p])[0] for p in pts]))
    assert np.isclose(currin_low([[0.4, 0.02]])[0],  # x2 - 0.05 is clipped at 0
                      np.mean([currin_high([p])[0] for p in [[0.45, 0.07], [0.45, 0.0], [0.35, 0.07], [0.35, 0.0]]]))


def test_cost_to_reach_adds_the_validation_and_is_inf_when_never_reached():
    t = Trace(np.array([1.0, 2.0, 12.0]), np.array([0.5, 0.02, 0.005]), np.array([0.5, 0.5, 1.0]), ("a", "b", "c"))
    assert t.cost_to_reach(0.01) == 12.0 and t.cost_to_reach(0.05, validation_cost=10.0) == 12.0
    assert t.cost_to_reach(0.001) == float("inf")
