"""Multi-fidelity campaigns on the real pipeline -> docs/benchmarks/multi_fidelity_real.md.

The shipped generator, CPU characterisation, PyBaMM DFN 4680 cell and the default objective
(volumetric energy density at 10 W) and design space, with the CPU-sized levels of
conf/fidelity_levels/cpu_two_level.yaml (low: 2 cubes of 48³; high: 4 cubes of 80³). The shipped
two_level set keeps the representative 16 x 128³ high level (~370 s per evaluation here): 15
single-fidelity evaluations x 2 methods x 5 seeds at that level would take ~15 CPU-hours.

1. Level correlation: Sobol designs of the design space evaluated at both levels with the same
   seeds; Pearson and Spearman correlation of the two levels, and the high-level regret of the low
   level's best design.
2. Per seed, three arms on the same black box (the campaign's trial evaluator, built by
   ``microdesign.campaign.build.validate``; evaluation seeds ``trial_seed(seed, k)`` for the k-th
   design of every arm):
   * ``qLogNEI``: single-fidelity campaign at the high level (fixed cube count), 15 evaluations;
   * ``Ax``: Ax's default generation strategy (``ax.api.Client``) at the high level, 15 evaluations,
     the objective's variance given as SEM;
   * ``multi-fidelity``: ``optimiser=multi_fidelity fidelity_levels=cpu_two_level``, stopped at a
     CPU cap equal to the median total CPU of the finished qLogNEI runs.
   Each run records its trace: cumulative process CPU seconds after each evaluation (proposals,
   model fits and failed evaluations included; the one-time setup excluded) and the best
   high-level value held so far. Target: within 1 % of the best high-level value seen in any run.

Resumable: each finished run is written to ``<work>/<arm>-<seed>.json`` (and each correlation design
to ``<work>/correlation.json``) and skipped on a rerun; an unfinished run starts again. The section is
rewritten after every finished run (with the seeds finished so far) and docs/benchmarks.md
reassembled.

Usage:
    OMP_NUM_THREADS=1 python scripts/benchmark_multi_fidelity_real.py --seeds 5
    # smoke test (tiny cubes, short runs, no docs written):
    OMP_NUM_THREADS=1 python scripts/benchmark_multi_fidelity_real.py --seeds 1 --budget 3 --low 2x16 \
        --high 2x24 --correlation-designs 3 --mf-overrides optimiser.n_initial=3 optimiser.n_initial_high=1 \
        --sf-overrides optimiser.n_initial=2 --work runs/mf_real_smoke --no-docs
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from _bench import REPO_ROOT, write_section  # noqa: E402

log = logging.getLogger("benchmark_multi_fidelity_real")
TOL = 0.01
ARMS = ("qLogNEI", "Ax", "multi-fidelity")


def parse_level(text: str) -> tuple[int, int]:
    """``"4x80"`` -> (4 cubes, side 80 voxels)."""
    n, side = text.lower().split("x")
    return int(n), int(side)


class Timed:
    """The campaign's trial evaluator, recording each evaluation with the process CPU time spent so far."""

    def __init__(self, inner, arm: str, seed: int):
        self.inner, self.arm, self.seed = inner, arm, seed
        self.cpu0 = time.process_time()
        self.rows: list[dict] = []

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def start(self) -> None:
        self.cpu0 = time.process_time()

    def cpu(self) -> float:
        return time.process_time() - self.cpu0

    def evaluate(self, inputs, seed):
        ev = self.inner.evaluate(inputs, seed)
        ok = ev.status == "completed"
        row = {"k": len(self.rows), "cpu_s": self.cpu(), "eval_cpu_s": float(ev.timings.get("cpu", math.nan)),
               "fidelity": float(inputs.get("fidelity", 1.0)), "status": ev.status,
               "value": float(ev.objective.raw_value) if ok else None,
               "sem": float(math.sqrt(max(ev.objective.variance, 0.0))) if ok else None,
               "reason": ev.reason, "seed": int(seed),
               "inputs": {k: float(v) for k, v in inputs.items() if k != "fidelity"}}
        self.rows.append(row)
        log.info("%s seed %d #%d s=%.2g: %s %s (eval %.1f CPU s, total %.0f CPU s)", self.arm, self.seed, row["k"],
                 row["fidelity"], ev.status, "-" if not ok else f"{row['value']:.2f} +- {row['sem']:.2f}",
                 row["eval_cpu_s"], row["cpu_s"])
        return ev


