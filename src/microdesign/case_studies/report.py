"""Analysis and reports of the case studies: optima, convergence, Ragone plot, crossover, Pareto front.

Everything reads the campaign files (:class:`~microdesign.case_studies.runner.CampaignRun`); extra cell
simulations (Ragone sweeps, cross-evaluation of single-objective optima at the other power) re-use
the stored metrics of a trial with the campaign's own cell model, so no characterisation is repeated.

Crossover power (Kench et al., Matter 2024, Fig. 5): the power above which the power cell stores more
energy per volume than the energy cell; found on the sweep grid as the first sign change of
``VED_power(P) - VED_energy(P)`` and refined by bisection in ``log P`` (a failed discharge counts
as 0 W.h.L-1: the cell cannot deliver that power).

Plots use matplotlib's Agg backend; each report is ``<report_dir>/<study>.md`` plus PNGs
``<study>_*.png`` (the gpu profile adds a ``-gpu`` suffix).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from omegaconf import DictConfig, OmegaConf

from microdesign.campaign.loop import best_so_far

log = logging.getLogger(__name__)

NICE = {"am_weight_fraction": "AM weight fraction", "porosity": "porosity", "cbd_adhesion": "CBD adhesion",
        "mass_loading_mg_cm2": "mass loading [mg.cm-2]"}


# ----------------------------------------------------------------------------------------------- helpers
def completed(trials: Sequence[Any]) -> list[Any]:
    """Completed trials with an ok objective, in index order."""
    return [t for t in trials if t.status == "completed" and t.objective is not None and t.objective.ok]


def full_cell_model(run: Any, power_W: float | None = None) -> Any:
    """A plain :class:`~microdesign.cell.CellModel` with the campaign's cell settings (for Ragone sweeps)."""
    from microdesign.cell import CellModel

    node = OmegaConf.to_container(run.config.cell, resolve=True)
    for k in ("_target_", "c_rate", "electrode_area_m2", "upper_voltage_cutoff_V", "powers_W", "quantities"):
        node.pop(k, None)
    if power_W is not None:
        node["protocol"] = {"kind": "constant_power", "power_W": float(power_W)}
    return CellModel(**node)


def ragone(model: Any, trial: Any, powers_W: Sequence[float], mass_loading_mg_cm2: float | None = None) -> np.ndarray:
    """Volumetric energy density [W.h.L-1] of ``trial``'s design at each power (0 where it fails), shape ``p``."""
    ml = float(mass_loading_mg_cm2 if mass_loading_mg_cm2 is not None else trial.inputs["mass_loading_mg_cm2"])
    thick = model.cathode_thickness_from_mass_loading(trial.metrics, ml)
    res = model.ragone(trial.metrics, thick, [float(p) for p in powers_W])
    return np.array([r.volumetric_energy_density_Wh_L if r.ok else 0.0 for r in res])


def crossover_power(model: Any, energy: Any, power: Any, powers_W: np.ndarray, ved_e: np.ndarray,
                    ved_p: np.ndarray, refine: int = 8) -> float | None:
    """Power [W] above which the power cell stores more energy per volume than the energy cell (None if
    no crossing inside the sweep); bisection in ``log P`` between the bracketing sweep points."""
    diff = ved_p - ved_e
    idx = [i for i in range(1, len(diff)) if diff[i - 1] < 0 <= diff[i]]
    if not idx:
        return None
    lo, hi = math.log(powers_W[idx[0] - 1]), math.log(powers_W[idx[0]])
    for _ in range(refine):
        mid = 0.5 * (lo + hi)
        p = math.exp(mid)
        d = ragone(model, power, [p])[0] - ragone(model, energy, [p])[0]
        lo, hi = (mid, hi) if d < 0 else (lo, mid)
    return math.exp(0.5 * (lo + hi))


def design_row(trial: Any, names: Sequence[str]) -> list[str]:
    return [f"{trial.inputs[n]:.3f}" if n != "mass_loading_mg_cm2" else f"{trial.inputs[n]:.1f}" for n in names]


