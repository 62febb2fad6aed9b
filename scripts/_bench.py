"""Helpers shared by the benchmark scripts: machine description and the Markdown section writer."""

from __future__ import annotations

import datetime as _dt
import os
import platform
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
SECTIONS_DIR = REPO_ROOT / "docs" / "benchmarks"


def machine() -> str:
    """One line: CPU model, core count, memory, GPU (if torch sees one), Python and torch versions."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        mem_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    except (ValueError, OSError):
        mem_gib = float("nan")
    gpu = "no GPU"
    try:
        import torch

        if torch.cuda.is_available():
            gpu = torch.cuda.get_device_name(0)
        torch_version = torch.__version__
    except ImportError:
        torch_version = "absent"
    return (f"{cpu}, {os.cpu_count()} cores, {mem_gib:.0f} GiB, {gpu}; Python {sys.version.split()[0]}, "
            f"torch {torch_version}")


def write_section(stage: str, title: str, body: str, command: str) -> Path:
    """Write ``docs/benchmarks/<stage>.md`` with machine, date and the command that produced it."""
    SECTIONS_DIR.mkdir(parents=True, exist_ok=True)
    path = SECTIONS_DIR / f"{stage}.md"
    head = (f"## {title}\n\n*Machine:* {machine()}  \n*Date:* {_dt.date.today().isoformat()}  \n"
            f"*Command:* `{command}`\n\n")
    path.write_text(head + body.strip() + "\n")
    return path
