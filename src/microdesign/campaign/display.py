"""Terminal display of a running campaign (rich): progress line while running, summary table at the end."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from microdesign.campaign.loop import STAGES, Campaign


def stage_means(trials: list[Any]) -> dict[str, float]:
    """Mean wall time per stage [s] over finished trials (stages in pipeline order)."""
    out = {}
    for s in STAGES:
        v = [t.timings[s] for t in trials if t.finished and s in t.timings]
        if v:
            out[s] = float(np.mean(v))
    return out


class RichDisplay:
    """``progress`` callback of :class:`Campaign`: a rich progress bar with iteration, best so far and
    per-stage times of the last trial; :meth:`summary` renders the end-of-campaign table.

    Args:
        unit: objective unit for display.
        label: objective name.
        console: a ``rich.console.Console`` (default: rich's global console, shared with logging).
    """

    def __init__(self, unit: str = "", label: str = "objective", sign: float = 1.0, console: Any = None):
        from rich.console import Console  # noqa: F401 - ensures rich is importable early

        self.unit, self.label, self.sign = unit, label, sign
        self.console = console
        self._progress = None
        self._task = None

    def __call__(self, event: str, c: Campaign) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        if event == "start" and self._progress is None:
            kw = {"console": self.console} if self.console is not None else {}
            self._progress = Progress(TextColumn("[bold]campaign[/]"), BarColumn(), MofNCompleteColumn(),
                                      TimeElapsedColumn(), TextColumn("{task.description}"), transient=False, **kw)
            self._progress.start()
            self._task = self._progress.add_task(self._text(c), total=c.budget.max_evaluations, completed=c.n_finished)
        elif self._progress is not None and event in ("running", "trial"):
            self._progress.update(self._task, completed=c.n_finished, description=self._text(c))
        elif self._progress is not None and event == "validation":
            n = len(getattr(c, "validations", []))
            self._progress.update(self._task, description=f"final validation: {n} design(s) re-evaluated")
        elif event == "end" and self._progress is not None:
            self._progress.update(self._task, completed=c.n_finished, description=self._text(c))
            self._progress.stop()
            self._progress = None

    def _text(self, c: Campaign) -> str:
        best = c.best()
        b = f"{self.sign * best.objective.value:.4g} {self.unit}" if best is not None else "-"
        last = c.finished[-1] if c.finished else None
        parts = [f"iter {c.n_finished}", f"best {b}"]
        if c.current is not None:
            parts.append(f"running #{c.current.index}")
        if last is not None:
            parts.append(" ".join(f"{s[:4]} {last.timings[s]:.1f}s" for s in STAGES if s in last.timings))
        return " | ".join(parts)

    def summary(self, c: Campaign, path: str) -> Any:
        """A rich ``Table``: counts, best design, top trials, mean time per stage."""
        from rich.table import Table

        tab = Table(title=f"campaign {path}: {c.stop_reason}", show_lines=False)
        tab.add_column("trial", justify="right")
        tab.add_column("status")
        tab.add_column("method")
        for n in c.names:
            tab.add_column(n, justify="right")
        tab.add_column(f"{self.label} [{self.unit}]", justify="right")
        validated = {v.index: v for v in getattr(c, "validations", [])}
        cubes = sorted({v.metrics.n_cubes for v in validated.values() if v.metrics is not None})
        if validated:
            tab.add_column("validated", justify="right")
        done = [t for t in c.trials if t.status == "completed"]
        top = sorted(done, key=lambda t: -t.objective.value)[:5]
        top += [t for t in done if t.index in validated and t not in top]
        for t in top:
            row = [str(t.index), t.status, t.method, *[f"{t.inputs[n]:.4g}" for n in c.names], _value(t)]
            if validated:
                v = validated.get(t.index)
                row.append("" if v is None else (_value(v) if v.status == "completed" else "failed"))
            tab.add_row(*row)
        counts = {s: sum(1 for t in c.trials if t.status == s) for s in
                  ("completed", "failed", "abandoned", "candidate", "running")}
        means = stage_means(c.trials)
        tab.caption = ("; ".join(f"{k} {v}" for k, v in counts.items() if v) + " | mean s/trial: "
                       + ", ".join(f"{k} {v:.2f}" for k, v in means.items()))
        tab.caption += f" | objective ± 95% CI; {_error_note(c)}"
        if validated:
            from microdesign.campaign.validation import recommended

            rec = recommended(c.trials, list(validated.values()))
            tab.caption += (f" | validated with {'/'.join(map(str, cubes)) or '-'} fresh cubes: "
                            + ("no validated design completed" if rec is None else
                               f"recommended trial {rec[0].index} (best validated value)"))
        return tab


def _error_note(c: Campaign) -> str:
    """The objective's measured error against the reference for this campaign's settings
    (:func:`microdesign.analysis.reference_error.error_note`; docs/reference_error.md)."""
    from microdesign.analysis.reference_error import error_note

    try:
        config_yaml = c.store.read_header()["config_yaml"]
    except Exception:  # noqa: BLE001 - the summary never fails on the note
        return error_note({})
    return error_note(config_yaml)


def _value(t: Any) -> str:
    ob = t.objective
    return f"{ob.raw_value:.4g} ± {1.96 * math.sqrt(max(ob.variance, 0.0)):.2g}"
