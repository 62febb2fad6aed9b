"""Robustness of one manufacturing design: tolerance windows, the objective's distribution, Sobol indices.

:func:`robustness_at` takes a design of ``design_space=manufacturing`` with its measured metrics (a
campaign trial) and the campaign's stages, and returns a :class:`Robustness`:

* the recommended settings with their tolerance windows (the process model's tolerances,
  ``conf/process``: normal -> nominal ± 2 standard deviations, uniform -> nominal ± half-width);
* the objective's quantity at every tolerance sample (Monte Carlo through the process chain, the
  local microstructure response model and the cell model, :mod:`microdesign.objective.robust`), its
  nominal value, mean, standard deviation, 5th percentile, yield against a specification and the
  share of samples that fail;
* Sobol indices (first and total order, SALib; Saltelli et al., Comput. Phys. Commun. 181 (2010)
  259) of the quantity with respect to each toleranced manufacturing input over its tolerance
  distribution (``dists`` norm/unif of ``SALib.sample.sobol``), evaluated with the same chain.

:func:`plot_histograms` and :func:`plot_sobol` draw the figures of the robust case study
(docs/manufacturing_campaigns.md).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from microdesign.errors import ConfigError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Robustness:
    """Tolerance analysis of one design (module docstring).

    Attributes:
        settings: the design (physical units).
        windows: toleranced input -> ``(low, nominal, high)`` in its unit (±2 std for normal, ± half-width
            for uniform tolerances).
        values: quantity per tolerance sample, shape ``n`` (failed samples hold the objective's ``failed_value``).
        failed: which samples failed, shape ``n``.
        nominal: the quantity at the nominal settings.
        specification: the yield's specification (quantity's unit), or None.
        sobol: input -> ``{"S1", "ST", "S1_conf", "ST_conf"}`` (empty if not computed).
        process: the nominal process outputs (``process_<name>``).
    """

    settings: dict[str, float]
    windows: dict[str, tuple[float, float, float]]
    values: np.ndarray
    failed: np.ndarray
    nominal: float
    specification: float | None = None
    sobol: dict[str, dict[str, float]] = field(default_factory=dict)
    process: dict[str, float] = field(default_factory=dict)

    @property
    def mean(self) -> float:
        return float(self.values.mean())

    @property
    def std(self) -> float:
        return float(self.values.std(ddof=1))

    @property
    def quantile_05(self) -> float:
        return float(np.quantile(self.values, 0.05))

    @property
    def failed_share(self) -> float:
        return float(self.failed.mean())

    @property
    def yield_share(self) -> float | None:
        """Share of samples at or above the specification (None without one)."""
        return None if self.specification is None else float(np.mean(self.values >= self.specification))


def tolerance_windows(process: Any, inputs: Mapping[str, float]) -> dict[str, tuple[float, float, float]]:
    """``(low, nominal, high)`` of each toleranced process input around ``inputs`` (module docstring)."""
    out = {}
    for name, tol in sorted(process.tolerances.items()):
        base = float(inputs[name]) if name in inputs else float(process.drying.dry_porosity(dict(inputs)))
        s = tol.spread(base) * (2.0 if tol.distribution == "normal" else 1.0)
        out[name] = (base - s, base, base + s)
    return out


def robustness_at(settings: Mapping[str, float], metrics: Any, evaluator: Any, objective: Any,
                  n_samples: int = 512, seed: int = 0, specification: float | None = None,
                  sobol_base_samples: int | None = 128) -> Robustness:
    """Tolerance analysis of one manufacturing design.

    Args:
        settings: the design (every parameter of the manufacturing design space).
        metrics: its measured ``MicrostructureMetrics`` (e.g. the trial's).
        evaluator: the campaign's ``TrialEvaluator`` with a ``design_map`` (cell model, thickness rule).
        objective: a :class:`~microdesign.objective.robust.RobustObjective` (quantity, local model,
            failure rules); its ``statistic`` does not matter here.
        n_samples: Monte Carlo samples of the tolerances.
        seed: seed of the draws and of the Sobol sequence.
        specification: for the yield (quantity's unit); None: the objective's own.
        sobol_base_samples: Saltelli base sample N (a power of 2; N·(k + 2) cell simulations, none with the
            objective's response surface, ``n_cell_simulations``, which predicts them); None: no Sobol.

    Raises:
        ConfigError: the evaluator has no design map, the design is refused by it, or the process
            model has no tolerances.
    """
    from microdesign.campaign.evaluate import ManufacturingContext

    dm = getattr(evaluator, "design_map", None)
    if dm is None:
        raise ConfigError("design_space", None, "design_space=manufacturing (a robustness analysis needs process settings)")
    design = dm.map(settings)
    ctx = ManufacturingContext(design, dm, evaluator.cell.simulate,
                               lambda ml, m: evaluator.thickness_m({evaluator.mass_loading_name: float(ml)}, m), int(seed))
    nominal_cell = evaluator.cell.simulate(metrics, ctx.thickness_m(design.mass_loading_mg_cm2, metrics))
    nominal = objective._read(nominal_cell)
    y, failed = objective.sample_values(dm.sample(design, int(n_samples), int(seed)), metrics, ctx)
    sobol = {} if sobol_base_samples is None else _sobol(dm, design, metrics, ctx, objective, int(sobol_base_samples), int(seed))
    spec = objective.specification if specification is None else float(specification)
    return Robustness(dict(design.settings), tolerance_windows(dm.process, design.process_inputs), y, failed,
                      float("nan") if nominal is None else float(nominal), spec, sobol, design.extra())


def _sobol(dm: Any, design: Any, metrics: Any, ctx: Any, objective: Any, n_base: int, seed: int) -> dict[str, dict[str, float]]:
    """Sobol indices of the quantity w.r.t. each toleranced input over its tolerance distribution (SALib)."""
    from SALib.analyze import sobol as sobol_analyze
    from SALib.sample import sobol as sobol_sample

    if n_base < 2 or n_base & (n_base - 1):
        raise ConfigError("sobol_base_samples", n_base, "a power of 2 (Saltelli/Sobol sampling)", "robustness")
    base = dict(design.process_inputs)
    if "dry_porosity" in dm.process.tolerances and "dry_porosity" not in base:
        base["dry_porosity"] = float(dm.process.drying.dry_porosity(base))
    names = sorted(dm.process.tolerances)
    bounds, dists = [], []
    for n in names:
        tol = dm.process.tolerances[n]
        s = tol.spread(float(base[n]))
        if tol.distribution == "normal":
            bounds.append([float(base[n]), max(s, 1e-300)])
            dists.append("norm")
        else:
            bounds.append([float(base[n]) - s, float(base[n]) + max(s, 1e-300)])
            dists.append("unif")
    problem = {"num_vars": len(names), "names": names, "bounds": bounds, "dists": dists}
    X = sobol_sample.sample(problem, n_base, calc_second_order=False, seed=seed)
    inputs = {**base, **{n: X[:, i] for i, n in enumerate(names)}}
    # with a response surface (objective.n_cell_simulations) the one fitted to the Monte Carlo draws
    # predicts the Saltelli samples too: the Sobol indices cost no further cell simulation
    y, _ = objective.sample_values(dm.outputs(inputs), metrics, ctx, surface=getattr(objective, "last_surface", None))
    if np.ptp(y) == 0:
        return {n: {"S1": float("nan"), "ST": float("nan"), "S1_conf": float("nan"), "ST_conf": float("nan")}
                for n in names}
    res = sobol_analyze.analyze(problem, y, calc_second_order=False, seed=seed)
    return {n: {k: float(res[k][i]) for k in ("S1", "ST", "S1_conf", "ST_conf")} for i, n in enumerate(names)}


def plot_histograms(results: Mapping[str, Robustness], path: str | Path, xlabel: str, dpi: int = 110) -> Path:
    """Overlaid histograms of the quantity under tolerances, one per labelled design (failed samples
    counted in the legend, not drawn); the nominal values and the specification as vertical lines."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.8, 3.6), dpi=dpi)
    ok_all = np.concatenate([r.values[~r.failed] for r in results.values()] or [np.zeros(1)])
    bins = np.linspace(ok_all.min(), ok_all.max(), 40) if np.ptp(ok_all) > 0 else 10
    for (label, r), colour in zip(results.items(), ("C0", "C1", "C2", "C3")):
        ax.hist(r.values[~r.failed], bins=bins, alpha=0.5, color=colour,
                label=f"{label} ({100 * r.failed_share:.1f} % of samples fail)")
        ax.axvline(r.nominal, color=colour, lw=1.2, ls="--")
    spec = next((r.specification for r in results.values() if r.specification is not None), None)
    if spec is not None:
        ax.axvline(spec, color="k", lw=0.8, ls=":", label=f"specification {spec:.0f}")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("tolerance samples")
    ax.set_title("Objective under manufacturing tolerances (dashed: nominal)", fontsize=9)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return Path(path)


def plot_sobol(results: Mapping[str, Robustness], path: str | Path, dpi: int = 110) -> Path:
    """Total-order Sobol indices (with 95 % bootstrap bars) of each toleranced input, one bar group per design."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = [k for k, r in results.items() if r.sobol]
    names: Sequence[str] = sorted({n for k in labels for n in results[k].sobol})
    fig, ax = plt.subplots(figsize=(5.8, 3.4), dpi=dpi)
    w = 0.8 / max(len(labels), 1)
    x = np.arange(len(names))
    for j, k in enumerate(labels):
        s = results[k].sobol
        ax.bar(x + j * w, [s[n]["ST"] for n in names], w, yerr=[s[n]["ST_conf"] for n in names], label=k, capsize=2)
    ax.set_xticks(x + w * (len(labels) - 1) / 2, names, rotation=20, fontsize=7)
    ax.set_ylabel("total-order Sobol index")
    ax.set_title("Which tolerance drives the spread of the objective", fontsize=9)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return Path(path)
