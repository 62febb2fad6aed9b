"""The robust case study: nominal vs robust optimum of the CS3 energy cell over manufacturing settings.

Two campaigns over ``design_space=manufacturing`` (conf/case_study.yaml, ``studies.robust``): one
maximises the nominal volumetric energy density at 10 W, the other its 5th percentile under the
process tolerances (``objective=robust_energy``). The report re-evaluates both optima under the same
tolerances with the campaigns' own cell model and the trials' stored metrics
(:func:`microdesign.analysis.robustness.robustness_at`; no generator or characterisation runs):
recommended settings with their tolerance windows, nominal value, 5th percentile, yield against a
specification (a fraction of the nominal optimum's nominal value), share of samples that fail, a
histogram of the objective under tolerances and its Sobol indices per manufacturing input.
"""

from __future__ import annotations

import logging
import math
from dataclasses import replace
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

log = logging.getLogger(__name__)


def analyse(run: Any, analysis: DictConfig, specification: float | None) -> Any:
    """Robustness of a campaign's optimum (:class:`~microdesign.analysis.robustness.Robustness`), or None."""
    from microdesign.analysis.robustness import robustness_at
    from microdesign.campaign.build import build_evaluator, instantiate

    best = run.optimum()
    if best is None or best.metrics is None:
        return None
    cfg = run.config
    node = OmegaConf.to_container(cfg.objective, resolve=True)
    node["n_cell_simulations"] = analysis.get("n_cell_simulations")
    node["statistic"] = "nominal"  # the analysis computes every statistic itself
    objective = instantiate(OmegaConf.create(node), "objective")
    evaluator = build_evaluator(cfg, objective=objective)
    return robustness_at(best.inputs, best.metrics, evaluator, objective, n_samples=int(analysis.n_samples),
                         seed=int(cfg.seed), specification=specification,
                         sobol_base_samples=analysis.get("sobol_base_samples"))


def report(cfg: DictConfig, runs: dict[str, Any], out: Path, stem: str) -> list[str]:
    """Markdown lines of the robust study's report (and its PNGs in ``out``)."""
    from microdesign.analysis.robustness import plot_histograms, plot_sobol
    from microdesign.case_studies.report import _convergence_plot, _optimum_table

    spec_cfg = cfg.studies.robust.analysis
    unit = "W.h.L-1"
    _convergence_plot(runs, out / f"{stem}_convergence.png", unit, "Robust study: convergence (each its own objective)")
    L = ["## Optima found", "", "Each campaign's value is its own objective: the nominal energy density, or its "
         f"{100 * float(OmegaConf.select(runs['robust'].config, 'objective.quantile_level', default=0.05)):g}th "
         "percentile under tolerances." if "robust" in runs else "", "", *_optimum_table(runs, unit), "",
         f"![convergence]({stem}_convergence.png)", ""]
    results: dict[str, Any] = {}
    spec = None
    for label in ("nominal", "robust"):
        if label not in runs:
            continue
        results[label] = analyse(runs[label], spec_cfg, spec)
        if label == "nominal" and results[label] is not None:  # the yield's specification follows from it
            spec = float(spec_cfg.specification_fraction) * results[label].nominal
            results[label] = replace(results[label], specification=spec)
    results = {k: v for k, v in results.items() if v is not None}
    if not results:
        return L + ["(no completed optimum to analyse)"]
    plot_histograms(results, out / f"{stem}_histogram.png", f"volumetric energy density at 10 W [{unit}]")
    if any(r.sobol for r in results.values()):
        plot_sobol(results, out / f"{stem}_sobol.png")
    labels = list(results)
    row = lambda name, f: f"| {name} | " + " | ".join(f(results[k]) for k in labels) + " |"  # noqa: E731
    n = next(iter(results.values())).values.size
    L += ["## Nominal and robust optimum under the tolerances", "",
          f"{n} Monte Carlo samples of the tolerances of conf/process (`design_space.process.tolerances`) per "
          "optimum, through the process chain, the local microstructure response model around the trial's "
          "measured metrics and the campaign's cell model (docs/manufacturing_campaigns.md)"
          + (f"; specification for the yield: {spec:.0f} {unit} "
             f"({100 * float(spec_cfg.specification_fraction):g} % of the nominal optimum's nominal value)."
             if spec is not None else "."), "",
          "| | " + " | ".join(labels) + " |", "|---|" + "---|" * len(labels)]
    names = list(next(iter(results.values())).settings)
    for name in names:
        L.append(row(name, lambda r, n=name: f"{r.settings[n]:.4g}"))
    L += [row("nominal [W.h.L-1]", lambda r: f"{r.nominal:.1f}"),
          row("mean [W.h.L-1]", lambda r: f"{r.mean:.1f}"),
          row("std [W.h.L-1]", lambda r: f"{r.std:.2f}"),
          row("5th percentile [W.h.L-1]", lambda r: f"{r.quantile_05:.1f}"),
          row("yield (share >= specification)", lambda r: "—" if r.yield_share is None else f"{r.yield_share:.3f}"),
          row("share of samples that fail", lambda r: f"{r.failed_share:.3f}"),
          row("calendered porosity", lambda r: f"{r.process.get('process_porosity', math.nan):.3f}"),
          row("cathode thickness [µm]", lambda r: f"{1e6 * r.process.get('process_thickness_m', math.nan):.1f}"), "",
          f"![histogram]({stem}_histogram.png)", "", "## Tolerance windows of the recommended settings", "",
          "Normal tolerances: nominal ± 2 standard deviations; uniform: nominal ± half-width.", "",
          "| input | " + " | ".join(labels) + " |", "|---|" + "---|" * len(labels)]
    for name in next(iter(results.values())).windows:
        L.append(row(name, lambda r, n=name: "{:.4g} – {:.4g} (nominal {:.4g})".format(
            r.windows[n][0], r.windows[n][2], r.windows[n][1])))
    if any(r.sobol for r in results.values()):
        L += ["", "## Sobol indices of the energy density at each optimum (SALib)", "",
              "First-order S1 and total-order ST with 95 % bootstrap half-widths, over the tolerance distributions.", "",
              "| input | " + " | ".join(f"{k}: S1 | {k}: ST" for k in labels) + " |",
              "|---|" + "---|---|" * len(labels)]
        for name in next(iter(results.values())).sobol:
            L.append(f"| {name} | " + " | ".join(
                "{S1:.2f} ± {S1_conf:.2f} | {ST:.2f} ± {ST_conf:.2f}".format(**results[k].sobol[name]) for k in labels) + " |")
        L += ["", f"![sobol]({stem}_sobol.png)"]
    return L