def overrides(arm: str, seed: int, args) -> list[str]:
    n_hi, l_hi = parse_level(args.high)
    base = ["campaign.progress=false", "campaign.validation.top_k=0", f"seed={seed}", *args.overrides]
    if arm == "multi-fidelity":
        return base + ["optimiser=multi_fidelity", "fidelity_levels=cpu_two_level",
                       f"campaign.budget.max_evaluations={args.mf_max_evaluations}", *args.mf_overrides]
    high = [f"campaign.cube_size_voxels={l_hi}", f"campaign.n_cubes={n_hi}", "campaign.adaptive=false",
            f"campaign.budget.max_evaluations={args.budget}"]
    return base + ["optimiser=qlognei"] + high + (list(args.sf_overrides) if arm == "qLogNEI" else [])


def compose_cfg(arm: str, seed: int, args, output: Path | None):
    from microdesign.config import compose

    cfg = compose("campaign", overrides(arm, seed, args) + ([f"output={output}"] if output is not None else []))
    if arm == "multi-fidelity":  # the level sizes of this run (the config's unless --low/--high differ)
        for lv, text in zip(cfg.fidelity_levels.levels, (args.low, args.high)):
            lv.n_cubes, lv.cube_size_voxels = parse_level(text)
    return cfg


def run_campaign_arm(arm: str, seed: int, args, work: Path, cap: float | None) -> dict:
    """qLogNEI (high level) or multi-fidelity: a campaign in this process, its evaluator timed."""
    from microdesign.campaign.build import close_campaign, open_campaign, validate

    path = work / f"{arm}-{seed}.h5"
    for p in (path, Path(str(path) + ".lock")):
        p.unlink(missing_ok=True)  # an unfinished run starts again (its CPU trace would be incomplete)
    setup = validate(compose_cfg(arm, seed, args, path))
    timed = Timed(setup.evaluator, arm, seed)
    setup.evaluator = timed
    campaign = open_campaign(setup)
    if cap is not None:  # the multi-fidelity arm stops at the first check after the CPU cap
        budget_stop = campaign._should_stop

        def should_stop() -> str:
            return budget_stop() or (f"CPU cap reached ({cap:.0f} s)" if timed.cpu() >= cap else "")

        campaign._should_stop = should_stop
    timed.start()
    try:
        reason = campaign.run()
        total = timed.cpu()
        top = campaign.ranked()[0] if arm == "multi-fidelity" and campaign.ranked() else None
    finally:
        close_campaign(campaign)
    out = {"arm": arm, "seed": seed, "cap_s": cap, "total_cpu_s": total, "stop_reason": reason,
           "evaluations": timed.rows}
    if top is not None:  # the campaign's recommendation (best posterior mean at the highest fidelity; not timed)
        out["recommended"] = {"k": int(top.index), "fidelity": float(top.inputs.get("fidelity", 1.0)),
                              "value": float(top.objective.raw_value)}
    return out


def run_ax_arm(seed: int, args) -> dict:
    """Ax's default generation strategy on the same evaluator at the high level."""
    from ax.api.client import Client
    from ax.api.configs import RangeParameterConfig

    from microdesign.campaign.build import validate
    from microdesign.campaign.loop import trial_seed

    setup = validate(compose_cfg("Ax", seed, args, None))
    space, timed = setup.space, Timed(setup.evaluator, "Ax", seed)
    sign = 1.0 if getattr(setup.objective, "direction", "maximize") == "maximize" else -1.0
    timed.start()
    client = Client(random_seed=seed)
    client.configure_experiment(parameters=[
        RangeParameterConfig(name=n, bounds=(float(space[n].lower), float(space[n].upper)), parameter_type="float")
        for n in space.free_names])
    client.configure_optimization(objective="objective" if sign > 0 else "-objective")
    for k in range(args.budget):
        ((index, params),) = client.get_next_trials(max_trials=1).items()
        inputs = {**space.fixed_values, **{n: float(v) for n, v in params.items()}}
        ev = timed.evaluate(inputs, trial_seed(seed, k))
        if ev.status == "completed":
            client.complete_trial(index, raw_data={"objective": (float(ev.objective.raw_value),
                                                                 float(math.sqrt(max(ev.objective.variance, 0.0))))})
        else:
            client.mark_trial_failed(index)
    return {"arm": "Ax", "seed": seed, "cap_s": None, "total_cpu_s": timed.cpu(), "stop_reason": "evaluation budget",
            "evaluations": timed.rows}


