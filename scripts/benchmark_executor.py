"""Benchmark of campaigns on Ray workers (executor=ray) -> docs/benchmarks/executor.md.

1. Real pipeline on this machine: wall time per evaluation with ``executor=local`` (in-process), and
   ``executor=ray`` with 1 and 2 workers (a local Ray with 2 CPUs), the same Sobol designs at a reduced
   cost (48^3 x 3 cubes, ``characterise=fast``): the speed-up of a second worker, as a ratio.
2. Scheduling at cluster scale: a local Ray with 4, 8 and 16 workers evaluating stub stages that sleep
   the measured 128^3 x 39 stage times (docs/benchmarks/generator.md, characterise.md, campaign.md),
   scaled down by ``--time-scale``, asynchronous versus synchronous batches: worker utilisation,
   scheduling overhead per trial (dispatch, transfer and the driver's file writes) and what that
   overhead is next to an unscaled evaluation.

Usage:
    python scripts/benchmark_executor.py                          # both parts
    python scripts/benchmark_executor.py --real-evaluations 6 --workers 4 8 16 --time-scale 300
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from _bench import write_section  # noqa: E402

log = logging.getLogger("benchmark_executor")

#: Stage times of one design in the reference setting (39 cubes of 128^3, CPU, 1 thread) [s]:
#: generator 0.253 s per 128^3 volume (docs/benchmarks/generator.md, Generator.sample n=1),
#: characterisation 45.6 CPU s per 2 cubes of 128^3 (docs/benchmarks/characterise.md, mgcg energy
#: criterion), cell 0.71 s and objective (noise re-simulations) 1.61 s per design (docs/benchmarks/campaign.md).
GENERATOR_S_PER_CUBE = 0.253
CHARACTERISE_S_PER_CUBE = 45.6 / 2
CELL_AND_OBJECTIVE_S = 0.71 + 1.61
N_CUBES = 39
REAL_REDUCED = ["campaign.cube_size_voxels=48", "campaign.adaptive=false", "campaign.n_cubes=3", "characterise=fast"]
STAGES = ("generator", "characterise", "cell", "objective")


def run(overrides: list[str], path: Path) -> list:
    from microdesign.campaign.build import run_campaign
    from microdesign.config import compose
    from microdesign.storage import CampaignStore

    cfg = compose("campaign", overrides + [f"output={path}", "campaign.progress=false", "campaign.validation.top_k=0",
                                           "optimiser=sobol"])
    run_campaign(cfg)
    return CampaignStore(path).load(volumes=False)[1]


def stats(trials: list, workers: int) -> dict[str, float]:
    """Wall time per evaluation, worker utilisation and scheduling overhead of one campaign's trials."""
    fin = [t for t in trials if t.finished]
    wall = max(t.finished_unix for t in fin) - min(t.started_unix for t in fin)
    work = np.array([sum(t.timings.get(k, 0.0) for k in STAGES) for t in fin])  # inside the worker
    span = np.array([t.finished_unix - t.started_unix for t in fin])  # driver: marked running -> recorded
    return {"n": len(fin), "wall_s": wall, "per_eval_s": wall / len(fin), "work_s": float(work.mean()),
            "utilisation": float(work.sum() / (workers * wall)), "overhead_s": float(np.median(span - work)),
            "characterise_cv": float(np.std([t.timings.get("characterise", 0.0) for t in fin], ddof=1)
                                     / np.mean([t.timings.get("characterise", 0.0) for t in fin]))}


def load_average() -> str:
    try:
        return f"{os.getloadavg()[0]:.1f}"
    except OSError:
        return "?"