def _bound_note(trial: Any, head: dict[str, Any]) -> str:
    """Which free parameters sit within 2% of a bound (``porosity=upper``)."""
    s = head["space"]
    notes = []
    for n, lo, hi in zip(s["names"], s["lower"], s["upper"]):
        if n in s["fixed"]:
            continue
        x = trial.inputs[n]
        if x <= lo + 0.02 * (hi - lo):
            notes.append(f"{n}=lower")
        elif x >= hi - 0.02 * (hi - lo):
            notes.append(f"{n}=upper")
    return ", ".join(notes) or "interior"


def _compare(x: float, y: float, more: str, less: str, tol: float = 0.005) -> str:
    """``more`` / ``less`` / ``as ... as`` wording for x against y (tolerance ``tol``)."""
    if abs(x - y) <= tol:
        return "as high as (within %g)" % tol
    return more if x > y else less


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _budget_lines(cfg: DictConfig, runs: dict[str, Any]) -> list[str]:
    prof = str(cfg.profile)
    lines = [f"Profile `{prof}`; seed {int(cfg.seed)}. Evaluations per campaign (finished / failed):", ""]
    for label, r in runs.items():
        fin = [t for t in r.trials if t.finished]
        c = r.config if r.head else None
        extra = ""
        if c is not None:
            gen, voxel_m = _generator_description(c)
            extra = (f" — generator {gen}, cubes {int(c.campaign.n_cubes) if not c.campaign.adaptive else 'adaptive'}"
                     f" x {int(c.campaign.cube_size_voxels)}^3 at {voxel_m * 1e6:.3g} µm"
                     f", n_initial {int(c.optimiser.n_initial)}")
        lines.append(f"- `{label}`: {len(fin)} / {sum(t.status == 'failed' for t in fin)}{extra}")
    return lines


def _generator_description(c: DictConfig) -> tuple[str, float]:
    """(Markdown name, voxel size [m]) of a campaign's generator: the checkpoint name and its recorded
    voxel size for a trained generator, the class and configured voxel size otherwise."""
    checkpoint = OmegaConf.select(c, "generator.checkpoint", default=None)
    if checkpoint is not None:
        from microdesign.errors import ConfigError
        from microdesign.generator.checkpoint import load_metadata

        try:
            return f"checkpoint `{checkpoint}`", float(load_metadata(str(checkpoint)).voxel_size_m)
        except (ConfigError, OSError):  # a report must still be written; the size is then unknown
            return f"checkpoint `{checkpoint}` (not found)", float("nan")
    target = str(OmegaConf.select(c, "generator._target_", default="?"))
    return f"`{target.rsplit('.', 1)[-1]}`", float(OmegaConf.select(c, "generator.voxel_size_m", default=0) or 0)


