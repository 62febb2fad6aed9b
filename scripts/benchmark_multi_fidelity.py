"""Benchmark of the multi-fidelity proposer on the analytic two-level problem -> docs/benchmarks/multi_fidelity.md.

Currin exponential function (high level, cost 10) with three low levels (microdesign.optim.analytic):

* ``correlated``: Xiong et al.'s low-fidelity Currin (cost 1);
* ``dear-low``: the same low level at cost 5 (cost ratio 2 instead of 10);
* ``misleading``: a low level whose optimum is elsewhere (the high function mirrored in x1, cost 1).

For each scenario and seed: the cost until the recommendation is within 1 % of the optimum
(multi-fidelity: plus one high-level validation of it), against qLogNEI at the high level, and the
correlation of the two levels over a 201 x 201 grid.

Usage:
    python scripts/benchmark_multi_fidelity.py --seeds 4
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from _bench import write_section  # noqa: E402

log = logging.getLogger("benchmark_multi_fidelity")
TOL = 0.01
HIGH_COST = 10.0


def mirrored_low(X: np.ndarray) -> np.ndarray:
    """The high function mirrored in x1: a cheap level with the optimum at x1 = 0.78 instead of 0.22."""
    from microdesign.optim.analytic import currin_high

    X = np.atleast_2d(np.asarray(X, dtype=np.float64))
    return currin_high(np.column_stack([1.0 - X[:, 0], X[:, 1]]))


def level_correlation(low) -> tuple[float, float]:
    """Pearson correlation of the levels on a 201^2 grid, and the high level's relative regret at the low level's optimum."""
    from microdesign.optim.analytic import CURRIN_OPTIMUM, currin_high

    g = np.linspace(0.0, 1.0, 201)
    G = np.stack(np.meshgrid(g, g), -1).reshape(-1, 2)
    fh, fl = currin_high(G), low(G)
    return float(np.corrcoef(fh, fl)[0, 1]), float((CURRIN_OPTIMUM - fh[np.argmax(fl)]) / CURRIN_OPTIMUM)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, default=4)
    ap.add_argument("--max-evaluations", type=int, default=60, help="cap per multi-fidelity run (the cost cap: the worst single-fidelity cost)")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import torch

    torch.set_num_threads(1)
    from microdesign.optim import BotorchProposer
    from microdesign.optim.analytic import (CURRIN_OPTIMUM, currin_high, currin_low, currin_space, run_multi_fidelity,
                                            run_single_fidelity)
    from microdesign.optim.multi_fidelity import MultiFidelityProposer

    t0 = time.perf_counter()
    space = currin_space()
    seeds = list(range(args.seeds))
    sf = {}
    for s in seeds:
        tr = run_single_fidelity(BotorchProposer(space, n_initial=4, num_restarts=2, raw_samples=64, mc_samples=128,
                                                 maxiter=100, noise="inferred", seed=s),
                                 currin_high, CURRIN_OPTIMUM, HIGH_COST, n_evaluations=40, seed=s, stop_at=TOL)
        sf[s] = tr.cost_to_reach(TOL)
        log.info("single fidelity seed %d: cost %.0f (%d evaluations)", s, sf[s], len(tr.cost))
    scenarios = [("correlated", currin_low, 1.0), ("dear-low", currin_low, 5.0), ("misleading", mirrored_low, 1.0)]
    rows = []
    for name, low, low_cost in scenarios:
        corr, regret_at_low_opt = level_correlation(low)
        levels = [{"name": "low", "fidelity": 0.5, "cost_s": low_cost},
                  {"name": "high", "fidelity": 1.0, "cost_s": HIGH_COST}]
        costs, spent, low_share = [], [], []
        for s in seeds:
            p = MultiFidelityProposer(space, levels, n_initial=6, n_initial_high=2, num_restarts=2, raw_samples=64,
                                      maxiter=100, noise="inferred", seed=s)
            tr = run_multi_fidelity(p, {0.5: low, 1.0: currin_high}, CURRIN_OPTIMUM, args.max_evaluations, s,
                                    stop_at=TOL, max_cost=max(sf.values()))
            costs.append(tr.cost_to_reach(TOL, validation_cost=HIGH_COST))
            spent.append(float(tr.cost[-1]))
            low_share.append(float(np.mean(tr.fidelity < 1.0)))
            log.info("%s seed %d: cost %.0f (%d evaluations, %.0f%% low)", name, s, costs[-1], len(tr.cost),
                     100 * low_share[-1])
        rows.append((name, low_cost, corr, regret_at_low_opt, costs, spent, low_share))

    def fmt(c, spent=None):
        if np.isfinite(c):
            return f"{c:.0f}"
        return "not reached" if spent is None else f"not reached ({spent:.0f} spent)"

    sf_costs = [sf[s] for s in seeds]
    body = [f"Cost until the recommendation is within {100 * TOL:.0f} % of the Currin optimum "
            f"(multi-fidelity: plus one high-level validation, {HIGH_COST:.0f}); high level costs "
            f"{HIGH_COST:.0f}; seeds {seeds}. Single fidelity: qLogNEI at the high level, n_initial 4. "
            "Multi-fidelity: qMFMES, n_initial 6 (2 high). Correlation: Pearson over a 201^2 grid; "
            "'regret at low optimum': relative regret of the high level at the low level's maximiser.\n",
            "| scenario | low cost | level correlation | regret at low optimum | multi-fidelity cost per seed "
            "| median | single-fidelity median | low share of evaluations |",
            "|---|---|---|---|---|---|---|---|"]
    for name, low_cost, corr, reg, costs, spent, share in rows:
        body.append(f"| {name} | {low_cost:.0f} | {corr:.3f} | {100 * reg:.1f} % | {', '.join(fmt(c, x) for c, x in zip(costs, spent))} "
                    f"| {fmt(float(np.median(costs)))} | {fmt(float(np.median(sf_costs)))} | {100 * np.mean(share):.0f} % |")
    body.append(f"\nSingle-fidelity cost per seed: {', '.join(fmt(c) for c in sf_costs)}.")
    body.append(f"\nBenchmark wall time: {(time.perf_counter() - t0) / 60:.1f} min.")
    command = "python scripts/benchmark_multi_fidelity.py " + " ".join(sys.argv[1:])
    path = write_section("multi_fidelity", "Multi-fidelity proposer on the analytic two-level problem",
                         "\n".join(body), command.strip())
    log.info("wrote %s", path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
