"""Robust objectives: a cell quantity under manufacturing tolerances (docs/manufacturing_campaigns.md).

For one design of ``design_space=manufacturing`` the process model's tolerances
(``design_space.process.tolerances``, ``conf/process``) are propagated by Monte Carlo through the
process chain (:meth:`~microdesign.design.manufacturing.ManufacturingDesign.sample`): each sample
has its own porosity, phase fractions and dry loading. The cell model runs once per sample; the
generator and the characterisation do not. The sample's microstructure comes from the design's
*measured* metrics moved by a local response model:

* porosity, AM and CBD volume fractions: the measured means shifted by the sample's process drift
  (``ε = ε_meas + (ε_i − ε_nom)``; the same for X_AM and X_CBD);
* tortuosity factors (through-plane and in-plane): Bruggeman-type scaling around the measured point,
  ``τ = τ_meas (ε/ε_meas)^(−α)``, α = 0.5 (Bruggeman's b = 1.5, ``τ = ε^(1−b)``; Tjaden et al.,
  Curr. Opin. Chem. Eng. 12 (2016) 44);
* AM specific surface areas: proportional to the AM volume fraction (same particle size, more
  particles), ``a = a_meas X_AM/X_AM,meas``;
* solid electronic conductivity: ``σ = σ_meas (X_CBD/X_CBD,meas)^t``, t = 1.5 (power law of the
  conducting phase's volume fraction above percolation; the exponent of the analytic stages,
  :mod:`microdesign.campaign.stubs`; fit it to the generator if needed).

Why a local model and not the generator per sample: the tolerances move porosity by about ±0.01
and the fractions by less, so the response is anchored at the measured point and only its small
deviations are modelled; an error δα in the exponent changes τ by ``δα·Δε/ε`` ≈ 1 %·δα, well below
the characterisation CI. Running the generator and the characterisation for every one of hundreds
of samples would multiply the cost of an evaluation by that number; the cell model per sample costs
``n_samples`` cell simulations (milliseconds on the analytic stages; the DFN model is the dominant
cost then, see the benchmark in docs/manufacturing_campaigns.md).

Statistics of the per-sample quantity ``y`` (in the direction the optimiser maximises):

* ``nominal``: the quantity at the nominal settings (no sampling; the plain objective);
* ``mean``; ``quantile`` (``quantile_level``, e.g. 0.05: the 5th percentile);
* ``mean_minus_k_std``: ``mean − k·std``;
* ``yield``: share of samples at or above ``specification`` (in the quantity's unit).

A sample fails when its cell fails, or (``out_of_bounds: fail``) when its mapped porosity or AM
weight fraction leaves the generator's training bounds (a structure nobody validated); it enters
the statistics with ``failed_value`` (0 W.h.L-1 by default: scrap) and counts as out of
specification. Noise given to the GP: the Monte Carlo standard error of the statistic (bootstrap,
``n_bootstrap`` resamples; Efron & Tibshirani 1993) plus the characterisation noise of the nominal
value carried to the statistic by shifting every sample by ± one standard deviation
(``((S(y + s) − S(y − s))/2)²``, exact for mean and quantiles).
"""

from __future__ import annotations

import logging
import math
from typing import Any

import numpy as np

from microdesign.errors import ConfigError
from microdesign.objective.noise import Resimulate
from microdesign.objective.scalar import CellQuantity, ObjectiveValue

log = logging.getLogger(__name__)

STATISTICS = ("nominal", "mean", "quantile", "mean_minus_k_std", "yield")


def statistic(y: np.ndarray, kind: str, quantile_level: float = 0.05, k: float = 1.0,
              specification: float | None = None) -> float:
    """One robust statistic of samples ``y`` (shape ``n``; maximised scale).

    Raises:
        ConfigError: an unknown statistic, or ``yield`` without a specification.
    """
    y = np.asarray(y, float)
    if kind == "mean":
        return float(y.mean())
    if kind == "quantile":
        return float(np.quantile(y, quantile_level))
    if kind == "mean_minus_k_std":
        return float(y.mean() - k * y.std(ddof=1))
    if kind == "yield":
        if specification is None:
            raise ConfigError("objective.specification", None, "a specification value for statistic=yield")
        return float(np.mean(y >= specification))
    raise ConfigError("objective.statistic", kind, f"one of {STATISTICS[1:]} for samples")