def _convergence_plot(runs: dict[str, Any], path: Path, ylabel: str, title: str) -> None:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5.5, 3.6), dpi=110)
    for label, r in runs.items():
        y = best_so_far(r.trials, r.head.get("direction", "maximize"))
        if y.size:
            ax.plot(np.arange(1, y.size + 1), y, marker="o", ms=3, label=label)
    ax.set_xlabel("evaluation")
    ax.set_ylabel(f"best so far: {ylabel}")
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def _design_map(runs: dict[str, Any], path: Path, unit: str, title: str) -> None:
    """AM weight fraction vs porosity of every evaluated design, coloured by the objective; best starred."""
    plt = _plt()
    n = len(runs)
    fig, axes = plt.subplots(1, n, figsize=(3.2 * n, 3.2), dpi=110, squeeze=False)
    for ax, (label, r) in zip(axes[0], runs.items()):
        done = completed(r.trials)
        if not done:
            continue
        x = [t.inputs["am_weight_fraction"] for t in done]
        y = [t.inputs["porosity"] for t in done]
        c = [t.objective.raw_value for t in done]
        sc = ax.scatter(x, y, c=c, cmap="viridis", s=30, edgecolors="k", linewidths=0.3)
        fail = [t for t in r.trials if t.status == "failed"]
        if fail:
            ax.scatter([t.inputs["am_weight_fraction"] for t in fail], [t.inputs["porosity"] for t in fail],
                       marker="x", c="r", s=25, label="failed")
        b = r.optimum()
        ax.scatter([b.inputs["am_weight_fraction"]], [b.inputs["porosity"]], marker="*", s=220, c="red",
                   edgecolors="k", label="best")
        s = r.head["space"]
        i, j = s["names"].index("am_weight_fraction"), s["names"].index("porosity")
        px, py = 0.04 * (s["upper"][i] - s["lower"][i]), 0.04 * (s["upper"][j] - s["lower"][j])
        ax.set_xlim(s["lower"][i] - px, s["upper"][i] + px)
        ax.set_ylim(s["lower"][j] - py, s["upper"][j] + py)
        ax.axvline(s["lower"][i], c="grey", lw=0.5, ls=":")
        ax.axvline(s["upper"][i], c="grey", lw=0.5, ls=":")
        ax.axhline(s["lower"][j], c="grey", lw=0.5, ls=":")
        ax.axhline(s["upper"][j], c="grey", lw=0.5, ls=":")
        ax.set_xlabel("AM weight fraction")
        ax.set_ylabel("porosity")
        ax.set_title(label, fontsize=9)
        fig.colorbar(sc, ax=ax, label=unit, shrink=0.8)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def _optimum_section(runs: dict[str, Any], out: Path, stem: str, unit: str, heading: str, convergence_title: str,
                     designs_title: str | None = None) -> list[str]:
    """Draw ``<stem>_convergence.png`` (and with ``designs_title`` ``<stem>_designs.png``) under ``out``;
    return the markdown section: ``heading``, the optimum table, the figure links."""
    figures = []
    if designs_title is not None:
        _design_map(runs, out / f"{stem}_designs.png", unit, designs_title)
        figures = [f"![designs]({stem}_designs.png)", ""]
    _convergence_plot(runs, out / f"{stem}_convergence.png", unit, convergence_title)
    return [heading, "", *_optimum_table(runs, unit), "", *figures, f"![convergence]({stem}_convergence.png)", ""]