def correlation_study(args, work: Path) -> list[dict]:
    """Sobol designs evaluated at both levels with the same seed; one row per design (resumable)."""
    from microdesign.campaign.build import validate
    from microdesign.campaign.loop import trial_seed
    from microdesign.optim.proposers import sobol_points

    path = work / "correlation.json"
    rows = json.loads(path.read_text()) if path.exists() else []
    if len(rows) >= args.correlation_designs:
        return rows[:args.correlation_designs]
    setup = validate(compose_cfg("multi-fidelity", 0, args, None))
    space, ev = setup.space, setup.evaluator
    X = space.from_free_unit(sobol_points(space, 0, args.correlation_designs, 0))
    fids = [lv.fidelity for lv in ev.levels]
    for i in range(len(rows), args.correlation_designs):
        design = {n: float(x) for n, x in zip(space.names, X[i])}
        row = {"i": i, "inputs": design}
        for name, f in zip(("low", "high"), (fids[0], fids[-1])):
            r = ev.evaluate({**design, "fidelity": f}, trial_seed(0, i))
            ok = r.status == "completed"
            row[name] = {"status": r.status, "value": float(r.objective.raw_value) if ok else None,
                         "sem": float(math.sqrt(r.objective.variance)) if ok else None,
                         "cpu_s": float(r.timings.get("cpu", math.nan)), "reason": r.reason}
        rows.append(row)
        path.write_text(json.dumps(rows, indent=1))
        log.info("correlation design %d: low %s, high %s (CPU %.1f / %.1f s)", i, row["low"]["value"],
                 row["high"]["value"], row["low"]["cpu_s"], row["high"]["cpu_s"])
    return rows


# ---------------------------------------------------------------------- summary
def held_curve(run: dict) -> tuple[np.ndarray, np.ndarray]:
    """(cumulative CPU s, best high-level value held) after each evaluation; NaN before the first."""
    cpu, best, cur = [], [], -math.inf
    for e in run["evaluations"]:
        if e["status"] == "completed" and e["fidelity"] >= 1.0 - 1e-9:
            cur = max(cur, e["value"])
        cpu.append(e["cpu_s"])
        best.append(cur if math.isfinite(cur) else math.nan)
    return np.asarray(cpu), np.asarray(best)


def cpu_to_target(run: dict, best_known: float) -> float:
    """CPU seconds until the run holds a high-level value within TOL of ``best_known`` (inf: never);
    :meth:`microdesign.optim.analytic.Trace.cost_to_reach` on the run's trace."""
    from microdesign.optim.analytic import Trace

    cpu, best = held_curve(run)
    regret = np.where(np.isfinite(best), (best_known - best) / abs(best_known), np.inf)
    fid = np.array([e["fidelity"] for e in run["evaluations"]])
    return Trace(cpu, regret, fid, ()).cost_to_reach(TOL)