def real_part(n: int, repeats: int, work: Path) -> tuple[str, float]:
    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    address = ray.get_runtime_context().gcs_address
    ray_args = ["executor=ray", f"executor.address={address}"]
    runs = (("local (in-process)", 1, []), ("ray, 1 worker", 1, ray_args + ["executor.num_workers=1"]),
            ("ray, 2 workers (async)", 2, ray_args + ["executor.num_workers=2"]))
    rows, res = [], {label: [] for label, _, _ in runs}
    try:
        for r in range(repeats):  # interleaved, so that the other jobs' load falls on every executor alike
            for label, workers, extra in runs:
                load0 = load_average()
                trials = run(REAL_REDUCED + extra + [f"campaign.budget.max_evaluations={n}"],
                             work / f"real-{r}-{workers}-{len(rows)}.h5")
                s = stats(trials, workers)
                res[label].append(s)
                rows.append(f"| {r + 1} | {label} | {s['n']} | {s['wall_s']:.1f} | **{s['per_eval_s']:.2f}** | "
                            f"{s['work_s']:.2f} | {s['utilisation']:.0%} | {s['overhead_s']:.3f} | {load0} -> "
                            f"{load_average()} |")
                log.info("repeat %d, %s: %.2f s per evaluation", r + 1, label, s["per_eval_s"])
    finally:
        ray.shutdown()

    def per_eval(label: str) -> np.ndarray:
        return np.array([s["per_eval_s"] for s in res[label]])

    two_vs_one = per_eval("ray, 1 worker") / per_eval("ray, 2 workers (async)")
    ray_vs_local = per_eval("local (in-process)") / per_eval("ray, 1 worker")
    cv = float(np.mean([s["characterise_cv"] for v in res.values() for s in v]))
    from microdesign.config import compose

    body = (f"Real stages at a reduced cost (`{' '.join(REAL_REDUCED)}`, shipped generator "
            f"`{compose('campaign').generator.checkpoint}`, PyBaMM 4680 at "
            f"10 W), {n} Sobol designs per run (the same designs and seeds in every run), a local Ray with 2 CPUs "
            f"(`num_cpus_per_worker: 1`), {repeats} interleaved repeats. Wall time per evaluation = (last trial "
            "finished - first trial started) / evaluations; work = the stage times measured inside the worker; "
            "utilisation = total work / (workers x wall); overhead = median of (driver's running -> recorded span "
            "- work) per trial. The machine is shared with other jobs (load average in the last column), which "
            "take the second core in turns: compare the ratios within a repeat.\n\n"
            "| repeat | executor | evaluations | wall [s] | wall per evaluation [s] | work per evaluation [s] | "
            "utilisation | overhead per trial [s] | load average (1 min) |\n|---|---|---|---|---|---|---|---|---|\n"
            + "\n".join(rows) + "\n\n"
            f"**Ratios** (per repeat; median): 2 Ray workers vs 1: {', '.join(f'{x:.2f}' for x in two_vs_one)}x "
            f"less wall time per evaluation, median **{np.median(two_vs_one):.2f}x**; 1 Ray worker vs in-process: "
            f"{', '.join(f'{x:.2f}' for x in ray_vs_local)}x, median {np.median(ray_vs_local):.2f}x (the cost of "
            "Ray itself, within the load noise). Spread of the characterisation time between designs (coefficient "
            f"of variation, the scaling part's first CV): {cv:.2f}.\n")
    return body, cv