def _optimum_table(runs: dict[str, Any], unit: str) -> list[str]:
    first = next(iter(runs.values()))
    names = [n for n in first.head["space"]["names"] if n not in first.head["space"]["fixed"]]
    head = ["campaign", *[NICE.get(n, n) for n in names], f"best [{unit}]", "± 1σ (CI noise)", "cathode [µm]",
            "position", "evaluations"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for label, r in runs.items():
        b = r.optimum()
        if b is None:
            lines.append(f"| {label} | " + " | ".join(["—"] * (len(head) - 1)) + " |")
            continue
        th = b.cell.cathode_thickness_m * 1e6 if b.cell is not None else float("nan")
        v = r.validated(b.index)
        checked = ("" if v is None else f" (validated {v.objective.raw_value:.1f}, {v.metrics.n_cubes} cubes)"
                   if v.status == "completed" else " (failed its validation)")
        lines.append(f"| {label} | " + " | ".join(design_row(b, names)) +
                     f" | {b.objective.raw_value:.1f}{checked} | {math.sqrt(b.objective.variance):.2g} | {th:.0f} | "
                     f"{_bound_note(b, r.head)} | {len([t for t in r.trials if t.finished])} |")
    return lines


# ----------------------------------------------------------------------------------------------- studies
def _report_cs1(cfg, runs, out, stem) -> list[str]:
    L = _optimum_section(runs, out, stem, "mA.h.g-1", "## Optimum per C-rate", "CS1: convergence per C-rate",
                         "CS1: capacity per gram AM over the evaluated designs")
    L += ["## Verdict", ""]
    deg = []
    for label, r in runs.items():
        b = r.optimum()
        if b is None:
            continue
        s = r.head["space"]
        i, j = s["names"].index("am_weight_fraction"), s["names"].index("porosity")
        frac_am = (b.inputs["am_weight_fraction"] - s["lower"][i]) / (s["upper"][i] - s["lower"][i])
        frac_eps = (b.inputs["porosity"] - s["lower"][j]) / (s["upper"][j] - s["lower"][j])
        deg.append((label, frac_am, frac_eps))
    for label, a, e in deg:
        L.append(f"- `{label}`: optimum at {100 * a:.0f}% of the AM-fraction range and {100 * e:.0f}% of the "
                 f"porosity range (degenerate corner = 0% and 100%).")
    return L


def _report_cs2(cfg, runs, out, stem) -> list[str]:
    L = _optimum_section(runs, out, stem, "W.h.kg-1", "## Optimum at each power", "CS2: convergence",
                         "CS2: 4680 specific energy over the evaluated designs")
    lo, hi = runs.get("low_power"), runs.get("high_power")
    a, b = (lo.optimum() if lo is not None else None), (hi.optimum() if hi is not None else None)
    if a is not None and b is not None:
        L += ["## Verdict", "",
              f"- low power: AM weight fraction {a.inputs['am_weight_fraction']:.3f}, porosity {a.inputs['porosity']:.3f}; "
              f"high power: AM weight fraction {b.inputs['am_weight_fraction']:.3f}, porosity {b.inputs['porosity']:.3f}.",
              f"- porosity: the high-power optimum is {_compare(b.inputs['porosity'], a.inputs['porosity'], 'more porous than', 'less porous than')} the low-power one.",
              f"- AM weight fraction: the low-power optimum is {_compare(a.inputs['am_weight_fraction'], b.inputs['am_weight_fraction'], 'more AM-rich than', 'less AM-rich than')} the high-power one.",
              ""]
    return L


def _report_cs3(cfg, runs, out, stem, load) -> list[str]:
    L = _optimum_section(runs, out, stem, "W.h.L-1", "## Optima", "CS3: convergence")
    e, p = runs.get("energy_cell"), runs.get("power_cell")
    be, bp = (e.optimum() if e is not None else None), (p.optimum() if p is not None else None)
    if be is None or bp is None:
        return L + ["(Ragone plot needs both campaigns.)"]
    rc = cfg.studies.cs3.ragone
    powers = np.geomspace(float(rc.low_W), float(rc.high_W), int(rc.n))
    model = full_cell_model(e)
    ved_e, ved_p = ragone(model, be, powers), ragone(model, bp, powers)
    curves = {"energy cell (opt. 10 W)": ved_e, "power cell (opt. 200 W)": ved_p}
    cs1_note = ""
    try:
        cs1 = load("cs1") or {}
        r1 = cs1.get(str(rc.cs1_label))
        b1 = r1.optimum() if r1 is not None else None
        if b1 is not None:
            curves[f"CS1 optimum ({rc.cs1_label}) in a 4680"] = ragone(model, b1, powers, b1.inputs["mass_loading_mg_cm2"])
            cs1_note = (f"CS1 design: AM weight fraction {b1.inputs['am_weight_fraction']:.3f}, porosity "
                        f"{b1.inputs['porosity']:.3f}, {b1.inputs['mass_loading_mg_cm2']:.0f} mg.cm-2.")
    except Exception as exc:  # noqa: BLE001 - the report goes on without the CS1 curve
        log.warning("CS1 design for the Ragone plot unavailable: %s", exc)
    cross = crossover_power(model, be, bp, powers, ved_e, ved_p)
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5.8, 3.9), dpi=110)
    for (label, v), mk in zip(curves.items(), ("o", "s", "^")):
        ok = v > 0
        ax.plot(powers[ok], v[ok], marker=mk, ms=4, label=label)
    if cross is not None:
        ax.axvline(cross, color="k", ls="--", lw=0.8)
        ax.annotate(f"crossover {cross:.0f} W", (cross, 1.0), xycoords=("data", "axes fraction"), xytext=(4, -12),
                    textcoords="offset points", fontsize=8)  # top of the axes, clear of the legend
    pub = cfg.studies.cs3.published
    ax.axvline(float(pub.crossover_W), color="grey", ls=":", lw=0.8)
    ax.scatter([10.0], [float(pub.energy_cell_Wh_L)], marker="*", c="grey", s=80, zorder=5,
               label=f"Kench et al. 2024: {pub.energy_cell_Wh_L:.0f} Wh/L at 10 W; crossover {pub.crossover_W:.0f} W (dotted)")
    ax.set_xscale("log")
    ax.set_xlabel("discharge power [W]")
    ax.set_ylabel("volumetric energy density [W.h.L-1]")
    ax.set_title("Ragone plot, 4680 cell", fontsize=9)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=6.5)
    fig.tight_layout()
    fig.savefig(out / f"{stem}_ragone.png")
    plt.close(fig)
    rows = ["| power [W] | " + " | ".join(curves) + " |", "|---|" + "---|" * len(curves)]
    for i, pw in enumerate(powers):
        rows.append(f"| {pw:.3g} | " + " | ".join(f"{v[i]:.0f}" for v in curves.values()) + " |")
    at10_e = float(ragone(model, be, [10.0])[0])
    L += ["## Ragone plot", "", f"![ragone]({stem}_ragone.png)", "", cs1_note, "", *rows, "",
          "## Comparison with Kench et al., Matter 2024", "",
          "| quantity | this run | published |", "|---|---|---|",
          f"| energy cell at 10 W [W.h.L-1] | {at10_e:.0f} | ~{pub.energy_cell_Wh_L:.0f} |",
          f"| crossover power [W] | {'none in sweep' if cross is None else f'{cross:.0f}'} | ~{pub.crossover_W:.0f} |", ""]
    return L


