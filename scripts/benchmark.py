"""Run the stage benchmarks and assemble docs/benchmarks.md.

Each `scripts/benchmark_<stage>.py` times one stage against the plain library call in the same run
and writes `docs/benchmarks/<stage>.md` (machine, date, command, ratios, accuracy). This script runs
the ones asked for and concatenates every section into `docs/benchmarks.md`.

Usage:
    python scripts/benchmark.py                      # run every stage benchmark, then assemble
    python scripts/benchmark.py --stages process cell
    python scripts/benchmark.py --assemble-only      # only rebuild docs/benchmarks.md from the sections
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from _bench import REPO_ROOT, SECTIONS_DIR  # noqa: E402

ORDER = ("process", "generator", "characterise", "cell", "rate_map", "campaign", "multi_fidelity", "multi_fidelity_real",
         "executor", "robust")

HEADER = """# Benchmarks

Produced by `python scripts/benchmark.py` (each section by its own `scripts/benchmark_<stage>.py`,
whose command, machine and date head the section). Every speed claim is a ratio against the plain
library call measured in the same run, with the accuracy of both. Benchmarks never run in CI; tests
never assert a time. Published reference points: TauFactor 2 solves 500³ in 26 s on an A6000 GPU vs
447 s on CPU (Kench et al., JOSS 2023); the Matter 2024 loop took about 2 min per iteration.

"""


def _as_section(text: str) -> str:
    """Demote every heading one level where a section starts at level 1 (each stage is a ``##``)."""
    if not text.startswith("# "):
        return text
    return "\n".join("#" + line if line.startswith("#") else line for line in text.splitlines()) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--stages", nargs="*", default=None, help=f"stages to run (default: all of {ORDER} that exist)")
    ap.add_argument("--assemble-only", action="store_true")
    args = ap.parse_args()
    if not args.assemble_only:
        for stage in args.stages or ORDER:
            script = HERE / f"benchmark_{stage}.py"
            if not script.exists():
                print(f"skip {stage}: {script.name} not found", file=sys.stderr)
                continue
            print(f"running {script.name} ...", file=sys.stderr)
            subprocess.run([sys.executable, str(script)], check=True, cwd=REPO_ROOT)
    sections = sorted(SECTIONS_DIR.glob("*.md"), key=lambda p: (ORDER.index(p.stem) if p.stem in ORDER else 99, p.stem))
    out = HEADER + "\n".join(_as_section(p.read_text()) for p in sections)
    (REPO_ROOT / "docs" / "benchmarks.md").write_text(out)
    print(f"wrote docs/benchmarks.md from {[p.stem for p in sections]}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
