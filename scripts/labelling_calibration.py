"""Choose the generator's ``pore_neighbour_penalty`` on calibration points, then score it on the fidelity sets.

The design labels (``phase_fractions: design``, docs/generator.md "Phase fractions") lower a solid voxel's
AM margin by the penalty per pore face neighbour. Each penalty of ``--penalties`` is scored with
``microdesign fidelity`` (generated vs synthetic-line cubes of the training size) on the calibration
sets ``--calibration`` (``POINTS_SEED:SEED``, 4 points each, ``--n-seeds`` cubes per point and source),
which are neither the fidelity sets of docs/generator.md nor the reference designs of
docs/reference_error.md. The penalty with the smallest AM–pore specific-surface-area MAE over all
calibration points is chosen (ties within ``--tie`` percentage points: the smaller penalty). The chosen
penalty, the shipped config's where it differs, no penalty, and the argmax labels are then scored on
the fidelity sets ``--score`` (``NAME=POINTS_SEED:SEED:N_SEEDS``). The generator is ``--checkpoint`` (default: the shipped config's):
the penalty is a property of one model's margins, so the output records the checkpoint and its weights'
SHA-256, and a penalty calibrated for one model is not that of another. Writes ``--output`` (JSON, every
point's relative errors; default ``docs/reference/labelling_calibration_<generator name>.json``) and a
markdown table beside it.

Usage::

    OMP_NUM_THREADS=1 python scripts/labelling_calibration.py [--checkpoint synth3p_64_interface]

Needs the shipped generator's training dataset (``data/synth_1024.h5``, rebuilt by
``microdesign build-dataset output=data/synth_1024.h5 dataset.doe.n_points=1024 dataset.replicates=1``).
Each fidelity run is kept in ``--work``, in a folder per checkpoint weights, and reused, so a stopped run
resumes. About 20 CPU minutes. Never
run in CI.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def choose_penalty(mae_by_penalty: dict[float, float], tie: float = 0.01) -> float:
    """The penalty with the smallest mean absolute error; among those within ``tie`` of it, the smallest.

    Raises:
        ValueError: no penalty scored.
    """
    if not mae_by_penalty:
        raise ValueError("mae_by_penalty: expected at least one scored penalty")
    best = min(mae_by_penalty.values())
    return min(p for p, e in mae_by_penalty.items() if e <= best + tie)


def _fidelity(work: Path, tag: str, points_seed: int, seed: int, n_seeds: int, overrides: list[str]) -> dict:
    """One ``microdesign fidelity`` run (reused from ``work`` when present): its JSON report. ``work`` must
    be the checkpoint's own folder (:func:`_checkpoint_record`): a reused report is not checked again."""
    from microdesign.cli import main

    out = work / tag
    found = sorted(out.glob("*.json"))
    if not found:
        args = ["fidelity", f"points_seed={points_seed}", f"seed={seed}", f"n_seeds={n_seeds}",
                f"output_dir={out}", *overrides]
        if main(args) != 0:
            raise SystemExit(f"microdesign {shlex.join(args)} failed")
        found = sorted(out.glob("*.json"))
    return json.loads(found[0].read_text())


def _checkpoint_record(checkpoint: str | None) -> dict[str, str]:
    """``{"checkpoint", "name", "weights_sha256"}`` of ``checkpoint`` (None: the shipped config's).

    Raises:
        CheckpointError: no such checkpoint, or its metadata unreadable.
    """
    import hashlib

    from microdesign.config import compose
    from microdesign.generator.checkpoint import WEIGHTS_FILE, load_metadata, resolve_checkpoint_dir

    checkpoint = checkpoint or str(compose("fidelity").generator.checkpoint)
    meta = load_metadata(checkpoint)
    digest = hashlib.sha256((resolve_checkpoint_dir(checkpoint) / WEIGHTS_FILE).read_bytes()).hexdigest()
    return {"checkpoint": checkpoint, "name": meta.name, "weights_sha256": digest}


def _shipped_penalty() -> float:
    """The ``pore_neighbour_penalty`` of the shipped generator config (``conf/generator/shipped.yaml``)."""
    from microdesign.config import compose

    return float(compose("fidelity").generator.pore_neighbour_penalty)


def _errors(report: dict) -> dict[str, list[float]]:
    """Relative error of each point per metric of interest (AM–pore SSA, pore τ) and the pass count."""
    from microdesign.characterise.metrics import SSA_AM_PORE, TORTUOSITY_THROUGH_PLANE

    points = report["points"]
    return {"ssa_am_pore": [p["metrics"][SSA_AM_PORE]["difference"] for p in points],
            "tau": [p["metrics"][TORTUOSITY_THROUGH_PLANE]["difference"] for p in points],
            "passed": [sum(bool(m["passed"]) for m in p["metrics"].values()) for p in points],
            "compared": [len(p["metrics"]) for p in points],
            "params": [p["params"] for p in points]}


def _ints(ap: argparse.ArgumentParser, option: str, text: str, n: int) -> tuple[int, ...]:
    """``"3:3"`` -> ``(3, 3)``; a malformed value stops the script with a message naming the option."""
    try:
        values = tuple(int(x) for x in text.split(":"))
    except ValueError:
        values = ()
    if len(values) != n:
        ap.error(f"{option} {text!r}: expected {n} integers separated by ':'")
    return values


def _mae(values: list[float]) -> float:
    return 100 * sum(abs(v) for v in values) / len(values)


