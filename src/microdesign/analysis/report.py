"""Campaign report: convergence, parameter traces, the best design's microstructure, GP partial dependence.

``write_report(path, out_dir)`` reads a campaign file (read-only: works on a running campaign too,
since the file is replaced atomically) and writes PNGs and ``report.md`` into ``out_dir``.
"""

from __future__ import annotations

import logging
import math
import time
from pathlib import Path
from typing import Any

import numpy as np

from microdesign.analysis.reference_error import error_note
from microdesign.campaign.loop import best_so_far, best_trial
from microdesign.objective import direction_sign
from microdesign.storage import CampaignStore, TrialRecord

log = logging.getLogger(__name__)

PHASE_COLOURS = ["#1b1b1b", "#9fb4c7", "#e07b39"]  # pore, active material, CBD
METHOD_COLOURS = {"sobol": "#4c72b0", "qLogNEI": "#dd8452", "rerun": "#55a868", "sobol-fallback": "#8172b3"}


def _direction(head: dict[str, Any]) -> str:
    """The stored objective direction (files always carry it; ``maximize`` where absent)."""
    return str(head.get("direction", "maximize"))


def _completed(trials: list[TrialRecord]) -> list[TrialRecord]:
    return [t for t in trials if t.status == "completed" and t.objective is not None]


def partial_dependence(head: dict[str, Any], trials: list[TrialRecord], n_grid: int = 25, n_mc: int = 128,
                       seed: int = 0) -> dict[str, dict[str, np.ndarray]] | None:
    """GP partial dependence of the objective on each free parameter.

    A ``SingleTaskGP`` is refitted to the completed trials (same model as the proposer: unit cube,
    ``Normalize``/``Standardize``, observed noise). For each free parameter on a grid of ``n_grid``
    values: the posterior mean averaged over ``n_mc`` Sobol draws of the other free parameters (the
    partial dependence of Friedman, Ann. Stat. 29 (2001) 1189), and the posterior mean ± 2 sd with
    the others held at the best design.

    Returns:
        name -> ``{"x": grid (physical), "pd": ..., "mean": ..., "sd": ...}`` in the objective's own
        sign and unit, or None with fewer than 3 completed trials.
    """
    import torch

    from microdesign.design import DesignSpace
    from microdesign.optim import fit_gp

    done = _completed(trials)
    if len(done) < 3:
        return None
    space = DesignSpace.from_stored(head["space"])
    X = np.array([[t.inputs[n] for n in space.names] for t in done])
    Z = space.to_free_unit(X)
    Y = torch.tensor([t.objective.value for t in done], dtype=torch.float64).unsqueeze(-1)
    V = torch.tensor([t.objective.variance for t in done], dtype=torch.float64).unsqueeze(-1)
    model = fit_gp(Z, Y, V)
    sign = direction_sign(_direction(head))
    best = Z[int(torch.argmax(Y))]
    from torch.quasirandom import SobolEngine

    others = SobolEngine(space.d_free, scramble=True, seed=seed).draw(n_mc, dtype=torch.float64)
    grid = torch.linspace(0, 1, n_grid, dtype=torch.float64)
    out = {}
    with torch.no_grad():
        for j, name in enumerate(space.free_names):
            pts = others.repeat(n_grid, 1)
            pts[:, j] = grid.repeat_interleave(n_mc)
            pd = model.posterior(pts).mean.reshape(n_grid, n_mc).mean(1)
            sl = best.repeat(n_grid, 1)
            sl[:, j] = grid
            post = model.posterior(sl)
            i = space.names.index(name)
            xg = space.lower[i] + grid.numpy() * (space.upper[i] - space.lower[i])
            m = post.mean.squeeze(-1).numpy()
            sd = post.variance.clamp_min(0).sqrt().squeeze(-1).numpy()
            if sign < 0:
                m, pd = -m, -pd
            out[name] = {"x": xg, "pd": pd.numpy(), "mean": m, "sd": sd}
    return out


