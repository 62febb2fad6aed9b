"""Analytic two-level problem for the multi-fidelity proposer: known optimum, known costs.

The Currin exponential function (Currin et al., "Bayesian prediction of deterministic functions,
with applications to the design and analysis of computer experiments", JASA 1991) on ``[0, 1]^2``
with the low-fidelity version of Xiong, Qian & Wu ("Sequential design and analysis of high-accuracy
and low-accuracy computer codes", Technometrics 2013): the average of the high-fidelity function
at four points shifted by ±0.05. Both as listed by the Virtual Library of Simulation Experiments
(Surjanovic & Bingham, SFU). Maximised: the optimum is 13.7987 at ``(0.2165, 0)`` (grid of 2001²).

:func:`run_single_fidelity` and :func:`run_multi_fidelity` run a proposer on it in a plain loop and
return the cost trace; tests/optim/test_multi_fidelity.py and scripts/benchmark_multi_fidelity.py use
them (docs/multi_fidelity.md).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from microdesign.design.space import DesignSpace, Parameter

CURRIN_OPTIMUM = 13.798719346795524  # max of currin_high on a 2001 x 2001 grid of [0, 1]^2, at (0.2165, 0)


def currin_high(X: np.ndarray) -> np.ndarray:
    """Currin exponential function, ``n x 2`` in ``[0, 1]^2`` -> shape ``n`` (``x2 = 0`` is its limit 1 of the factor)."""
    X = np.atleast_2d(np.asarray(X, dtype=np.float64))
    x1, x2 = X[:, 0], X[:, 1]
    with np.errstate(divide="ignore"):
        factor = 1.0 - np.exp(-1.0 / (2.0 * np.maximum(x2, 0.0)))
    return factor * (2300 * x1**3 + 1900 * x1**2 + 2092 * x1 + 60) / (100 * x1**3 + 500 * x1**2 + 4 * x1 + 20)


def currin_low(X: np.ndarray) -> np.ndarray:
    """Low-fidelity Currin (Xiong et al. 2013): mean of :func:`currin_high` at ``(x1 ± 0.05, x2 + 0.05)``
    and ``(x1 ± 0.05, max(0, x2 - 0.05))``; shape ``n``."""
    X = np.atleast_2d(np.asarray(X, dtype=np.float64))
    x1, x2 = X[:, 0], X[:, 1]
    up, down = x2 + 0.05, np.maximum(0.0, x2 - 0.05)
    pts = [(x1 + 0.05, up), (x1 + 0.05, down), (x1 - 0.05, up), (x1 - 0.05, down)]
    return 0.25 * sum(currin_high(np.column_stack(p)) for p in pts)


def currin_space() -> DesignSpace:
    """The unit square as a design space (two dimensionless parameters ``x1``, ``x2``)."""
    return DesignSpace([Parameter("x1", "1", 0.0, 1.0), Parameter("x2", "1", 0.0, 1.0)])


@dataclass(frozen=True)
class Trace:
    """One run of a proposer on an analytic problem.

    Attributes:
        cost: cumulative cost after each evaluation (cost units), shape ``n``.
        relative_regret: ``(f* - f(recommendation)) / |f*|`` at the highest level after each evaluation, shape ``n``.
        fidelity: fidelity of each evaluation, shape ``n``.
        methods: how each design was proposed.
    """

    cost: np.ndarray
    relative_regret: np.ndarray
    fidelity: np.ndarray
    methods: tuple[str, ...]

    def cost_to_reach(self, tolerance: float, validation_cost: float = 0.0) -> float:
        """Cost until the recommendation is within ``tolerance`` (relative regret), plus
        ``validation_cost`` (one highest-level evaluation of a recommendation made from cheaper
        levels); ``inf`` when never reached."""
        hit = np.flatnonzero(self.relative_regret <= tolerance)
        return float(self.cost[hit[0]] + validation_cost) if hit.size else float("inf")


def run_single_fidelity(proposer, f: Callable[[np.ndarray], np.ndarray], optimum: float, cost: float,
                        n_evaluations: int, seed: int, stop_at: float | None = None) -> Trace:
    """Evaluate ``f`` (the highest level, ``cost`` each) at ``proposer``'s designs, one at a time.

    The recommendation is the best observed design (``f`` is noise-free). Stops after
    ``n_evaluations`` or once the relative regret is ``<= stop_at``.
    """
    X, Y, costs, regrets, methods = [], [], [], [], []
    for k in range(n_evaluations):
        p = proposer.propose(np.asarray(X).reshape(-1, proposer.space.d), np.asarray(Y), None, k, 1, seed * 1000 + k)
        X.append(p.X[0])
        Y.append(float(f(p.X[:1])[0]))
        costs.append(cost)
        regrets.append((optimum - max(Y)) / abs(optimum))
        methods.append(p.method)
        if stop_at is not None and regrets[-1] <= stop_at:
            break
    return Trace(np.cumsum(costs), np.asarray(regrets), np.ones(len(X)), tuple(methods))


def run_multi_fidelity(proposer, levels_f: dict[float, Callable[[np.ndarray], np.ndarray]], optimum: float,
                       n_evaluations: int, seed: int, stop_at: float | None = None,
                       max_cost: float | None = None) -> Trace:
    """Evaluate each proposed (design, level) with ``levels_f[fidelity]``, one at a time.

    The cost of an evaluation is the proposer's level cost (``cost_s`` of its levels). The
    recommendation is :meth:`~microdesign.optim.multi_fidelity.MultiFidelityProposer.recommend`'s,
    scored with the highest level's function. Stops after ``n_evaluations``, once the relative regret
    is ``<= stop_at``, or once the cumulative cost reaches ``max_cost``.
    """
    d = proposer.space.d
    top = proposer.levels[-1].fidelity
    X, Y, costs, regrets, fids, methods = [], [], [], [], [], []
    for k in range(n_evaluations):
        p = proposer.propose(np.asarray(X).reshape(-1, d + 1), np.asarray(Y), None, k, 1, seed * 1000 + k)
        s = float(p.fidelity[0])
        X.append(np.append(p.X[0], s))
        Y.append(float(levels_f[s](p.X[:1])[0]))
        costs.append(float(p.cost_s[0]))
        fids.append(s)
        methods.append(p.method)
        rec = proposer.recommend(np.asarray(X), np.asarray(Y)).design
        regrets.append((optimum - float(levels_f[top](rec[None, :])[0])) / abs(optimum))
        if (stop_at is not None and regrets[-1] <= stop_at) or (max_cost is not None and sum(costs) >= max_cost):
            break
    return Trace(np.cumsum(costs), np.asarray(regrets), np.asarray(fids), tuple(methods))
