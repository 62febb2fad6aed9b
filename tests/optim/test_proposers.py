"""Proposers: bounds, fixed parameters, constraints, determinism, and GP + qLogNEI beating Sobol."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from microdesign.config import compose
from microdesign.errors import ConfigError
from microdesign.design import DesignSpace
from microdesign.optim import BotorchProposer, SobolProposer, build_proposer, fit_gp

SPACE_CFG = {"parameters": {
    "a": {"unit": "1", "lower": 0.88, "upper": 0.97, "fixed": None},
    "b": {"unit": "1", "lower": 0.25, "upper": 0.50, "fixed": None},
    "c": {"unit": "1", "lower": 0.0, "upper": 1.0, "fixed": 0.3},
    "m": {"unit": "mg.cm-2", "lower": 10.0, "upper": 40.0, "fixed": None},
}}


def _space(constraints=None):
    return DesignSpace.from_config(SPACE_CFG, constraints)


@pytest.mark.parametrize("cls", [SobolProposer, BotorchProposer])
def test_sobol_phase_within_bounds_fixed_and_deterministic(cls):
    s = _space()
    p = cls(s, q=3)
    a = p.propose(np.zeros((0, 4)), np.zeros(0), None, n_proposed=0, q=3, seed=5).X
    b = p.propose(np.zeros((0, 4)), np.zeros(0), None, n_proposed=0, q=3, seed=5).X
    c = p.propose(np.zeros((0, 4)), np.zeros(0), None, n_proposed=3, q=3, seed=5).X
    assert np.array_equal(a, b)
    assert a.shape == (3, 4) and not np.allclose(a, c)  # the sequence moves on
    assert np.all(a >= s.lower) and np.all(a <= s.upper) and np.allclose(a[:, 2], 0.3)


def _toy(X: np.ndarray) -> np.ndarray:
    """Smooth, single-peaked function of the three free parameters, maximum 1 at (0.93, 0.33, 27)."""
    u = np.stack([(X[:, 0] - 0.93) / 0.09, (X[:, 1] - 0.33) / 0.25, (X[:, 3] - 27.0) / 30.0], 1)
    return np.exp(-4.0 * (u ** 2).sum(1))


def test_gp_proposals_respect_bounds_fixed_and_constraints():
    cons = [{"coefficients": {"a": 1.0, "b": 1.0}, "rhs": 1.3, "sense": "<="}]
    s = _space(cons)
    p = BotorchProposer(s, q=2, n_initial=6, num_restarts=2, raw_samples=32, mc_samples=32, maxiter=30)
    X = p.propose(None, np.zeros(0), None, 0, 6, seed=1).X
    assert np.all(X[:, 0] + X[:, 1] <= 1.3 + 1e-9)
    Y = _toy(X)
    prop = p.propose(X, Y, np.full(6, 1e-4), n_proposed=6, q=2, seed=1)
    assert prop.method == "qLogNEI" and prop.X.shape == (2, 4)
    assert np.all(prop.X >= s.lower - 1e-12) and np.all(prop.X <= s.upper + 1e-12)
    assert np.allclose(prop.X[:, 2], 0.3)
    assert np.all(prop.X[:, 0] + prop.X[:, 1] <= 1.3 + 1e-6)


def test_observed_noise_enters_the_gp():
    """A GP given large observed noise smooths more: its posterior at the data is further from Y."""
    g = torch.Generator().manual_seed(0)
    Z = torch.rand(12, 2, generator=g, dtype=torch.float64)
    Y = (torch.sin(6 * Z[:, :1]) + 0.3 * torch.randn(12, 1, generator=g, dtype=torch.float64))
    quiet = fit_gp(Z, Y, torch.full_like(Y, 1e-6))
    noisy = fit_gp(Z, Y, torch.full_like(Y, 0.5))
    with torch.no_grad():
        r_quiet = (quiet.posterior(Z).mean - Y).abs().mean()
        r_noisy = (noisy.posterior(Z).mean - Y).abs().mean()
    assert r_noisy > 2 * r_quiet
    assert torch.allclose(noisy.likelihood.noise.mean() * Y.var(), torch.tensor(0.5, dtype=torch.float64), rtol=0.2)


def test_qlognei_beats_sobol_on_analytic_function():
    """Over 3 seeds, 16 evaluations (6 Sobol + 10 GP): mean regret of qLogNEI < half that of Sobol."""
    s = _space()
    regrets = {"bo": [], "sobol": []}
    for seed in range(3):
        for kind in regrets:
            p = (BotorchProposer(s, q=2, n_initial=6, num_restarts=4, raw_samples=64, mc_samples=64, maxiter=50,
                                 seed=seed) if kind == "bo" else SobolProposer(s, q=2, seed=seed))
            X = np.zeros((0, 4))
            while X.shape[0] < 16:
                prop = p.propose(X, _toy(X), np.full(X.shape[0], 1e-6), X.shape[0], 2, seed=seed + 100 * X.shape[0])
                X = np.vstack([X, prop.X]) if X.size else prop.X
            regrets[kind].append(1.0 - _toy(X).max())
    bo, so = np.mean(regrets["bo"]), np.mean(regrets["sobol"])
    assert bo < 0.5 * so, regrets


@pytest.mark.parametrize("option", ["qlognei", "sobol"])
def test_optimiser_configs_compose_and_instantiate(option):
    cfg = compose("campaign", [f"optimiser={option}", "optimiser.q=4"])
    p = build_proposer(cfg.optimiser, DesignSpace.from_config(cfg.design_space), seed=0)
    assert p.q == 4
    X = p.propose(np.zeros((0, p.space.d)), np.zeros(0), None, 0, 4, seed=0).X
    assert X.shape == (4, p.space.d)


def test_gp_failure_falls_back_to_sobol(monkeypatch):
    s = _space()
    p = BotorchProposer(s, q=2, n_initial=2)

    def boom(*a, **k):
        raise RuntimeError("not positive definite")

    monkeypatch.setattr(p, "_model_based", boom)
    X = p.propose(None, None, None, 0, 4, seed=3).X
    prop = p.propose(X, _toy(X), None, n_proposed=4, q=2, seed=3)
    assert prop.method == "sobol-fallback" and np.array_equal(prop.X, SobolProposer(s, seed=3).propose(
        None, None, None, 4, 2, seed=0).X)


def test_failed_gp_fit_is_a_recorded_sobol_fallback_not_a_model_on_prior_hyperparameters(monkeypatch):
    import botorch.fit

    from microdesign.optim import GPFitError
    from microdesign.optim.multi_objective import HypervolumeProposer

    def fails(*a, **k):
        raise RuntimeError("all restarts failed")

    monkeypatch.setattr(botorch.fit, "fit_gpytorch_mll", fails)
    s = _space()
    X = SobolProposer(s, seed=1).propose(None, None, None, 0, 6, seed=0).X
    Z = s.to_free_unit(X)
    with pytest.raises(GPFitError, match="all restarts failed"):
        fit_gp(Z, torch.as_tensor(_toy(X), dtype=torch.float64).unsqueeze(-1), None)
    prop = BotorchProposer(s, n_initial=2).propose(X, _toy(X), None, n_proposed=6, q=1, seed=3)
    assert prop.method == "sobol-fallback" and "GPFitError" in prop.note and "all restarts failed" in prop.note
    Y2 = np.stack([_toy(X), -_toy(X) ** 2], 1)
    prop = HypervolumeProposer(s, ref_point=[-10.0, -100.0], n_initial=2).propose(X, Y2, None, 6, 1, seed=3)
    assert prop.method == "sobol-fallback" and "GPFitError" in prop.note


@pytest.mark.parametrize("kind", ["qLogNEI", "qLogNEHVI"])
def test_pending_designs_steer_the_next_proposal_away(kind):
    """Asynchronous batch BO: with the design it would propose already running (``X_pending``), the same
    proposal (same data, same seed) picks another design; without pending designs it repeats itself."""
    from microdesign.optim.multi_objective import HypervolumeProposer

    s = _space()
    X = SobolProposer(s, seed=1).propose(None, None, None, 0, 8, seed=0).X
    if kind == "qLogNEI":
        p = BotorchProposer(s, n_initial=2, num_restarts=4, raw_samples=64, mc_samples=64, maxiter=50)
        Y, Yvar = _toy(X), np.full(8, 1e-4)
    else:
        p = HypervolumeProposer(s, ref_point=[-0.1, -1.1], n_initial=2, num_restarts=4, raw_samples=64,
                                mc_samples=32, maxiter=50)
        Y = np.stack([_toy(X), -_toy(X) ** 2], 1)
        Yvar = np.full((8, 2), 1e-4)
    first = p.propose(X, Y, Yvar, n_proposed=8, q=1, seed=3)
    again = p.propose(X, Y, Yvar, n_proposed=8, q=1, seed=3, X_pending=np.zeros((0, 4)))
    other = p.propose(X, Y, Yvar, n_proposed=8, q=1, seed=3, X_pending=first.X)
    assert first.method == other.method == kind
    assert np.allclose(again.X, first.X)
    gap = s.to_free_unit(other.X) - s.to_free_unit(first.X)
    assert float(gap.norm()) > 0.02, (first.X, other.X)


def test_proposer_options_checked_by_every_proposer():
    from microdesign.optim.multi_objective import HypervolumeProposer

    s = _space()
    makers = {"sobol": lambda **kw: SobolProposer(s, **kw), "qLogNEI": lambda **kw: BotorchProposer(s, **kw),
              "qLogNEHVI": lambda **kw: HypervolumeProposer(s, [0.0, 0.0], **kw)}
    for name, make in makers.items():
        with pytest.raises(ConfigError, match=r"optimiser\.q = 0: expected an integer >= 1"):
            make(q=0)
        if name == "sobol":
            continue
        with pytest.raises(ConfigError, match=r"optimiser\.n_initial = 0: expected an integer >= 1"):
            make(n_initial=0)
        with pytest.raises(ConfigError, match=r"optimiser\.noise = 'fixed': expected 'observed' or 'inferred'"):
            make(noise="fixed")