def stub_part(workers_list: list[int], rounds: int, scale: float, cvs: list[float], work: Path) -> str:
    import ray

    ray.init(num_cpus=max(workers_list), include_dashboard=False, log_to_driver=False, configure_logging=False)
    address = ray.get_runtime_context().gcs_address
    real_eval = N_CUBES * (GENERATOR_S_PER_CUBE + CHARACTERISE_S_PER_CUBE) + CELL_AND_OBJECTIVE_S
    stubs = ["experiment=analytic", "objective.noise=none", "campaign.adaptive=false", f"campaign.n_cubes={N_CUBES}",
             f"generator.delay_s={GENERATOR_S_PER_CUBE / scale:.6g}",
             f"characterise.delay_s={CHARACTERISE_S_PER_CUBE / scale:.6g}",
             f"cell.delay_s={CELL_AND_OBJECTIVE_S / scale:.6g}"]
    rows = []
    try:
        for cv in cvs:
            for w in workers_list:
                for mode in ("async", "sync"):
                    t0 = time.perf_counter()
                    trials = run(stubs + [f"characterise.delay_cv={cv:.3g}", "executor=ray",
                                          f"executor.address={address}", f"executor.num_workers={w}",
                                          f"executor.mode={mode}", f"optimiser.q={w}",
                                          f"campaign.budget.max_evaluations={rounds * w}"],
                                 work / f"stub-{cv:.3g}-{w}-{mode}.h5")
                    s = stats(trials, w)
                    real_share = s["overhead_s"] / (real_eval + s["overhead_s"])
                    rows.append(f"| {cv:.2f} | {w} | {mode} | {s['n']} | {s['wall_s']:.1f} | {s['work_s']:.2f} | "
                                f"**{s['utilisation']:.0%}** | {s['overhead_s'] * 1000:.0f} | {real_share:.3%} |")
                    log.info("cv %.2f, %d workers %s: utilisation %.2f, overhead %.3f s (%.0f s with start-up)", cv,
                             w, mode, s["utilisation"], s["overhead_s"], time.perf_counter() - t0)
    finally:
        ray.shutdown()
    return (f"Stub stages (`experiment=analytic`, `optimiser=sobol`) that sleep the reference stage times of one "
            f"design, 39 cubes of 128³ on one CPU thread: generator {N_CUBES} x {GENERATOR_S_PER_CUBE} s, "
            f"characterisation {N_CUBES} x {CHARACTERISE_S_PER_CUBE:.1f} s, cell + objective {CELL_AND_OBJECTIVE_S:.2f} s "
            f"= **{real_eval:.0f} s per design** (docs/benchmarks/generator.md, characterise.md, campaign.md), "
            f"all divided by **{scale:g}** ({real_eval / scale:.2f} s per design here); the characterisation time "
            "varies between designs with the coefficient of variation (CV) of the first column (a lognormal factor "
            "drawn from each design's seed): the spread measured above at 48³ x 3 cubes on a loaded machine, and "
            "a smaller one closer to 39-cube designs (their per-cube scatter averages out; design-dependent "
            "solver iterations remain; not measured at 128³ here). A local Ray with "
            f"{max(workers_list)} logical CPUs on this 2-core machine (the workers sleep), {rounds} evaluations per "
            "worker; `sync` runs batches of q = workers. Utilisation = total work / (workers x wall): the share of "
            "worker time spent evaluating; the overhead per trial (dispatch, result transfer, the driver's three "
            "crash-safe file writes) is an absolute time, so the last column puts it next to an unscaled "
            "evaluation (what a cluster running the reference setting would see).\n\n"
            "| CV | workers | mode | evaluations | wall [s] | work per evaluation [s] | utilisation | "
            "overhead per trial [ms] | overhead / unscaled evaluation |\n|---|---|---|---|---|---|---|---|---|\n"
            + "\n".join(rows) + "\n")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--real-evaluations", type=int, default=6, help="evaluations per real-pipeline run")
    ap.add_argument("--repeats", type=int, default=3, help="interleaved repeats of the real-pipeline runs")
    ap.add_argument("--parts", nargs="+", choices=["real", "stub"], default=["real", "stub"],
                    help="parts to run; the section keeps the other part's last results")
    ap.add_argument("--workers", type=int, nargs="+", default=[4, 8, 16], help="worker counts of the scaling part")
    ap.add_argument("--rounds", type=int, default=3, help="evaluations per worker in the scaling part")
    ap.add_argument("--time-scale", type=float, default=300.0, help="divide the reference stage times by this")
    ap.add_argument("--cv", type=float, nargs="+", default=None,
                    help="characterisation time spreads of the scaling part (default: measured in part 1, and 0.1)")
    ap.add_argument("--work", type=Path, default=None, help="folder for the campaign files (default: a temporary one)")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        work = args.work or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        blocks = previous_blocks()
        command = ("python scripts/benchmark_executor.py " + " ".join(sys.argv[1:])).strip()
        measured = blocks.get("cv", math.nan)
        if "real" in args.parts:
            body, measured = real_part(args.real_evaluations, args.repeats, work)
            blocks["real"] = ("### Real pipeline: 1 and 2 workers on this machine\n\n"
                              f"*Command:* `{command}`; {(time.perf_counter() - t0) / 60:.1f} min.\n\n" + body)
            blocks["cv"] = measured
        if "stub" in args.parts:
            t1 = time.perf_counter()
            cvs = args.cv or [c for c in (measured, 0.1) if math.isfinite(c)] or [0.1]
            body = stub_part(args.workers, args.rounds, args.time_scale, cvs, work)
            blocks["stub"] = ("### Scheduling at cluster scale: 4-16 workers, stub stages with the reference stage "
                              f"times\n\n*Command:* `{command}`; {(time.perf_counter() - t1) / 60:.1f} min.\n\n" + body)
    text = "\n".join(f"<!-- part {k} -->\n{blocks[k].strip()}\n<!-- end {k} -->\n" for k in ("real", "stub")
                     if k in blocks)
    path = write_section("executor", "Campaigns on Ray workers (executor=ray)", text + f"\n<!-- cv {blocks.get('cv', math.nan)} -->",
                         "python scripts/benchmark_executor.py [--parts real stub] (each part's own command below)")
    log.info("wrote %s", path)
    return 0


def previous_blocks() -> dict:
    """The parts of the last ``docs/benchmarks/executor.md`` (kept when only the other part runs)."""
    import re

    from _bench import SECTIONS_DIR

    path = SECTIONS_DIR / "executor.md"
    text = path.read_text() if path.exists() else ""
    blocks: dict = {k: v for k, v in re.findall(r"<!-- part (\w+) -->\n(.*?)\n<!-- end \1 -->", text, re.S)}
    m = re.search(r"<!-- cv ([0-9.naN]+) -->", text)
    if m:
        blocks["cv"] = float(m.group(1))
    return blocks


if __name__ == "__main__":
    sys.exit(main())
