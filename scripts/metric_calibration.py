"""Metric calibration of a generator's default evaluation against the reference pipeline (docs/metric_calibration.md).

For scrambled-Sobol calibration designs of the campaign's design space (seed 15: not the error table's
held-out designs, seed 14), two evaluations (:func:`microdesign.analysis.reference.run_reference`,
each resumable, kept in ``--work``):

- the reference: synthetic-line cubes of 128³ (``--reference-cubes`` per design);
- the campaign's generator on cubes of the campaign's side (``--cubes`` per design, a fixed count).

Then, per metric, the log ratio of the two means is modelled over the generator's parameters
(:mod:`microdesign.characterise.calibration`) and checked by leave-one-out. A metric is calibrated only
where that check says the calibration brings it closer to the reference both on average and at most
designs (at least ``--min-improved-share`` of them, default two thirds: a discrepancy the GP cannot
resolve, such as a sharp corner of the design space, is smeared over its neighbours and lowers the
mean error while raising it at many designs). Writes the calibration file
into the checkpoint folder (``metric_calibration_<L>.json``, which ``campaign.metric_calibration=auto``
uses) and its leave-one-out table to ``docs/reference/metric_calibration_<name>_<L>.md``.

Usage::

    OMP_NUM_THREADS=1 python scripts/metric_calibration.py [--designs 32] [--designs-seed 15] \\
        [--reference-cubes 4] [--reference-size 128] [--cubes 16] [--work runs/metric_calibration] \\
        [--only 0 2 4] [--min-improved-share 0.667] [--output PATH] [--markdown PATH] \\
        [campaign overrides ...]

About an hour on a 2-core machine for 32 designs (two processes with ``--only`` split the designs; the
last run without ``--only`` writes the file). Never run in CI.
"""

from __future__ import annotations

import argparse
import json
import logging
import shlex
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _markdown(data: dict, loo: dict, name: str, command: str) -> str:
    from microdesign.characterise.calibration import CALIBRATABLE

    ref, ev = data["reference"], data["evaluation"]
    lines = [f"# Metric calibration of `{name}` at cubes of {ev['size_voxels']}³", "",
             f"Made by `{command}`; data: the checkpoint's `metric_calibration_{ev['size_voxels']}.json` "
             "(docs/metric_calibration.md).", "",
             f"- calibration designs: {len(data['designs'])} scrambled-Sobol designs (seed {ref['designs_seed']}) "
             "of the default design space",
             f"- reference: {ref['n_cubes']} synthetic-line cubes of {ref['size_voxels']}³ per design",
             f"- evaluation: {ev['n_cubes']} generated cubes of {ev['size_voxels']}³ per design "
             f"({data['validity']['labelling']}, τ estimator {data['validity']['tau_estimator']})", "",
             "Leave-one-out: each design's log ratio ln(reference / evaluation) predicted by the GP of the others; "
             "mean absolute log ratio before and after (about the mean relative error), the share of designs "
             "where it fell, and the share inside the 95 % prediction interval. A metric is calibrated where the "
             f"mean fell and it fell at {data['selection']['min_improved_share']:.2f} of the designs or more.", "",
             "| metric | designs | mean abs. log ratio, uncalibrated | after calibration | designs improved | "
             "95 % coverage | calibrated |",
             "|---|---|---|---|---|---|---|"]
    for k, r in loo.items():
        lines.append(f"| {CALIBRATABLE[k]} | {r['n']} | {r['mae_uncalibrated']:.4f} | {r['mae_calibrated']:.4f} | "
                     f"{r['improved_share']:.2f} | {r['coverage_95']:.2f} | {'yes' if k in data['metrics'] else 'no'} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--designs", type=int, default=32)
    ap.add_argument("--designs-seed", type=int, default=15)
    ap.add_argument("--reference-cubes", type=int, default=4)
    ap.add_argument("--reference-size", type=int, default=128)
    ap.add_argument("--cubes", type=int, default=16, help="generated cubes per design (fixed count)")
    ap.add_argument("--work", default=str(REPO / "runs" / "metric_calibration"))
    ap.add_argument("--only", type=int, nargs="*", default=None, help="design indices (no calibration file written)")
    ap.add_argument("--output", default=None, help="calibration file (default: in the checkpoint folder)")
    ap.add_argument("--markdown", default=None,
                    help="leave-one-out table (default: docs/reference/metric_calibration_<name>_<L>.md)")
    ap.add_argument("--min-improved-share", type=float, default=2 / 3,
                    help="calibrate a metric only where leave-one-out lowers its error at this share of the designs")
    ap.add_argument("overrides", nargs="*", help="campaign config overrides (key=value)")
    args = ap.parse_args(argv)
    if not 0.0 <= args.min_improved_share <= 1.0:
        ap.error(f"--min-improved-share {args.min_improved_share}: expected a share in [0, 1]")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")

    from microdesign.analysis.reference import load_reference, run_reference
    from microdesign.campaign.build import instantiate
    from microdesign.characterise.calibration import CALIBRATABLE, CalibrationData, calibration_data, leave_one_out
    from microdesign.config import compose
    from microdesign.data.files import write_json
    from microdesign.generator.checkpoint import resolve_checkpoint_dir

    cfg = compose("campaign", list(args.overrides))
    size = int(cfg.campaign.cube_size_voxels)
    work = Path(args.work)
    common = {"n_designs": args.designs, "designs_seed": args.designs_seed, "powers_W": [], "only": args.only}
    shown = [a if not a.startswith(str(REPO)) else str(Path(a).relative_to(REPO)) for a in (argv or sys.argv[1:])]
    command = "OMP_NUM_THREADS=1 python scripts/metric_calibration.py " + shlex.join(shown)
    line_file = work / f"line_{args.reference_size}.json"
    gen_file = work / f"generator_{size}.json"
    run_reference(cfg, line_file, n_cubes=args.reference_cubes, size_voxels=args.reference_size,
                  structures="line", command=command.strip(), **common)
    run_reference(cfg, gen_file, n_cubes=args.cubes, size_voxels=size, structures="generator",
                  command=command.strip(), **common)
    if args.only is not None:
        return 0
    generator = instantiate(cfg.generator, "generator")
    data = calibration_data(load_reference(line_file), load_reference(gen_file), generator,
                            metrics=list(CALIBRATABLE), command=command.strip())
    observed = CalibrationData.from_dict(data)
    # a metric measured (positive, two cubes or more) at fewer than 5 designs is not calibrated
    loo = {k: leave_one_out(observed, k) for k in CALIBRATABLE if len(observed.observations(k)[1]) >= 5}
    data["metrics"] = [k for k, r in loo.items() if r["mae_calibrated"] < r["mae_uncalibrated"]
                       and r["improved_share"] >= args.min_improved_share]
    data["selection"] = {"min_improved_share": args.min_improved_share}
    data["leave_one_out"] = loo
    output = Path(args.output) if args.output else (
        resolve_checkpoint_dir(str(cfg.generator.checkpoint)) / f"metric_calibration_{size}.json")
    write_json(data, output)
    md = Path(args.markdown) if args.markdown else (
        REPO / "docs" / "reference" / f"metric_calibration_{generator.name}_{size}.md")
    md.write_text(_markdown(data, loo, generator.name, command.strip()))
    print(json.dumps({k: {**r, "calibrated": k in data["metrics"]} for k, r in loo.items()}, indent=1))
    print(f"wrote {output} and {md}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
