"""Calendering: the porosity-line load law (Meyer et al. 2017, eq. 3) by hand, its inverse, monotonic down to the minimum porosity."""

import math

import numpy as np
import pytest

from microdesign.process.calendering import calendered_porosity, line_load_for_porosity
from microdesign.process.chain import evaluate_process


def test_calendering_meyer_by_hand_and_inverse():
    eps = calendered_porosity(0.5, 700.0, 0.2, 700.0)
    assert eps == pytest.approx(0.2 + 0.3 * math.exp(-1.0), rel=1e-12)
    assert line_load_for_porosity(eps, 0.5, 0.2, 700.0) == pytest.approx(700.0, rel=1e-12)
    assert calendered_porosity(0.5, 0.0, 0.2, 700.0) == pytest.approx(0.5)


def test_more_line_load_lower_porosity_never_below_minimum():
    loads = np.linspace(0.0, 50_000.0, 2001)
    eps = calendered_porosity(0.5, loads, 0.2, 700.0)
    assert np.all(np.diff(eps) < 0) or np.all(np.diff(eps) <= 0)
    assert np.all(np.diff(eps[:200]) < 0)  # strictly decreasing where not saturated
    assert np.all(eps >= 0.2)
    s = evaluate_process({"line_load_N_mm": loads})
    assert np.all(np.diff(s["thickness_m"]) <= 0)
    assert np.all(np.diff(s["coating_density_g_cm3"]) >= 0)