def _report_pareto(cfg, runs, out, stem, load) -> list[str]:
    from microdesign.objective.vector import multi_objective_observations
    from microdesign.optim.multi_objective import hypervolume, pareto_mask

    r = runs.get("pareto")
    if r is None or not r.trials:
        return ["(no Pareto campaign found)"]
    names = r.head["space"]["names"]
    c = r.config
    objs = list(c.objective.objectives)
    m = len(objs)
    ref = [float(v) for v in c.optimiser.ref_point]
    powers = [float(p) for p in c.cell.powers_W]
    X, Y, V, idx = multi_objective_observations(r.trials, names, m)
    front = pareto_mask(Y) if len(Y) else np.zeros(0, bool)
    # single-objective campaigns: every evaluated design at both powers (re-simulated from stored metrics)
    so = load(str(cfg.studies.pareto.compare_with)) or {}
    so_points: dict[str, np.ndarray] = {}
    order_so: list[tuple[float, np.ndarray]] = []
    for label in ("energy_cell", "power_cell"):
        rr = so.get(label)
        if rr is None:
            continue
        model = full_cell_model(rr)
        pts = []
        for t in completed(rr.trials):
            v = ragone(model, t, powers)
            pts.append(v)
            order_so.append((t.index + (0.5 if label == "power_cell" else 0.0), v))
        so_points[label] = np.array(pts).reshape(-1, m)
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5.6, 4.0), dpi=110)
    if len(Y):
        ax.scatter(Y[:, 0], Y[:, 1], s=22, c="tab:blue", alpha=0.6, label=f"qLogNEHVI campaign ({len(Y)} designs)")
        F = Y[front]
        F = F[np.argsort(F[:, 0])]
        ax.plot(F[:, 0], F[:, 1], "-o", c="tab:blue", ms=6, label="its Pareto front")
    for (label, pts), mk in zip(so_points.items(), ("s", "^")):
        if len(pts):
            ax.scatter(pts[:, 0], pts[:, 1], marker=mk, s=18, alpha=0.5, label=f"{label} campaign (single objective)")
            b = pts[np.argmax(pts[:, 0 if label == 'energy_cell' else 1])]
            ax.scatter([b[0]], [b[1]], marker="*", s=160, edgecolors="k", zorder=5, label=f"{label} optimum")
    ax.set_xlabel(f"volumetric energy density at {powers[0]:g} W [W.h.L-1]")
    ax.set_ylabel(f"volumetric energy density at {powers[1]:g} W [W.h.L-1]")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=6.5)
    ax.set_title("Energy vs power trade-off, 4680 cell", fontsize=9)
    fig.tight_layout()
    fig.savefig(out / f"{stem}_front.png")
    plt.close(fig)
    # hypervolume vs evaluations
    hv_mo = [hypervolume(Y[: k + 1], ref) for k in range(len(Y))]
    so_all = [v for _, v in sorted(order_so, key=lambda z: z[0])]
    hv_so = [hypervolume(np.array(so_all[: k + 1]), ref) for k in range(len(so_all))]
    fig, ax = plt.subplots(figsize=(5.2, 3.4), dpi=110)
    if hv_mo:
        ax.plot(np.arange(1, len(hv_mo) + 1), hv_mo, marker="o", ms=3, label="multi-objective (qLogNEHVI)")
    if hv_so:
        ax.plot(np.arange(1, len(hv_so) + 1), hv_so, marker="s", ms=3, label="two single-objective campaigns (interleaved)")
    ax.set_xlabel("evaluations")
    ax.set_ylabel("dominated hypervolume [(W.h.L-1)^2]")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out / f"{stem}_hypervolume.png")
    plt.close(fig)
    rows = ["| " + " | ".join([*[NICE.get(n, n) for n in names], f"VED {powers[0]:g} W", f"VED {powers[1]:g} W"]) + " |",
            "|" + "---|" * (len(names) + 2)]
    for k in np.flatnonzero(front)[np.argsort(-Y[front][:, 0])]:
        t = next(t for t in r.trials if t.index == idx[k])
        rows.append("| " + " | ".join([*design_row(t, names), f"{Y[k, 0]:.0f}", f"{Y[k, 1]:.0f}"]) + " |")
    n_so = sum(len(v) for v in so_points.values())
    L = ["## Pareto front", "", f"![front]({stem}_front.png)", "", *rows, "",
         "## Evaluations: one multi-objective campaign vs two single-objective campaigns", "",
         f"![hypervolume]({stem}_hypervolume.png)", "",
         f"- multi-objective: {len(Y)} completed evaluations, {int(front.sum())} Pareto-optimal designs, "
         f"hypervolume {hv_mo[-1] if hv_mo else 0:.4g} (reference point {ref}).",
         f"- single-objective (energy cell + power cell, {n_so} completed evaluations, each design re-simulated "
         f"at both powers from its stored metrics): hypervolume {hv_so[-1] if hv_so else 0:.4g}."]
    if hv_so and hv_mo:
        target = hv_so[-1]
        reach = next((k + 1 for k, h in enumerate(hv_mo) if h >= target), None)
        L.append(f"- the multi-objective campaign reaches the final hypervolume of both single-objective campaigns "
                 f"after {reach} evaluations." if reach else
                 f"- the multi-objective campaign reaches {100 * hv_mo[-1] / target:.0f}% of the single-objective "
                 "campaigns' final hypervolume.")
    return L