def write_report(path: str | Path, out_dir: str | Path | None = None, dpi: int = 120) -> Path:
    """Write ``report.md`` and its PNGs for the campaign file ``path``.

    Args:
        path: campaign file.
        out_dir: output folder (default ``<file stem>_report`` next to the file).
        dpi: figure resolution.

    Returns:
        Path of ``report.md``.

    Raises:
        CampaignFileError: not a campaign file.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    out = Path(out_dir) if out_dir else path.with_name(path.stem + "_report")
    out.mkdir(parents=True, exist_ok=True)
    head, trials = CampaignStore(path).load()
    unit, label = head.get("objective_unit", ""), head.get("objective_name", "objective")
    names = head["space"]["names"]
    best = best_trial(trials)
    figs: list[tuple[str, str]] = []

    # 1. best objective vs evaluation
    fig, ax = plt.subplots(figsize=(6.4, 4))
    b = best_so_far(trials, _direction(head))
    fin = sorted((t for t in trials if t.finished), key=lambda t: (t.finished_unix, t.index))
    for k, t in enumerate(fin, start=1):
        if t.status == "completed":
            ob = t.objective
            ax.errorbar(k, ob.raw_value, yerr=1.96 * math.sqrt(max(ob.variance, 0)), fmt="o", ms=4,
                        color=METHOD_COLOURS.get(t.method, "grey"), alpha=0.8)
        else:
            ax.axvline(k, color="red", alpha=0.15, lw=3)
    ax.step(np.arange(1, b.size + 1), b, where="post", color="k", label="best so far")
    for m, c in METHOD_COLOURS.items():
        if any(t.method == m for t in fin):
            ax.plot([], [], "o", color=c, label=m)
    if any(t.status == "failed" for t in fin):
        ax.plot([], [], color="red", alpha=0.3, lw=3, label="failed")
    ax.set_xlabel("evaluation")
    ax.set_ylabel(f"{label} [{unit}]")
    ax.legend(fontsize=8)
    ax.set_title("Objective vs evaluation (error bars: 95% CI from the cube CI)")
    fig.tight_layout()
    fig.savefig(out / "convergence.png", dpi=dpi)
    plt.close(fig)
    figs.append(("convergence.png", "Best objective vs evaluation"))

    # 2. parameter traces
    fig, axes = plt.subplots(len(names), 1, figsize=(6.4, 1.6 * len(names) + 0.6), sharex=True, squeeze=False)
    for ax, name, lo, hi in zip(axes[:, 0], names, head["space"]["lower"], head["space"]["upper"]):
        for t in trials:
            mk = "o" if t.status == "completed" else ("x" if t.status == "failed" else ".")
            ax.plot(t.index, t.inputs[name], mk, color=METHOD_COLOURS.get(t.method, "grey"), ms=4)
        if best is not None:
            ax.plot(best.index, best.inputs[name], "*", color="gold", ms=12, mec="k")
        ax.set_ylim(lo - 0.05 * (hi - lo), hi + 0.05 * (hi - lo))
        ax.set_ylabel(name, fontsize=8)
    axes[-1, 0].set_xlabel("trial (o completed, x failed, * best)")
    fig.tight_layout()
    fig.savefig(out / "parameters.png", dpi=dpi)
    plt.close(fig)
    figs.append(("parameters.png", "Parameter traces"))

    # 3. slices of the best design's representative volume
    if best is not None and best.volume is not None:
        from matplotlib.colors import ListedColormap

        v = best.volume
        L = v.shape[0]
        fig, axes = plt.subplots(1, 3, figsize=(9, 3.3))
        ext = [0, L * best.voxel_size_m * 1e6, 0, L * best.voxel_size_m * 1e6]
        for ax, (title, sl) in zip(axes, [("x (through-plane) = L/2", v[L // 2]), ("y = L/2", v[:, L // 2]),
                                          ("z = L/2", v[:, :, L // 2])]):
            ax.imshow(sl, cmap=ListedColormap(PHASE_COLOURS), vmin=0, vmax=2, interpolation="nearest", extent=ext)
            ax.set_title(title, fontsize=9)
            ax.set_xlabel("µm")
        fig.suptitle(f"best design (trial {best.index}): pore black, AM blue-grey, CBD orange", fontsize=9)
        fig.tight_layout()
        fig.savefig(out / "best_microstructure.png", dpi=dpi)
        plt.close(fig)
        figs.append(("best_microstructure.png", "Slices of the best design's microstructure"))

    # 4. GP partial dependence
    pd = None
    try:
        pd = partial_dependence(head, trials)
    except Exception as exc:  # noqa: BLE001 - the report goes on without it
        log.warning("partial dependence skipped: %s", exc)
    if pd:
        k = len(pd)
        fig, axes = plt.subplots(1, k, figsize=(3 * k, 3), sharey=True, squeeze=False)
        for ax, (name, d) in zip(axes[0], pd.items()):
            ax.plot(d["x"], d["pd"], "k-", label="partial dependence")
            ax.plot(d["x"], d["mean"], "C1--", label="at best design")
            ax.fill_between(d["x"], d["mean"] - 2 * d["sd"], d["mean"] + 2 * d["sd"], color="C1", alpha=0.2)
            ax.set_xlabel(name, fontsize=8)
        axes[0, 0].set_ylabel(f"{label} [{unit}]")
        axes[0, 0].legend(fontsize=7)
        fig.tight_layout()
        fig.savefig(out / "partial_dependence.png", dpi=dpi)
        plt.close(fig)
        figs.append(("partial_dependence.png", "GP partial dependence (posterior mean; band ± 2 sd at the best design)"))

    md = _markdown(head, trials, best, figs, path, CampaignStore(path).load_validations())
    report = out / "report.md"
    report.write_text(md)
    log.info("report written to %s", report)
    return report


def _markdown(head: dict[str, Any], trials: list[TrialRecord], best: TrialRecord | None,
              figs: list[tuple[str, str]], path: Path, validations: list[TrialRecord] = ()) -> str:
    from microdesign.campaign.display import stage_means

    unit, label = head.get("objective_unit", ""), head.get("objective_name", "objective")
    counts = {s: sum(t.status == s for t in trials) for s in ("completed", "failed", "abandoned", "candidate", "running")}
    lines = [f"# Campaign report: `{path.name}`", "",
             f"- file: `{path}`; microdesign {head.get('package_version')}; seed {head.get('seed')}",
             f"- created {time.strftime('%Y-%m-%d %H:%M', time.localtime(head.get('created_unix', 0)))}; "
             f"stop reason: {head.get('stop_reason', 'running or killed')}",
             "- trials: " + ", ".join(f"{k} {v}" for k, v in counts.items() if v), ""]
    if best is not None:
        ob = best.objective
        lines += ["## Best design", "",
                  f"Trial {best.index} ({best.method}): **{label} = {ob.raw_value:.4g} ± "
                  f"{1.96 * math.sqrt(max(ob.variance, 0)):.2g} {unit}** (95%, from the characterisation CI); "
                  f"{error_note(head.get('config_yaml') or {})}", "",
                  "| parameter | value |", "|---|---|"]
        lines += [f"| {n} | {best.inputs[n]:.5g} |" for n in head["space"]["names"]]
        if best.metrics is not None:
            lines += ["", f"Metrics ({best.metrics.n_cubes} cubes of {best.metrics.cube_size_voxels}³, "
                          f"{best.metrics.stop_reason}):", "", "| metric | mean | 95% CI |", "|---|---|---|"]
            lines += [f"| {k} | {e.mean:.5g} | ± {e.ci95_half_width:.2g} |" for k, e in best.metrics.estimates.items()]
        if best.cell is not None and hasattr(best.cell, "to_dict"):
            lines += ["", "Cell:", "", "| quantity | value |", "|---|---|"]
            for k, v in best.cell.to_dict().items():
                if isinstance(v, float) and v != 0.0:
                    lines.append(f"| {k} | {v:.5g} |")
                elif isinstance(v, str) and v:
                    lines.append(f"| {k} | {v} |")
        lines.append("")
    if validations:
        from microdesign.campaign.validation import recommended

        found = {t.index: t for t in trials}
        lines += ["## Final validation of the best designs", "",
                  "Each re-evaluated with fresh cubes (new seeds); the value found is a maximum over noisy "
                  "evaluations, the validated value is what the design delivers (95% CI from its cubes).", "",
                  f"| trial | found [{unit}] | validated [{unit}] | cubes |", "|---|---|---|---|"]
        for v in validations:
            t = found.get(v.index)
            got = f"{t.objective.raw_value:.4g}" if t is not None and t.objective is not None else "-"
            val = (f"{v.objective.raw_value:.4g} ± {1.96 * math.sqrt(max(v.objective.variance, 0)):.2g}"
                   if v.status == "completed" else f"failed: {(v.reason or '').replace('|', '/')}")
            cubes = v.metrics.n_cubes if v.metrics is not None else "-"
            lines.append(f"| {v.index} | {got} | {val} | {cubes} |")
        rec = recommended(trials, list(validations))
        if rec is None:
            lines += ["", "No validated design completed: treat the best design above with caution.", ""]
        else:
            t, v = rec
            lines += ["", f"**Recommended design: trial {t.index}** (best validated value, "
                          f"{v.objective.raw_value:.4g} {unit}"
                          + ("; the best design found above failed or fell behind on re-evaluation"
                             if best is not None and t.index != best.index else "") + ").", "",
                      "| parameter | value |", "|---|---|"]
            lines += [f"| {n} | {t.inputs[n]:.5g} |" for n in head["space"]["names"]]
            if v.metrics is not None:
                lines += ["", f"Its validated metrics ({v.metrics.n_cubes} cubes of {v.metrics.cube_size_voxels}³):",
                          "", "| metric | mean | 95% CI |", "|---|---|---|"]
                lines += [f"| {k} | {e.mean:.5g} | ± {e.ci95_half_width:.2g} |" for k, e in v.metrics.estimates.items()]
            lines.append("")
    means = stage_means(trials)
    if means:
        lines += ["## Time per trial by stage", "", "| stage | mean [s] |", "|---|---|"]
        lines += [f"| {k} | {v:.2f} |" for k, v in means.items()]
        lines.append("")
    failed = [t for t in trials if t.status in ("failed", "abandoned")]
    if failed:
        lines += ["## Failed and abandoned trials", "", "| trial | status | reason |", "|---|---|---|"]
        lines += [f"| {t.index} | {t.status} | {(t.reason or '').replace('|', '/')} |" for t in failed]
        lines.append("")
    fallback = [t for t in trials if t.note]
    if fallback:
        lines += ["## Proposals that fell back to Sobol", "", "| trial | why |", "|---|---|"]
        lines += [f"| {t.index} | {t.note.replace('|', '/')} |" for t in fallback]
        lines.append("")
    partial = [(t.index, k, why) for t in trials if t.objective is not None
               for k, why in (getattr(t.objective, "noise_left_out", None) or {}).items()]
    if partial:
        lines += ["## Metrics left out of the objective noise (failed re-simulation)", "",
                  "| trial | metric | why |", "|---|---|---|"]
        lines += [f"| {i} | {k} | {why.replace('|', '/')} |" for i, k, why in partial]
        lines.append("")
    lines += ["## Figures", ""]
    for f, caption in figs:
        lines += [f"### {caption}", "", f"![{caption}]({f})", ""]
    return "\n".join(lines)
