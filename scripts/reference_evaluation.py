"""Reference evaluation of held-out designs (docs/reference_error.md); writes docs/reference/reference_evaluation.json.

Synthetic-line structures (the shipped generator's training source), 16 cubes of 128³ characterised
by the campaign's characteriser, the campaign's cell model and objective at 10 W and 200 W, for 8
scrambled-Sobol designs of the default design space (:mod:`microdesign.analysis.reference`). Each
finished design is appended to the data file at once; rerunning the same command resumes.

Usage::

    OMP_NUM_THREADS=1 python scripts/reference_evaluation.py [--designs 8] [--designs-seed 14] \\
        [--cubes 16] [--size 128] [--powers 10 200] [--output docs/reference/reference_evaluation.json] \\
        [--only 0 3] [--structures line] [campaign overrides ...]

``--structures generator`` evaluates the campaign's generator on the same designs instead (one side of a
metric calibration, ``scripts/metric_calibration.py``).

Hours on a 2-core machine (see the data file's ``cpu_s`` per design). Never run in CI.
"""

from __future__ import annotations

import argparse
import logging
import shlex
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--designs", type=int, default=8)
    ap.add_argument("--designs-seed", type=int, default=14)
    ap.add_argument("--cubes", type=int, default=16)
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--powers", type=float, nargs="+", default=[10.0, 200.0])
    ap.add_argument("--output", default=str(REPO / "docs" / "reference" / "reference_evaluation.json"))
    ap.add_argument("--only", type=int, nargs="*", default=None, help="design indices to evaluate")
    ap.add_argument("--structures", choices=["line", "generator"], default="line")
    ap.add_argument("overrides", nargs="*", help="campaign config overrides (key=value)")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")

    from microdesign.analysis.reference import run_reference
    from microdesign.config import compose

    cfg = compose("campaign", list(args.overrides))
    shown = [a if not a.startswith(str(REPO)) else str(Path(a).relative_to(REPO)) for a in (argv or sys.argv[1:])]
    command = "OMP_NUM_THREADS=1 python scripts/reference_evaluation.py " + shlex.join(shown)
    run_reference(cfg, args.output, n_designs=args.designs, designs_seed=args.designs_seed, n_cubes=args.cubes,
                  size_voxels=args.size, powers_W=args.powers, command=command.strip(), only=args.only,
                  structures=args.structures)
    return 0


if __name__ == "__main__":
    sys.exit(main())
