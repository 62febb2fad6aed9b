"""Multi-fidelity proposer: levels chosen and recorded, cost-aware, deterministic on resume, and cheaper
to the optimum than single fidelity on an analytic two-level problem (docs/multi_fidelity.md)."""

from __future__ import annotations

import numpy as np
import pytest

from microdesign.design import DesignSpace
from microdesign.errors import ConfigError
from microdesign.optim import BotorchProposer, SobolProposer
from microdesign.optim.analytic import (CURRIN_OPTIMUM, currin_high, currin_low, currin_space, run_multi_fidelity,
                                        run_single_fidelity)
from microdesign.optim.multi_fidelity import PROPOSAL_WINDOW, MultiFidelityProposer, proposal_overhead

LEVELS = [{"name": "low", "fidelity": 0.5, "cost_s": 1.0}, {"name": "high", "fidelity": 1.0, "cost_s": 10.0}]
FAST = {"num_restarts": 2, "raw_samples": 32, "maxiter": 50, "num_candidates": 200}

SPACE_CFG = {"parameters": {
    "a": {"unit": "1", "lower": 0.88, "upper": 0.97, "fixed": None},
    "c": {"unit": "1", "lower": 0.0, "upper": 1.0, "fixed": 0.3},
    "m": {"unit": "mg.cm-2", "lower": 10.0, "upper": 40.0, "fixed": None},
}}