def write_report(cfg: DictConfig, study: str, runs: dict[str, Any],
                 load: Callable[[str], dict[str, Any]] | None = None) -> Path:
    """Write ``<report_dir>/<study>[-gpu].md`` and its PNGs; returns the Markdown path."""
    out = Path(str(cfg.report_dir))
    out.mkdir(parents=True, exist_ok=True)
    stem = study if str(cfg.profile) == "cpu" else f"{study}-{cfg.profile}"
    load = load or (lambda s: {})
    title = str(cfg.studies[study].title)
    L = [f"# {title}", "", "Generated by `microdesign case-study name=" + study + f" profile={cfg.profile}` "
         "(src/microdesign/case_studies/report.py). Numbers below are from the campaign files of this run.", "",
         "## Budget", "", *_budget_lines(cfg, runs), ""]
    runs = {k: v for k, v in runs.items() if v.trials}
    if not runs:
        L.append("No campaign file found: run the study first.")
    elif study == "cs1":
        L += _report_cs1(cfg, runs, out, stem)
    elif study == "cs2":
        L += _report_cs2(cfg, runs, out, stem)
    elif study == "cs3":
        L += _report_cs3(cfg, runs, out, stem, load)
    elif study == "pareto":
        L += _report_pareto(cfg, runs, out, stem, load)
    elif study == "robust":
        from microdesign.case_studies.robust import report as report_robust

        L += report_robust(cfg, runs, out, stem)
    notes = out / f"{stem}.notes.md"
    if notes.is_file():
        L += ["", notes.read_text()]
    path = out / f"{stem}.md"
    path.write_text("\n".join(L) + "\n")
    return path