def correlation_text(rows: list[dict]) -> tuple[list[str], dict]:
    from scipy.stats import pearsonr, spearmanr

    ok = [r for r in rows if r["low"]["status"] == r["high"]["status"] == "completed"]
    lo = np.array([r["low"]["value"] for r in ok])
    hi = np.array([r["high"]["value"] for r in ok])
    out: dict = {"n": len(ok), "n_total": len(rows)}
    if len(ok) < 3:
        return [f"Level correlation: {len(ok)} designs completed at both levels so far (need 3).", ""], out
    pear, spear = float(pearsonr(lo, hi)[0]), float(spearmanr(lo, hi)[0])
    j = int(np.argmax(lo))
    regret = float((hi.max() - hi[j]) / abs(hi.max()))
    rank = int(np.sum(hi > hi[j])) + 1
    sem_lo = np.median([r["low"]["sem"] for r in ok])
    sem_hi = np.median([r["high"]["sem"] for r in ok])
    c_lo = np.median([r["low"]["cpu_s"] for r in rows])
    c_hi = np.median([r["high"]["cpu_s"] for r in rows])
    out.update(pearson=pear, spearman=spear, regret=regret, rank=rank, sem_low=sem_lo, sem_high=sem_hi, cpu_low=c_lo,
               cpu_high=c_hi, bias=float(np.mean(lo - hi)), bias_sd=float(np.std(lo - hi, ddof=1)),
               spread_high=float(np.std(hi, ddof=1)))
    lines = [f"### Level correlation ({len(ok)} Sobol designs completed at both levels, of {len(rows)})", "",
             "Scrambled Sobol designs (seed 0) of the default design space, each evaluated at both levels with the "
             "same evaluation seed.", "",
             "| quantity | value |", "|---|---|",
             f"| Pearson correlation of low and high values | {pear:.3f} |",
             f"| Spearman rank correlation | {spear:.3f} |",
             f"| high-level regret of the low level's best design | {100 * regret:.2f} % (rank {rank} of {len(ok)} at the high level) |",
             f"| low minus high (mean ± sd over designs) [W.h.L-1] | {out['bias']:.1f} ± {out['bias_sd']:.1f} |",
             f"| spread of the high-level values over the designs (sd) [W.h.L-1] | {out['spread_high']:.1f} |",
             f"| median SEM of one evaluation, low / high [W.h.L-1] | {sem_lo:.1f} / {sem_hi:.1f} |",
             f"| median process CPU of one evaluation, low / high [s] | {c_lo:.1f} / {c_hi:.1f} (ratio {c_hi / c_lo:.1f}) |",
             "", "| design | am_weight_fraction | porosity | cbd_adhesion | mass_loading [mg.cm-2] | low | high |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        x = r["inputs"]
        fmt = (lambda v: "failed" if v["status"] != "completed" else f"{v['value']:.1f} ± {v['sem']:.1f}")
        lines.append(f"| {r['i']} | {x.get('am_weight_fraction', math.nan):.3f} | {x.get('porosity', math.nan):.3f} | "
                     f"{x.get('cbd_adhesion', math.nan):.2f} | {x.get('mass_loading_mg_cm2', math.nan):.1f} | "
                     f"{fmt(r['low'])} | {fmt(r['high'])} |")
    return lines + [""], out


def ratio_text(other: float, mf: float, show: bool = True) -> str:
    """``other / mf`` of two CPU times, either of which may be inf (not reached)."""
    head = f"{other:.0f} / {mf:.0f} s = " if show else ""
    if math.isfinite(other) and math.isfinite(mf):
        return head + (f"**{other / mf:.2f}x**" if show else f"{other / mf:.2f}")
    if math.isfinite(mf):
        return head + "multi-fidelity only reached it"
    if math.isfinite(other):
        return head + "only the other reached it"
    return head + "neither reached it"


def previous_text(previous: dict[tuple[str, str, int], dict], best_known: float) -> list[str]:
    """Rows of earlier runs kept in ``--previous`` folders (other settings or pipeline), scored against the same
    target; ``previous`` is keyed by (the folder's settings text, arm, seed)."""
    if not previous:
        return []
    lines = ["", "Runs with other settings (kept in the `--previous` folders), scored against the same target:", "",
             "| arm | settings | CPU s to within 1 % (per seed) | median | final value held (per seed) |",
             "|---|---|---|---|---|"]
    for label in dict.fromkeys(k[0] for k in sorted(previous)):
        for arm in ARMS:
            rs = [previous[k] for k in sorted(previous) if k[0] == label and k[1] == arm]
            if not rs:
                continue
            t = np.array([cpu_to_target(r, best_known) for r in rs])
            lines.append(f"| {arm} (seeds {', '.join(str(r['seed']) for r in rs)}) | {label} | "
                         f"{', '.join(f'{x:.0f}' if np.isfinite(x) else 'not reached' for x in t)} | "
                         f"{np.median(t):.0f} | {', '.join(f'{held_curve(r)[1][-1]:.1f}' for r in rs)} |")
    return lines


def load_previous(folders) -> dict[tuple[str, str, int], dict]:
    """Runs (``<arm>-<seed>.json``) of each ``--previous`` folder, keyed by (settings text, arm, seed); the settings
    text is the first line of the folder's ``settings.txt`` (else, or when it is empty, the folder name).

    Raises:
        SystemExit: a folder that does not exist, or two folders with the same settings text.
    """
    out: dict[tuple[str, str, int], dict] = {}
    labels: dict[str, Path] = {}
    for folder in folders or []:
        folder = Path(folder)
        if not folder.is_dir():
            raise SystemExit(f"--previous: {folder} is not a folder of earlier runs")
        note = folder / "settings.txt"
        lines = note.read_text().strip().splitlines() if note.is_file() else []
        label = lines[0].strip() if lines and lines[0].strip() else folder.name
        if label in labels:
            raise SystemExit(f"--previous: {folder} and {labels[label]} have the same settings text {label!r}")
        labels[label] = folder
        for p in sorted(folder.glob("*.json")):
            r = json.loads(p.read_text())
            if r.get("arm") in ARMS:
                out[(label, r["arm"], int(r["seed"]))] = r
    return out


def best_known_value(finished: list[dict], previous: dict[tuple[str, str, int], dict]) -> tuple[float, str] | None:
    """The best completed high-level value of any run, the ``--previous`` folders' included (the target must not
    drop when current runs replace earlier ones), and where it was found; None when there is none."""
    every = [(r, "") for r in finished] + [(r, f" (settings: {k[0]})") for k, r in sorted(previous.items())]
    values = [(e["value"], f"{r['arm']} seed {r['seed']}{note}") for r, note in every for e in r["evaluations"]
              if e["status"] == "completed" and e["fidelity"] >= 1.0 - 1e-9]
    return max(values, key=lambda vw: vw[0]) if values else None


def validations(path: Path) -> int | None:
    """Validations of the recommendation at the highest level proposed in a multi-fidelity campaign file
    (one per proposal batch whose note says so: the note is stored with every trial of the batch, the
    validation is its design 0); None where the file is gone."""
    if not path.is_file():
        return None
    from microdesign.storage.campaign_file import CampaignStore

    _, trials = CampaignStore(path).load(volumes=False)
    return len({t.batch for t in trials if t.note and "recommendation" in t.note})


def summary_text(runs: dict[tuple[str, int], dict], corr: list[dict], args, seeds: list[int],
                 previous: dict[tuple[str, str, int], dict] | None = None) -> str:
    n_lo, l_lo = parse_level(args.low)
    n_hi, l_hi = parse_level(args.high)
    from microdesign.config import compose

    lines = [f"Real pipeline (shipped generator `{compose('campaign').generator.checkpoint}`, CPU characterisation, PyBaMM DFN 4680 at 10 W, default objective "
             f"and design space), levels `cpu_two_level`: low {n_lo} × {l_lo}³, high {n_hi} × {l_hi}³ (fixed "
             "counts). These are CPU-sized: the shipped `two_level` keeps the representative 16 × 128³ high level "
             "(~370 s per evaluation here), at which this benchmark would take ~15 CPU-hours. One process, one "
             "thread; CPU = process CPU seconds (load-independent on this shared machine), counted from the start "
             "of each run (after building the stages) and including proposals, model fits and failed evaluations.",
             ""]
    corr_lines, c = correlation_text(corr) if corr else (["(level correlation not run yet)", ""], {})
    complete = [s for s in seeds if all((a, s) in runs for a in ARMS)]
    finished = sorted(runs.values(), key=lambda r: (r["seed"], ARMS.index(r["arm"])))
    best = best_known_value(finished, previous or {})
    if not finished or best is None:
        return "\n".join(lines + corr_lines + ["(no campaign run finished yet)"])
    best_known, where = best
    caps = [r["cap_s"] for r in finished if r["arm"] == "multi-fidelity"]
    mf_opt = compose_cfg("multi-fidelity", 0, args, None).optimiser
    n_init = {"qLogNEI": compose_cfg("qLogNEI", 0, args, None).optimiser.n_initial,
              "multi-fidelity": mf_opt.n_initial, "high": mf_opt.n_initial_high}
    lines += [f"### CPU until the campaign holds a design within {100 * TOL:.0f} % of the best known "
              f"({len(complete)} of {args.seeds} seeds)", "",
              f"Best known high-level value: **{best_known:.2f} W.h.L-1** (the best high-level evaluation of any run, "
              f"the `--previous` folders' included; "
              f"{where}); target {best_known * (1 - TOL):.2f}. 'Held' = the best value *evaluated at the high level* "
              "so far (multi-fidelity: low-level values do not count). qLogNEI and Ax: "
              f"{args.budget} high-level evaluations; qLogNEI starts with the campaign's Sobol design (n_initial "
              f"{n_init['qLogNEI']}), "
              "Ax with its own (default `Client` generation strategy, seed = run seed). Multi-fidelity: "
              f"qMFMES with the `optimiser=multi_fidelity` settings (n_initial {n_init['multi-fidelity']}, of which "
              f"{n_init['high']} high), stopped at the first check after a CPU cap ("
              f"{', '.join(f'{x:.0f}' for x in caps)} s: " + ("`--mf-cap-s`" if args.mf_cap_s else
                                                             "the median total CPU of the qLogNEI runs finished before it")
              + f"). Seeds with all three arms finished: {complete}; runs finished: "
              f"{', '.join(r['arm'] + ' ' + str(r['seed']) for r in finished)}.", "",
              "| arm | CPU s to within 1 % (per seed) | median | runs that got there | final value held "
              "(per seed) | final mean | total CPU per run (median) [s] | of which outside evaluations (proposals, "
              "model fits; median) [s] | high / low evaluations (mean) | failed evaluations |",
              "|---|---|---|---|---|---|---|---|---|---|"]
    med: dict[str, float] = {}
    per: dict[str, dict[int, float]] = {}
    for arm in ARMS:
        rs = [runs[(arm, s)] for s in complete]
        if not rs:
            continue
        t = np.array([cpu_to_target(r, best_known) for r in rs])
        per[arm] = dict(zip(complete, t))
        total = np.array([r["total_cpu_s"] for r in rs])
        cap_t = np.where(np.isfinite(t), t, np.inf)
        med[arm] = float(np.median(cap_t))
        finals = [held_curve(r)[1][-1] for r in rs]
        n_high = np.mean([sum(e["fidelity"] >= 1 - 1e-9 for e in r["evaluations"]) for r in rs])
        n_low = np.mean([sum(e["fidelity"] < 1 - 1e-9 for e in r["evaluations"]) for r in rs])
        failed = sum(e["status"] != "completed" for r in rs for e in r["evaluations"])
        n_all = sum(len(r["evaluations"]) for r in rs)
        lines.append(f"| {arm} | {', '.join(f'{x:.0f}' if np.isfinite(x) else 'not reached' for x in t)} | "
                     f"{med[arm]:.0f} | {int(np.isfinite(t).sum())}/{len(t)} | "
                     f"{', '.join(f'{v:.1f}' for v in finals)} | {np.nanmean(finals):.1f} | {np.median(total):.0f} | "
                     f"{np.median([r['total_cpu_s'] - sum(e['eval_cpu_s'] for e in r['evaluations']) for r in rs]):.0f} | "
                     f"{n_high:.1f} / {n_low:.1f} | {failed}/{n_all} |")
    mf = "multi-fidelity"
    if mf in med:
        lines += [""]
        for other in ("qLogNEI", "Ax"):
            if other in med:
                lines.append(f"- {other} / multi-fidelity, CPU to within 1 %: median {ratio_text(med[other], med[mf])} "
                             f"(per seed: {', '.join(ratio_text(per[other][s], per[mf][s], False) for s in complete)})")
    rec = [r for r in finished if r["arm"] == mf and "recommended" in r]
    if rec:
        def high_values(r: dict) -> list[float]:
            """High-level values of the recommended design (the same inputs evaluated at the high level)."""
            x = r["evaluations"][r["recommended"]["k"]]["inputs"]
            return [e["value"] for e in r["evaluations"] if e["status"] == "completed"
                    and e["fidelity"] >= 1 - 1e-9 and e["inputs"] == x]

        seen = [high_values(r) for r in rec]
        own = ", ".join(f"{r['recommended']['value']:.1f}" for r in rec)
        lines += [f"- multi-fidelity recommendation at the end (best posterior mean at the high level): its design "
                  f"evaluated at the high level in {sum(bool(v) for v in seen)} of {len(rec)} runs (values held there: "
                  + ", ".join(f"{max(v):.1f}" if v else "none" for v in seen)
                  + f"; the recommended observation's own values {own} "
                  "at their levels); a recommendation seen only at the low level needs one high-level validation (the "
                  "campaign's final validation, off here) before it is held."]
        counts = [validations(Path(args.work) / f"{mf}-{r['seed']}.h5") for r in rec]
        if any(c is not None for c in counts):
            lines += ["- multi-fidelity evaluations proposed as the validation of a recommendation seen only at the "
                      "low level (`validate_recommendation`), per run: "
                      + ", ".join("?" if c is None else str(c) for c in counts)]
    lines += ["", "Not reached = the run ended (budget or CPU cap) without holding such a design; the median "
              "counts those as infinite."]
    lines += previous_text(previous or {}, best_known)
    text = lines + [""] + corr_lines + [f"Benchmark script: `scripts/benchmark_multi_fidelity_real.py` (traces of every "
                                        f"run in `{args.work}/<arm>-<seed>.json`)."]
    return "\n".join(text)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--budget", type=int, default=15, help="high-level evaluations of the qLogNEI and Ax arms")
    ap.add_argument("--low", default="2x48", help="low level: <cubes>x<side>")
    ap.add_argument("--high", default="4x80", help="high level: <cubes>x<side>")
    ap.add_argument("--correlation-designs", type=int, default=14)
    ap.add_argument("--mf-max-evaluations", type=int, default=400, help="evaluation cap of a multi-fidelity run (the CPU cap stops it first)")
    ap.add_argument("--mf-cap-s", type=float, default=None,
                    help="CPU cap of a multi-fidelity run [s] (default: the median total CPU of the finished qLogNEI runs)")
    ap.add_argument("--overrides", nargs="*", default=[], help="campaign overrides for every arm")
    ap.add_argument("--sf-overrides", nargs="*", default=[], help="campaign overrides for the qLogNEI arm")
    ap.add_argument("--mf-overrides", nargs="*", default=[], help="campaign overrides for the multi-fidelity arm")
    ap.add_argument("--arms", nargs="*", default=list(ARMS), choices=ARMS)
    ap.add_argument("--only-seeds", nargs="*", type=int, default=None,
                    help="run these seeds, in this order (default: 0 .. --seeds - 1); e.g. a second process on other seeds")
    ap.add_argument("--work", default="runs/benchmark_multi_fidelity_real")
    ap.add_argument("--no-docs", action="store_true", help="print the section instead of writing docs/benchmarks/")
    ap.add_argument("--previous", nargs="*", default=[],
                    help="folders of earlier runs (<arm>-<seed>.json; the first line of settings.txt says what differs) "
                         "listed beside the current ones, same target")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    for noisy in ("microdesign", "ax", "pybamm"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import torch

    torch.set_num_threads(1)
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    seeds = list(range(args.seeds))
    command = "python scripts/benchmark_multi_fidelity_real.py " + " ".join(sys.argv[1:])

    def load_runs() -> dict[tuple[str, int], dict]:
        out = {}
        for arm in ARMS:
            for s in seeds:
                p = work / f"{arm}-{s}.json"
                if p.exists():
                    out[(arm, s)] = json.loads(p.read_text())
        return out

    def write(corr: list[dict]) -> None:
        body = summary_text(load_runs(), corr, args, seeds, load_previous(args.previous))
        if args.no_docs:
            print(body)
            return
        path = write_section("multi_fidelity_real", "Multi-fidelity campaigns on the real pipeline (CPU)", body,
                             command.strip())
        subprocess.run([sys.executable, str(REPO_ROOT / "scripts" / "benchmark.py"), "--assemble-only"], check=True,
                       cwd=REPO_ROOT)
        log.info("wrote %s", path)

    corr = correlation_study(args, work)
    write(corr)
    for s in (seeds if args.only_seeds is None else args.only_seeds):
        for arm in ARMS:
            path = work / f"{arm}-{s}.json"
            if arm not in args.arms or path.exists():
                continue
            if arm == "Ax":
                import ax.api  # noqa: F401 - imported before the clock starts, as the project's modules are

                run = run_ax_arm(s, args)
            elif arm == "multi-fidelity":
                sf = [r["total_cpu_s"] for (a, _), r in load_runs().items() if a == "qLogNEI"]
                if args.mf_cap_s:
                    sf = [args.mf_cap_s]
                if not sf:
                    log.warning("multi-fidelity seed %d: no finished qLogNEI run to set the CPU cap; skipped", s)
                    continue
                run = run_campaign_arm(arm, s, args, work, cap=float(np.median(sf)))
            else:
                run = run_campaign_arm(arm, s, args, work, cap=None)
            path.write_text(json.dumps(run, indent=1))
            log.info("%s seed %d done: %d evaluations, %.0f CPU s (%s)", arm, s, len(run["evaluations"]),
                     run["total_cpu_s"], run["stop_reason"])
            write(corr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