def _observed(n_high: int = 2, n_low: int = 6, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Currin designs with their fidelity column and values at their level."""
    rng = np.random.default_rng(seed)
    D = rng.uniform(size=(n_high + n_low, 2))
    s = np.r_[np.ones(n_high), np.full(n_low, 0.5)]
    Y = np.where(s == 1.0, currin_high(D), currin_low(D))
    return np.column_stack([D, s]), Y


def test_initial_design_is_the_sobol_sequence_first_points_at_the_highest_level():
    space = currin_space()
    p = MultiFidelityProposer(space, LEVELS, n_initial=6, n_initial_high=2, seed=3)
    a = p.propose(None, None, None, n_proposed=0, q=4, seed=0)
    b = p.propose(None, None, None, n_proposed=4, q=2, seed=0)
    assert a.method == "sobol" and a.level == ("high", "high", "low", "low") and b.level == ("low", "low")
    assert np.allclose(a.fidelity, [1.0, 1.0, 0.5, 0.5]) and np.allclose(a.cost_s, [10.0, 10.0, 1.0, 1.0])
    sobol = SobolProposer(space, seed=3).propose(None, None, None, 0, 6, 0).X  # the same sequence of designs
    assert np.allclose(np.vstack([a.X, b.X]), sobol)


def test_model_based_proposal_picks_a_level_keeps_fixed_parameters_and_resumes_identically():
    space = DesignSpace.from_config(SPACE_CFG)
    rng = np.random.default_rng(1)
    X = np.column_stack([space.from_free_unit(rng.uniform(size=(8, 2))), np.r_[1.0, 1.0, np.full(6, 0.5)]])
    Y = -((X[:, 0] - 0.93) / 0.09) ** 2 - ((X[:, 2] - 27.0) / 30.0) ** 2 - 0.1 * (X[:, 3] < 1)  # low: biased
    timings = (X[:, 3], np.r_[20.0, 20.0, np.full(6, 2.0)])  # the machine runs at twice the prior seconds
    p = MultiFidelityProposer(space, LEVELS, n_initial=8, **FAST)
    prop = p.propose(X, Y, np.full(8, 1e-4), n_proposed=8, q=2, seed=5, timings=timings)
    assert prop.method == "qMFMES" and prop.X.shape == (2, 3) and prop.note is None
    assert set(prop.level) <= {"low", "high"} and np.allclose(prop.fidelity, [{"low": 0.5, "high": 1.0}[n] for n in prop.level])
    assert np.allclose(prop.cost_s, [{"low": 2.0, "high": 20.0}[n] for n in prop.level])  # refitted cost model
    assert np.all(prop.X >= space.lower - 1e-12) and np.all(prop.X <= space.upper + 1e-12)
    assert np.allclose(prop.X[:, 1], 0.3)
    # a fresh proposer given the recorded history (designs with their levels) proposes the same
    again = MultiFidelityProposer(space, LEVELS, n_initial=8, **FAST).propose(X, Y, np.full(8, 1e-4), 8, 2, 5,
                                                                               timings=timings)
    assert np.array_equal(again.X, prop.X) and again.level == prop.level


def test_knowledge_gradient_acquisition_proposes_a_level():
    X, Y = _observed()
    p = MultiFidelityProposer(currin_space(), LEVELS, n_initial=4, acquisition="kg", num_fantasies=4,
                              num_restarts=1, raw_samples=16, maxiter=20)
    prop = p.propose(X, Y, None, n_proposed=8, q=1, seed=0)
    assert prop.method == "qMFKG" and prop.level[0] in ("low", "high") and prop.note is None


def test_cost_decides_the_level():
    """The same history: with a free high level the high level is chosen, with a dear one the low level."""
    X, Y = _observed()
    cheap_high = [{**LEVELS[0], "cost_s": 10.0}, {**LEVELS[1], "cost_s": 10.0}]
    dear_high = [LEVELS[0], {**LEVELS[1], "cost_s": 1000.0}]
    assert MultiFidelityProposer(currin_space(), cheap_high, n_initial=4, **FAST).propose(X, Y, None, 8, 1, 0).level == ("high",)
    assert MultiFidelityProposer(currin_space(), dear_high, n_initial=4, **FAST).propose(X, Y, None, 8, 1, 0).level == ("low",)


def test_numerical_failure_falls_back_to_sobol_at_the_cheap_level_with_a_note():
    X, Y = _observed()
    Y[3] = np.nan
    prop = MultiFidelityProposer(currin_space(), LEVELS, n_initial=4, n_initial_high=1, **FAST).propose(X, Y, None, 8, 1, 0)
    assert prop.method == "sobol-fallback" and "NaN" in prop.note and prop.level == ("low",)


def test_bad_input_is_a_config_error():
    X, Y = _observed()
    X[0, 2] = 0.7  # no level has this fidelity
    p = MultiFidelityProposer(currin_space(), LEVELS, n_initial=4)
    with pytest.raises(ConfigError):
        p.propose(X, Y, None, 8, 1, 0)
    for kwargs, key in [({"n_initial_high": 9}, "optimiser.n_initial_high"), ({"acquisition": "ei"}, "optimiser.acquisition"),
                        ({"levels": LEVELS[:1]}, "fidelity_levels.levels"), ({"num_fantasies": 0}, "optimiser.num_fantasies")]:
        with pytest.raises(ConfigError) as e:
            MultiFidelityProposer(currin_space(), **{"levels": LEVELS, "n_initial": 8, **kwargs})
        assert e.value.parameter == key


def test_proposal_overhead_is_the_median_of_the_recent_proposals_and_enters_the_level_costs():
    assert proposal_overhead([]) == 0.0 and proposal_overhead([np.nan, -1.0]) == 0.0
    old_then_recent = [100.0] * 3 + [1.0, 2.0, 3.0, 4.0, 5.0][:PROPOSAL_WINDOW]
    assert proposal_overhead(old_then_recent) == 3.0  # the old, slow proposals are out of the window
    X, Y = _observed()
    timings = (X[:, 2], np.where(X[:, 2] == 1.0, 10.0, 1.0))
    p = MultiFidelityProposer(currin_space(), LEVELS, n_initial=4, validate_recommendation=False, **FAST)
    prop = p.propose(X, Y, None, 8, 1, 0, timings=timings, proposal_seconds=[2.0, 2.0])
    assert np.allclose(prop.cost_s, {"low": 3.0, "high": 12.0}[prop.level[0]])
    off = MultiFidelityProposer(currin_space(), LEVELS, n_initial=4, cost_includes_proposal=False,
                                validate_recommendation=False, **FAST)
    prop = off.propose(X, Y, None, 8, 1, 0, timings=timings, proposal_seconds=[2.0, 2.0])
    assert np.allclose(prop.cost_s, {"low": 1.0, "high": 10.0}[prop.level[0]])


def _low_only_optimum() -> tuple[np.ndarray, np.ndarray]:
    """f = -((x1 - 0.3)^2 + (x2 - 0.6)^2) on a 6 x 6 grid at the low level (unbiased), plus three
    high-level designs far from the optimum: the recommendation is a design seen only at the low level."""
    g = np.linspace(0.05, 0.95, 6)
    D = np.stack(np.meshgrid(g, g), -1).reshape(-1, 2)
    H = np.array([[0.9, 0.1], [0.8, 0.9], [0.1, 0.1]])
    D = np.vstack([H, D])
    s = np.r_[np.ones(3), np.full(36, 0.5)]
    return np.column_stack([D, s]), -((D[:, 0] - 0.3) ** 2 + (D[:, 1] - 0.6) ** 2)


def test_recommendation_seen_only_at_low_levels_is_validated_once_the_search_converged():
    """Analytic case with fixed maxima: the rule fires only for an unvalidated recommendation predicted
    to beat the highest-level observations, when the expected shortfall to the maxima is within its sd."""
    X, Y = _low_only_optimum()
    p = MultiFidelityProposer(currin_space(), LEVELS, n_initial=4, **FAST)
    _, model = p._fit(X, Y, np.full(Y.size, 1e-6))
    i = int(np.argmax(p.posterior_at_target(X, Y, np.full(Y.size, 1e-6))))
    assert X[i, 2] == 0.5 and Y[i] == Y[X[:, 2] == 0.5].max()  # the best grid point, low level only
    mu = float(p.posterior_at_target(X, Y, np.full(Y.size, 1e-6))[i])
    import torch
    at = torch.full((10,), mu)  # sampled maxima equal to the recommendation's mean: converged
    assert p._recommendation_to_validate(X, Y, model, None, at) == i
    assert p._recommendation_to_validate(X, Y, model, None, at + 10.0) is None  # much better maxima expected
    pending = np.append(X[i, :2], 1.0)[None, :]
    assert p._recommendation_to_validate(X, Y, model, pending, at) is None  # already being validated
    assert p._recommendation_to_validate(X, Y, model, None, at, pending) is None  # failed there: not again
    low_failure = np.append(X[i, :2], 0.5)[None, :]
    assert p._recommendation_to_validate(X, Y, model, None, at, low_failure) == i  # a low-level failure: still
    Yb = Y.copy()
    Yb[0] = mu + 1.0  # a highest-level observation already better than the prediction
    assert p._recommendation_to_validate(X, Yb, model, None, at) is None
    Xv = np.vstack([X, np.append(X[i, :2], 1.0)])  # the recommendation seen at the highest level
    Yv = np.append(Y, Y[i])
    _, mv = p._fit(Xv, Yv, np.full(Yv.size, 1e-6))
    assert p._recommendation_to_validate(Xv, Yv, mv, None, at) is None


def test_propose_puts_the_validated_recommendation_first_at_the_highest_level():
    """The rule's choice (forced here) is the first design of the batch, at the highest level, with a
    note; the rest of the batch is the acquisition's, chosen with it pending; off: the acquisition's."""
    X, Y = _low_only_optimum()
    p = MultiFidelityProposer(currin_space(), LEVELS, n_initial=4, **FAST)
    i = int(np.argmax(p.posterior_at_target(X, Y, np.full(Y.size, 1e-6))))
    p._recommendation_to_validate = lambda *args: i
    prop = p.propose(X, Y, np.full(Y.size, 1e-6), Y.size, 2, 3)
    assert prop.method == "qMFMES" and prop.level[0] == "high" and np.allclose(prop.X[0], X[i, :2])
    assert "recommendation" in prop.note and prop.X.shape == (2, 2) and not np.allclose(prop.X[1], X[i, :2])
    off = MultiFidelityProposer(currin_space(), LEVELS, n_initial=4, validate_recommendation=False, **FAST)
    off._recommendation_to_validate = lambda *args: i
    assert off.propose(X, Y, np.full(Y.size, 1e-6), Y.size, 1, 3).note is None


def test_recommendation_is_judged_at_the_highest_level():
    """Low-level values are shifted up by 5: the best raw value is a low-level design, but the GP (which
    learns the shift from the paired designs) recommends by its mean at the highest level."""
    rng = np.random.default_rng(0)
    D = rng.uniform(size=(10, 2))
    D = np.vstack([D, D[:4]])
    s = np.r_[np.full(10, 0.5), np.ones(4)]
    f = -((D[:, 0] - 0.3) ** 2 + (D[:, 1] - 0.6) ** 2)
    Y = f + 5.0 * (s < 1)
    p = MultiFidelityProposer(currin_space(), LEVELS, n_initial=4)
    rec = p.recommend(np.column_stack([D, s]), Y, np.full(14, 1e-6))
    assert rec.method == "posterior-mean" and rec.index == int(np.argmax(f))  # f does not depend on the level
    assert abs(rec.predicted_value - f.max()) < 0.1  # the shift is removed
    one = p.recommend(np.array([[0.2, 0.3, 0.5]]), np.array([1.0]))  # no GP from one observation
    assert one.method == "best-observed" and one.index == 0


@pytest.mark.slow
def test_multi_fidelity_reaches_the_optimum_at_lower_cost_than_single_fidelity():
    """Currin two-level problem (low costs 1, high 10): cost until the recommendation is within 1 % of
    the optimum (multi-fidelity: plus one high-level validation of it) vs qLogNEI at the high level.
    Measured over seeds in docs/multi_fidelity.md."""
    space, seed, tol = currin_space(), 1, 0.01
    sf = run_single_fidelity(BotorchProposer(space, n_initial=4, num_restarts=2, raw_samples=64, mc_samples=128,
                                             maxiter=100, noise="inferred", seed=seed),
                             currin_high, CURRIN_OPTIMUM, cost=10.0, n_evaluations=30, seed=seed, stop_at=tol)
    sf_cost = sf.cost_to_reach(tol)
    assert np.isfinite(sf_cost)
    mf = run_multi_fidelity(MultiFidelityProposer(space, LEVELS, n_initial=6, n_initial_high=2, num_restarts=2,
                                                  raw_samples=64, maxiter=100, noise="inferred", seed=seed),
                            {0.5: currin_low, 1.0: currin_high}, CURRIN_OPTIMUM, n_evaluations=40, seed=seed,
                            stop_at=tol, max_cost=sf_cost)
    mf_cost = mf.cost_to_reach(tol, validation_cost=10.0)
    assert mf_cost < 0.6 * sf_cost, (mf_cost, sf_cost)
    assert (mf.fidelity == 0.5).sum() > (mf.fidelity == 1.0).sum()  # the cheap level explored
