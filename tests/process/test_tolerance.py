"""Manufacturing tolerances: Monte Carlo against analytical cases."""

import numpy as np
import pytest

from microdesign.errors import ConfigError
from microdesign.process import ProcessModel, Tolerance, propagate


def test_linear_output_of_normal_input_matches_analytic():
    # y = 3 x + 2, x ~ N(5, 0.5^2)  ->  E[y] = 17, std[y] = 1.5, corr(x, y) = 1; z = -x -> corr = -1
    res = propagate(lambda d: {"x": d["x"], "y": 3 * d["x"] + 2, "z": -d["x"]}, {"x": 5.0},
                    {"x": Tolerance("normal", relative=0.1)}, n_samples=200_000, seed=3)
    assert res.mean["y"] == pytest.approx(17.0, abs=4 * 1.5 / np.sqrt(200_000))
    assert res.std["y"] == pytest.approx(1.5, rel=0.01)
    assert res.corr("x", "y") == pytest.approx(1.0, abs=1e-9)
    assert res.corr("x", "z") == pytest.approx(-1.0, abs=1e-9)


def test_uniform_half_width_gives_analytic_std():
    res = propagate(lambda d: {"x": d["x"]}, {"x": 10.0}, {"x": Tolerance("uniform", absolute=0.3)},
                    n_samples=200_000, seed=1)
    assert res.std["x"] == pytest.approx(0.3 / np.sqrt(3), rel=0.01)
    assert res.samples["x"].min() >= 9.7 and res.samples["x"].max() <= 10.3


def test_seeded_and_reproducible():
    m = ProcessModel(tolerances={"flow_rate_mL_min": {"distribution": "normal", "relative": 0.02}})
    a = m.propagate(1000, seed=7)
    b = m.propagate(1000, seed=7)
    c = m.propagate(1000, seed=8)
    np.testing.assert_array_equal(a.samples["thickness_m"], b.samples["thickness_m"])
    assert not np.array_equal(a.samples["thickness_m"], c.samples["thickness_m"])


def test_flow_tolerance_propagates_to_loading_linearly():
    # dry loading is proportional to the flow rate: its relative std equals the flow's
    m = ProcessModel(tolerances={"flow_rate_mL_min": {"distribution": "normal", "relative": 0.02}})
    res = m.propagate(100_000, seed=0)
    rel = res.std["dry_loading_mg_cm2"] / res.mean["dry_loading_mg_cm2"]
    assert rel == pytest.approx(0.02, rel=0.02)
    assert res.corr("dry_loading_mg_cm2", "thickness_m") == pytest.approx(1.0, abs=1e-9)
    # porosity does not depend on flow: zero variance
    assert res.std["porosity"] == pytest.approx(0.0, abs=1e-15)


def test_vectorised_1e5_samples_all_outputs():
    m = ProcessModel(tolerances={"line_load_N_mm": {"distribution": "uniform", "relative": 0.05},
                                 "am_weight_fraction": {"distribution": "normal", "absolute": 0.002},
                                 "dry_porosity": {"distribution": "normal", "absolute": 0.01}})
    res = m.propagate(100_000, seed=0)
    assert res.correlation.shape == (len(res.output_names),) * 2
    assert res.samples["porosity"].shape == (100_000,)
    assert res.corr("porosity", "thickness_m") > 0.5  # more porous -> thicker at the same loading


@pytest.mark.parametrize("kwargs", [dict(distribution="lognormal", relative=0.1), dict(distribution="normal"),
                                    dict(distribution="normal", relative=0.1, absolute=1.0),
                                    dict(distribution="normal", relative=-0.1)])
def test_bad_tolerance(kwargs):
    with pytest.raises(ConfigError):
        Tolerance(**kwargs)


def test_tolerance_on_unknown_input_rejected():
    with pytest.raises(ConfigError, match="tolerances.bogus"):
        ProcessModel(tolerances={"bogus": {"distribution": "normal", "relative": 0.1}})