class RobustObjective(CellQuantity):
    """A :class:`~microdesign.objective.CellQuantity` under manufacturing tolerances (module docstring).

    Args:
        statistic: one of :data:`STATISTICS`.
        quantile_level: for ``quantile`` (0.05: the 5th percentile).
        k: for ``mean_minus_k_std``.
        specification: for ``yield`` and the yield in the summary, in the quantity's unit
            (e.g. 600 W.h.L-1); None: no yield.
        n_samples: tolerance samples (cell simulations) per design.
        n_bootstrap: bootstrap resamples for the statistic's standard error.
        tortuosity_exponent: α of ``τ ∝ ε^(−α)`` (0.5, Bruggeman).
        conductivity_exponent: t of ``σ ∝ X_CBD^t`` (1.5).
        out_of_bounds: ``"fail"`` (a sample outside the generator's training bounds fails) or
            ``"extrapolate"`` (the local model is used there too).
        failed_value: the quantity of a failed sample, in its unit (0.0).
        n_cell_simulations: None: the cell model runs for every sample; else for this many samples
            (evenly spread over the draws) and a linear response surface in porosity, AM and CBD
            volume fractions and dry loading, fitted by least squares to them, predicts the others
            (for slow cell models: a DFN geometry change costs a model build). Its mean prediction
            variance ``σ²_res p/m`` joins the noise; a cell failure among the predicted samples is
            not seen.
        **kwargs: :class:`~microdesign.objective.CellQuantity` arguments (quantity, unit, label,
            direction, noise, metrics, fixed_variance, on_failure, penalty).

    Attributes:
        last_surrogate_variance: the response surface's mean prediction variance of the last
            :meth:`sample_values` call (0 when every sample was simulated) [unit²].
        last_surface: that response surface ``(coefficients, input means, input stds)``, or None.

    Raises:
        ConfigError: an unknown statistic or out-of-bounds policy, a quantile level outside (0, 1),
            ``yield`` without a specification, fewer than 8 samples or cell simulations, a negative
            k or exponent.
    """

    uses_manufacturing = True

    def __init__(self, statistic: str = "quantile", quantile_level: float = 0.05, k: float = 1.0,
                 specification: float | None = None, n_samples: int = 256, n_bootstrap: int = 200,
                 tortuosity_exponent: float = 0.5, conductivity_exponent: float = 1.5,
                 out_of_bounds: str = "fail", failed_value: float = 0.0, n_cell_simulations: int | None = None,
                 **kwargs: Any):
        if statistic not in STATISTICS:
            raise ConfigError("objective.statistic", statistic, f"one of {STATISTICS}")
        if not 0 < float(quantile_level) < 1:
            raise ConfigError("objective.quantile_level", quantile_level, "a level in (0, 1)")
        if statistic == "yield" and specification is None:
            raise ConfigError("objective.specification", None, "a specification value (quantity's unit) for statistic=yield")
        if int(n_samples) < 8:
            raise ConfigError("objective.n_samples", n_samples, "an integer >= 8")
        for name, v in (("k", k), ("tortuosity_exponent", tortuosity_exponent),
                        ("conductivity_exponent", conductivity_exponent)):
            if not (math.isfinite(float(v)) and float(v) >= 0):
                raise ConfigError(f"objective.{name}", v, "a finite number >= 0")
        if n_cell_simulations is not None and int(n_cell_simulations) < 8:
            raise ConfigError("objective.n_cell_simulations", n_cell_simulations, "an integer >= 8, or null (every sample)")
        if out_of_bounds not in ("fail", "extrapolate"):
            raise ConfigError("objective.out_of_bounds", out_of_bounds, "'fail' or 'extrapolate'")
        base_label = kwargs.pop("label", None)
        super().__init__(**kwargs)
        self.base_name = base_label or self.quantity
        self.statistic, self.quantile_level, self.k = statistic, float(quantile_level), float(k)
        self.specification = None if specification is None else float(specification)
        self.n_samples, self.n_bootstrap = int(n_samples), int(n_bootstrap)
        self.alpha, self.t = float(tortuosity_exponent), float(conductivity_exponent)
        self.out_of_bounds, self.failed_value = out_of_bounds, float(failed_value)
        self.n_cell_simulations = None if n_cell_simulations is None else int(n_cell_simulations)
        self.last_surrogate_variance = 0.0
        self.last_surface: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
        self.name = {"nominal": self.base_name, "mean": f"mean {self.base_name}",
                     "quantile": f"{100 * self.quantile_level:g}th percentile {self.base_name}",
                     "mean_minus_k_std": f"mean - {self.k:g} std {self.base_name}",
                     "yield": f"yield at {self.base_name} >= {self.specification:g} {self.unit}"
                     if self.specification is not None else ""}[statistic]
        if statistic == "yield":
            self.unit = "1"

    # ------------------------------------------------------------------ evaluation
    def evaluate(self, cell: Any, metrics: Any, resimulate: Resimulate | None = None,
                 manufacturing: Any = None) -> ObjectiveValue:
        """The robust statistic of one design and its noise variance.

        Args:
            cell, metrics, resimulate: as :meth:`CellQuantity.evaluate` (the nominal value and its noise).
            manufacturing: the evaluator's ``ManufacturingContext``; required unless ``statistic`` is
                ``nominal``.

        Returns:
            ``ObjectiveValue`` with ``summary``: ``nominal``, ``mean``, ``std``, ``quantile_05``,
            ``yield`` (with a specification), ``failed_share``, ``n_samples``, ``mc_standard_error``.
            ``failed`` if the nominal cell failed or the tolerance samples could not be drawn.
        """
        base = super().evaluate(cell, metrics, resimulate)
        if not base.ok or self.statistic == "nominal":
            return base
        if manufacturing is None:
            return ObjectiveValue.failed(f"objective: statistic={self.statistic} needs design_space=manufacturing "
                                         "(process settings with tolerances)")
        try:
            y, failed = self.tolerance_samples(metrics, manufacturing)
        except ConfigError as exc:
            return ObjectiveValue.failed(f"objective: tolerance samples: {exc}")
        s = self.sign
        v = s * y  # maximised scale
        spec = None if self.specification is None else s * self.specification
        stat = statistic(v, self.statistic, self.quantile_level, self.k, spec)
        mc_var = self.bootstrap_variance(v, spec, seed=int(manufacturing.seed)) + self.last_surrogate_variance
        sd = math.sqrt(base.variance)
        char = ((statistic(v + sd, self.statistic, self.quantile_level, self.k, spec)
                 - statistic(v - sd, self.statistic, self.quantile_level, self.k, spec)) / 2.0) ** 2
        summary = {"nominal": base.raw_value, "mean": float(y.mean()), "std": float(y.std(ddof=1)),
                   "quantile_05": float(s * np.quantile(v, 0.05)), "failed_share": float(failed.mean()),
                   "n_samples": float(y.size), "mc_standard_error": math.sqrt(mc_var)}
        if spec is not None:
            summary["yield"] = float(np.mean(v >= spec))
        raw = stat if self.statistic == "yield" else s * stat
        return ObjectiveValue("ok", stat, raw, float(char + mc_var), None, base.sensitivities,
                              base.noise_left_out, summary)

    def bootstrap_variance(self, v: np.ndarray, spec: float | None, seed: int = 0) -> float:
        """Bootstrap variance of the statistic of samples ``v`` (maximised scale); for ``mean`` the
        analytic ``s²/n``, for ``yield`` the binomial ``p(1 − p)/n`` floored at ``1/n²`` (never zero)."""
        n = v.size
        if self.statistic == "mean":
            return float(v.var(ddof=1) / n)
        if self.statistic == "yield":
            p = float(np.mean(v >= spec))
            return max(p * (1 - p), 1.0 / n) / n
        rng = np.random.default_rng([int(seed), 11])
        idx = rng.integers(0, n, size=(self.n_bootstrap, n))
        stats = [statistic(v[i], self.statistic, self.quantile_level, self.k, spec) for i in idx]
        return float(np.var(stats, ddof=1))

    def tolerance_samples(self, metrics: Any, ctx: Any) -> tuple[np.ndarray, np.ndarray]:
        """The quantity (raw unit) of each tolerance sample and which samples failed.

        Args:
            metrics: the design's measured ``MicrostructureMetrics``.
            ctx: the evaluator's ``ManufacturingContext``.

        Returns:
            ``(y, failed)``, each shape ``n_samples``; failed samples hold ``failed_value``.

        Raises:
            ConfigError: the process model has no tolerances or refuses a sampled value.
        """
        return self.sample_values(ctx.design_map.sample(ctx.design, self.n_samples, seed=int(ctx.seed)), metrics, ctx)

    def sample_values(self, smp: dict[str, np.ndarray], metrics: Any, ctx: Any,
                      surface: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The quantity (raw unit) of process-output samples ``smp`` (name -> array ``n``, as
        :meth:`~microdesign.design.manufacturing.ManufacturingDesign.sample` returns) and which failed.

        Args:
            smp: process outputs per sample (``porosity``, ``am_volume_fraction``, ``cbd_volume_fraction``,
                ``dry_loading_mg_cm2``, ``generator_am_weight_fraction``).
            metrics: the design's measured ``MicrostructureMetrics``.
            ctx: the evaluator's ``ManufacturingContext`` (the nominal outputs are ``ctx.design.outputs``).
            surface: a response surface fitted before (:attr:`last_surface`) to predict every sample
                with, no cell simulation (the Sobol analysis of :mod:`microdesign.analysis.robustness`).

        Returns:
            ``(y, failed)``, each shape ``n``; failed samples hold ``failed_value``.
        """
        dm = ctx.design_map
        n = int(np.size(smp["porosity"]))
        failed = np.zeros(n, bool)
        if self.out_of_bounds == "fail" and dm.training_bounds:
            for name, key in (("porosity", "porosity"), ("am_weight_fraction", "generator_am_weight_fraction")):
                if name in dm.training_bounds:
                    lo, hi = dm.training_bounds[name]
                    failed |= (smp[key] < lo) | (smp[key] > hi)
        y = np.full(n, self.failed_value)
        todo = np.flatnonzero(~failed)
        if surface is not None:
            coef, mu, sd = surface
            y[todo] = (_features(smp, mu, sd) @ coef)[todo]
            return y, failed
        self.last_surrogate_variance, self.last_surface = 0.0, None
        m = self.n_cell_simulations
        if m is not None and todo.size > m:  # cell model on a subsample, a linear response surface for the rest
            sub = todo[np.linspace(0, todo.size - 1, m).round().astype(int)]
            y_sub, f_sub = self._simulate(smp, sub, metrics, ctx)
            ok = sub[~f_sub]
            mu, sd = _centring(smp)
            X = _features(smp, mu, sd)
            p = X.shape[1]
            if ok.size < p + 2:
                raise ConfigError("objective.n_cell_simulations", m, f"enough successful simulations for the "
                                  f"response surface (> {p + 1}; {ok.size} succeeded)")
            coef, *_ = np.linalg.lstsq(X[ok], y_sub[~f_sub], rcond=None)
            resid = y_sub[~f_sub] - X[ok] @ coef
            s2 = float(resid @ resid) / max(ok.size - p, 1)
            self.last_surrogate_variance = s2 * p / ok.size  # mean OLS prediction variance at the fitted points
            self.last_surface = (coef, mu, sd)
            y[todo] = X[todo] @ coef
            y[ok] = y_sub[~f_sub]
            failed[sub[f_sub]] = True
            y[sub[f_sub]] = self.failed_value
            return y, failed
        y_all, f_all = self._simulate(smp, todo, metrics, ctx)
        y[todo] = np.where(f_all, self.failed_value, y_all)
        failed[todo] = f_all
        return y, failed

    def _simulate(self, smp: dict[str, np.ndarray], idx: np.ndarray, metrics: Any, ctx: Any
                  ) -> tuple[np.ndarray, np.ndarray]:
        """The cell model at the samples ``idx``: ``(values, failed)`` each of ``idx``'s length."""
        nom = ctx.design.outputs
        y = np.full(idx.size, self.failed_value)
        failed = np.zeros(idx.size, bool)
        for j, i in enumerate(idx):
            try:
                m = local_metrics(metrics, nom, {k: float(smp[k][i]) for k in
                                                 ("porosity", "am_volume_fraction", "cbd_volume_fraction")},
                                  self.alpha, self.t)
                value = self._read(ctx.simulate(m, ctx.thickness_m(float(smp["dry_loading_mg_cm2"][i]), m)))
            except Exception as exc:  # noqa: BLE001 - a failing sample is a failed part, not a failed design
                log.debug("tolerance sample %d failed: %s", i, exc)
                value = None
            if value is None:
                failed[j] = True
            else:
                y[j] = value
        return y, failed


_SURFACE_INPUTS = ("porosity", "am_volume_fraction", "cbd_volume_fraction", "dry_loading_mg_cm2")


def _centring(smp: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard deviation (1 where constant) of the response surface's inputs over the samples."""
    X = np.column_stack([np.asarray(smp[k], float) for k in _SURFACE_INPUTS])
    sd = X.std(0)
    return X.mean(0), np.where(sd > 0, sd, 1.0)


def _features(smp: dict[str, np.ndarray], mu: np.ndarray, sd: np.ndarray) -> np.ndarray:
    """Design matrix ``n x 5`` of the response surface: 1 and the standardised process outputs that reach the cell."""
    X = np.column_stack([np.asarray(smp[k], float) for k in _SURFACE_INPUTS])
    return np.column_stack([np.ones(X.shape[0]), (X - mu) / sd])


def local_metrics(metrics: Any, nominal: dict[str, float], sample: dict[str, float], tortuosity_exponent: float = 0.5,
                  conductivity_exponent: float = 1.5) -> Any:
    """The measured metrics moved to one tolerance sample by the local response model (module docstring).

    Args:
        metrics: measured ``MicrostructureMetrics`` at the nominal settings.
        nominal, sample: process outputs ``porosity``, ``am_volume_fraction``, ``cbd_volume_fraction``
            at the nominal settings and at the sample.
        tortuosity_exponent: α in ``τ ∝ ε^(−α)``.
        conductivity_exponent: t in ``σ ∝ X_CBD^t``.

    Returns:
        A ``MicrostructureMetrics`` with the moved means (per-cube values shifted alike).

    Raises:
        ConfigError: a moved porosity or fraction outside (0, 1).
    """
    from microdesign.characterise.metrics import (AM_VOLUME_FRACTION, CBD_VOLUME_FRACTION, CONDUCTIVITY_SOLID,
                                                  POROSITY, SSA_AM_CBD, SSA_AM_PORE, TORTUOSITY_IN_PLANE,
                                                  TORTUOSITY_THROUGH_PLANE)
    from microdesign.objective.noise import perturbed

    est = metrics.estimates
    out = metrics
    new: dict[str, float] = {}
    for key, name in ((POROSITY, "porosity"), (AM_VOLUME_FRACTION, "am_volume_fraction"),
                      (CBD_VOLUME_FRACTION, "cbd_volume_fraction")):
        if key in est:
            new[key] = est[key].mean + (sample[name] - nominal[name])
            if not 0 < new[key] < 1:
                raise ConfigError(key, new[key], "a volume fraction in (0, 1) after the tolerance drift", "local model")
    ratio = {}
    if POROSITY in est:
        ratio["eps"] = new[POROSITY] / est[POROSITY].mean
    if AM_VOLUME_FRACTION in est:
        ratio["am"] = new[AM_VOLUME_FRACTION] / est[AM_VOLUME_FRACTION].mean
    if CBD_VOLUME_FRACTION in est:
        ratio["cbd"] = new[CBD_VOLUME_FRACTION] / est[CBD_VOLUME_FRACTION].mean
    for key in (TORTUOSITY_THROUGH_PLANE, TORTUOSITY_IN_PLANE):
        if key in est and "eps" in ratio:
            new[key] = est[key].mean * ratio["eps"] ** (-tortuosity_exponent)
    for key in (SSA_AM_PORE, SSA_AM_CBD):
        if key in est and "am" in ratio:
            new[key] = est[key].mean * ratio["am"]
    if CONDUCTIVITY_SOLID in est and "cbd" in ratio:
        new[CONDUCTIVITY_SOLID] = est[CONDUCTIVITY_SOLID].mean * ratio["cbd"] ** conductivity_exponent
    for key, value in new.items():
        out = perturbed(out, key, value)
    return out