def _bias(values: list[float]) -> float:
    return 100 * sum(values) / len(values)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--penalties", type=float, nargs="+", default=[0, 0.5, 1, 1.5, 2, 2.5, 3])
    ap.add_argument("--calibration", nargs="+", default=["3:3", "5:5"], metavar="POINTS_SEED:SEED")
    ap.add_argument("--n-seeds", type=int, default=8)
    ap.add_argument("--score", nargs="+", default=["sel=2024:0:4", "h7=7:1:8", "h11=11:2:8"],
                    metavar="NAME=POINTS_SEED:SEED:N_SEEDS")
    ap.add_argument("--checkpoint", default=None,
                    help="generator checkpoint (folder or model name); default: the shipped config's")
    ap.add_argument("--tie", type=float, default=0.01, help="percentage points within which penalties tie")
    ap.add_argument("--work", default=str(REPO / "runs" / "labelling_calibration"))
    ap.add_argument("--output", default=None,
                    help="JSON file; default: docs/reference/labelling_calibration_<generator name>.json")
    args = ap.parse_args(argv)
    work = Path(args.work)
    calibration = [_ints(ap, "--calibration", c, 2) for c in args.calibration]
    score = [(spec.partition("=")[0], _ints(ap, "--score", spec.partition("=")[2], 3)) for spec in args.score]
    if any(not p >= 0 for p in args.penalties):
        ap.error(f"--penalties {args.penalties}: expected numbers >= 0 [logits]")
    if args.n_seeds < 2 or any(not name for name, _ in score):
        ap.error("--n-seeds: expected >= 2 cubes per point; --score: expected NAME=POINTS_SEED:SEED:N_SEEDS")
    generator = _checkpoint_record(args.checkpoint)
    work = work / f"{generator['name']}_{generator['weights_sha256'][:12]}"
    on_model = [f"generator.checkpoint={generator['checkpoint']}"]
    rows: dict[str, dict] = {}
    for pen in args.penalties:
        errs = [_errors(_fidelity(work, f"cal{ps}_{sd}_p{pen:g}", ps, sd, args.n_seeds,
                                  [*on_model, "generator.phase_fractions=design",
                                   f"generator.pore_neighbour_penalty={pen}"]))
                for ps, sd in calibration]
        ssa = [e for r in errs for e in r["ssa_am_pore"]]
        rows[f"{pen:g}"] = {"penalty": pen, "ssa_am_pore_rel_errors": ssa, "mae_pct": _mae(ssa), "bias_pct": _bias(ssa)}
    chosen = choose_penalty({r["penalty"]: r["mae_pct"] for r in rows.values()}, args.tie)
    # the chosen penalty, the shipped config's where it differs, none, and the network's own labels
    shipped = _shipped_penalty()
    penalties = [chosen] + ([shipped] if shipped != chosen else [])
    labellings = {f"design, penalty {p:g}": ["generator.phase_fractions=design", f"generator.pore_neighbour_penalty={p}"]
                  for p in penalties}
    labellings.update({"design, penalty 0": ["generator.phase_fractions=design", "generator.pore_neighbour_penalty=0"],
                       "argmax": ["generator.phase_fractions=argmax"]})
    scored: dict[str, dict] = {}
    for label, overrides in labellings.items():
        scored[label] = {}
        for name, (ps, sd, n) in score:
            tag = f"{name}_{label.replace(', ', '_').replace(' ', '')}"
            scored[label][name] = _errors(_fidelity(work, tag, ps, sd, n, [*on_model, *overrides]))
    command = "OMP_NUM_THREADS=1 python scripts/labelling_calibration.py " + shlex.join(argv or sys.argv[1:])
    out = Path(args.output) if args.output else REPO / "docs" / "reference" / f"labelling_calibration_{generator['name']}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"command": command.strip(), "generator": generator, "shipped_penalty": shipped,
                               "calibration_sets": args.calibration,
                               "n_seeds": args.n_seeds, "tie_pct": args.tie, "calibration": rows,
                               "chosen_penalty": chosen, "score_sets": args.score, "scored": scored}, indent=1))
    md = ["# Pore-neighbour penalty of the design labels: calibration and scores", "",
          f"Made by `{command.strip()}` (docs/generator.md, \"Phase fractions\"), for the generator "
          f"`{generator['name']}` (weights SHA-256 {generator['weights_sha256'][:12]}…).", "",
          f"Calibration sets (points_seed:seed) {', '.join(args.calibration)}, {args.n_seeds} cubes per point and "
          f"source; AM–pore SSA error over all their points. Chosen: **{chosen:g}** (smallest MAE; ties within "
          f"{args.tie:g} points go to the smaller penalty).", "",
          "| penalty [logits] | AM–pore SSA MAE [%] | bias [%] |", "|---|---|---|"]
    md += [f"| {r['penalty']:g} | {r['mae_pct']:.3f} | {r['bias_pct']:+.1f} |" for r in rows.values()]
    names = [s.partition("=")[0] for s in args.score]
    md += ["", "Fidelity sets (" + ", ".join(args.score) + "): MAE [%] (bias) and comparisons within target.", "",
           "| labelling | " + " | ".join(f"SSA AM–pore {n}" for n in names) + " | "
           + " | ".join(f"pore τ {n}" for n in names) + " | " + " | ".join(f"within target {n}" for n in names) + " |",
           "|---" * (1 + 3 * len(names)) + "|"]
    for label, sets in scored.items():
        md.append(f"| {label} | " + " | ".join(f"{_mae(sets[n]['ssa_am_pore']):.1f} ({_bias(sets[n]['ssa_am_pore']):+.1f})"
                                               for n in names)
                  + " | " + " | ".join(f"{_mae(sets[n]['tau']):.1f}" for n in names)
                  + " | " + " | ".join(f"{sum(sets[n]['passed'])}/{sum(sets[n]['compared'])}" for n in names) + " |")
    out.with_suffix(".md").write_text("\n".join(md) + "\n")
    print(out.with_suffix(".md").read_text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
