"""Benchmark the robust objectives: cost per evaluation of each against the nominal objective (ratio).

Usage: python scripts/benchmark_robust.py [--designs 5] [--samples 256] [--no-dfn]
Writes docs/benchmarks/robust.md.

One evaluation = map the manufacturing settings -> generator -> characterisation -> cell -> objective
(campaign.evaluate.TrialEvaluator, in-process, one thread). Two settings: the analytic stages
(experiment=analytic: closed-form cell) and the stub structure stages with the real PyBaMM DFN 4680
cell at 10 W (the case study's stub profile), where a robust objective runs the cell on a subsample
of the tolerance draws (objective.n_cell_simulations) and a response surface for the rest.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _bench import write_section  # noqa: E402

from microdesign.campaign.build import build_evaluator  # noqa: E402
from microdesign.config import compose  # noqa: E402
from microdesign.design import DesignSpace  # noqa: E402

STATISTICS = ("nominal", "mean", "quantile", "mean_minus_k_std", "yield")


def _designs(space: DesignSpace, n: int) -> list[dict[str, float]]:
    from scipy.stats import qmc

    Z = qmc.LatinHypercube(d=space.d_free, seed=0).random(n)
    return [dict(zip(space.names, x)) for x in space.from_free_unit(Z)]


def _time(evaluator, designs) -> tuple[float, float, list[float]]:
    """Median wall and CPU seconds per evaluation, and the objective values."""
    wall, cpu, values = [], [], []
    for i, d in enumerate(designs):
        t0 = time.perf_counter()
        ev = evaluator.evaluate(d, seed=i)
        wall.append(time.perf_counter() - t0)
        cpu.append(ev.timings.get("cpu", float("nan")))
        values.append(ev.objective.raw_value if ev.status == "completed" else float("nan"))
    return float(np.median(wall)), float(np.median(cpu)), values


def _rows(base_overrides, designs_n, samples, extra, set_nodes=None) -> list[str]:
    from omegaconf import OmegaConf

    rows = []
    nominal_wall = nominal_cpu = None
    for stat in STATISTICS:
        over = [*base_overrides, "objective=robust_energy", f"objective.statistic={stat}",
                f"objective.n_samples={samples}", "objective.specification=300", *extra]
        cfg = compose("campaign", over)
        for k, v in (set_nodes or {}).items():
            OmegaConf.update(cfg, k, v, merge=False, force_add=True)
        space = DesignSpace.from_config(cfg.design_space)
        evaluator = build_evaluator(cfg, space)
        designs = _designs(space, designs_n)
        evaluator.evaluate(designs[0], seed=99)  # warm-up (imports, model caches)
        wall, cpu, values = _time(evaluator, designs)
        nominal_wall = wall if stat == "nominal" else nominal_wall
        nominal_cpu = cpu if stat == "nominal" else nominal_cpu
        rows.append(f"| {stat} | {wall:.3f} s | {cpu:.3f} s | {wall / nominal_wall:.1f}x | {cpu / nominal_cpu:.1f}x | "
                    f"{np.nanmean(values):.3g} |")
    return rows


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--designs", type=int, default=5)
    ap.add_argument("--samples", type=int, default=256)
    ap.add_argument("--no-dfn", action="store_true")
    ap.add_argument("--dfn-designs", type=int, default=2)
    ap.add_argument("--dfn-cell-simulations", type=int, default=16)
    args = ap.parse_args()
    head = ["| objective statistic | wall per evaluation (median) | CPU per evaluation (median) | ratio to nominal "
            "(wall) | ratio to nominal (CPU) | mean value [W.h.L-1, or yield] |", "|---|---|---|---|---|---|"]
    body = (f"Each robust objective draws {args.samples} samples of the tolerances of "
            "`conf/process/nmc811_default.yaml` per design (docs/manufacturing_campaigns.md). Median over "
            f"{args.designs} Latin-hypercube designs of `design_space=manufacturing`, after one warm-up evaluation. "
            "The CPU time (the evaluation's `cpu` timing, all threads) is the load-independent cost on this shared "
            "machine; the wall time includes waiting for other jobs.\n\n"
            "### Analytic stages (`experiment=analytic`: 6 cubes of 16³, closed-form cell)\n\n")
    body += "\n".join(head + _rows(["experiment=analytic", "design_space=manufacturing"], args.designs,
                                   args.samples, [])) + "\n"
    if not args.no_dfn:
        stub = {"generator": {"_target_": "microdesign.campaign.stubs.StubGenerator", "voxel_size_m": 4.0e-7},
                "characterise": {"_target_": "microdesign.campaign.stubs.StubCharacteriser",
                                 "particle_radius_m": 5.0e-6}}
        body += (f"\n### Real cell: PyBaMM DFN 4680 at 10 W (stub structure stages, 3 cubes of 16³; "
                 f"`objective.n_cell_simulations={args.dfn_cell_simulations}`, `objective.noise=none`)\n\n"
                 "A tolerance sample changes the cathode thickness, which the DFN cannot take as an input: "
                 "each simulated sample builds a model. The robust objectives therefore simulate "
                 f"{args.dfn_cell_simulations} samples and predict the rest by a linear response surface.\n\n")
        body += "\n".join(head + _rows(["experiment=cs3_energy_cell", "design_space=manufacturing",
                                        "campaign.cube_size_voxels=16", "campaign.adaptive=false", "campaign.n_cubes=3",
                                        "objective.noise=none"], args.dfn_designs, args.samples,
                                       [f"objective.n_cell_simulations={args.dfn_cell_simulations}"], stub)) + "\n"
    cmd = "python scripts/benchmark_robust.py" + ("" if args.designs == 5 else f" --designs {args.designs}")
    path = write_section("robust", "Robust objectives (cost per evaluation against the nominal objective)", body, cmd)
    print(path.read_text())


if __name__ == "__main__":
    main()
