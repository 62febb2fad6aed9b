"""Result types of the characterisation stage.

These are the contract between characterisation, the cell model and the campaign: a
:class:`MicrostructureMetrics` holds one :class:`MetricEstimate` per metric, keyed by the metric's
standard name with its unit in brackets (PyBaMM style).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any, Final

import numpy as np
from scipy import stats

# Metric keys (units in the key, PyBaMM style).
POROSITY: Final = "Porosity"
AM_VOLUME_FRACTION: Final = "Active material volume fraction"
CBD_VOLUME_FRACTION: Final = "Carbon-binder domain volume fraction"
SSA_AM_PORE: Final = "Specific surface area active material-pore [m-1]"
SSA_AM_CBD: Final = "Specific surface area active material-CBD [m-1]"
TORTUOSITY_THROUGH_PLANE: Final = "Pore tortuosity factor through-plane"
TORTUOSITY_IN_PLANE: Final = "Pore tortuosity factor in-plane"
CONDUCTIVITY_SOLID: Final = "Effective electronic conductivity of the solid [S.m-1]"
#: Share of the characterised cubes whose pore network spans axis 0 (per-cube values 1 or 0; the mean is
#: the share). The pore tortuosity factors are estimated over the percolating cubes only.
PORE_PERCOLATING_FRACTION: Final = "Pore percolating fraction through-plane"
#: Share of the characterised cubes whose solid (AM + CBD) network spans axis 0 (per-cube values 1 or 0). A
#: cube whose solid does not span conducts nothing through-plane: its solid conductivity is 0 S/m.
SOLID_PERCOLATING_FRACTION: Final = "Solid percolating fraction through-plane"
#: The percolating fractions: feasibility shares judged against ``min_percolating_fraction``, not
#: cell-model inputs and not metrics with a CI target.
PERCOLATING_FRACTIONS: Final = (PORE_PERCOLATING_FRACTION, SOLID_PERCOLATING_FRACTION)

#: Estimators of a metric from its per-cube values (:class:`MetricEstimate`).
ESTIMATORS: Final = ("mean", "transport_averaged")

REQUIRED_METRICS: Final = (
    POROSITY,
    AM_VOLUME_FRACTION,
    CBD_VOLUME_FRACTION,
    SSA_AM_PORE,
    SSA_AM_CBD,
    TORTUOSITY_THROUGH_PLANE,
    CONDUCTIVITY_SOLID,
)


@dataclass(frozen=True)
class MetricEstimate:
    """One metric measured over ``n`` cubes.

    Two estimators (:data:`ESTIMATORS`) of the metric from its per-cube values:

    * ``"mean"`` (every metric by default): the sample mean, :meth:`from_values`.
    * ``"transport_averaged"`` (pore tortuosity factors, :meth:`transport_averaged`): the τ whose
      ε/τ is the mean effective transport of the cubes, ``mean(ε) / mean(ε/τ)`` (the ε-weighted
      harmonic mean of τ), a ratio of two means; its CI is the delta-method (linearisation)
      interval of a ratio estimator (Cochran, Sampling Techniques, 3rd ed., Wiley 1977, §6.3-6.4,
      eqs. 6.9 and 6.13, no finite-population correction).

    Attributes:
        name: metric key with unit, e.g. ``"Specific surface area active material-pore [m-1]"``.
        values: per-cube values, shape ``n``.
        mean: the estimate: sample mean, or for ``"transport_averaged"`` ``sum(weights) / sum(weights / values)``.
            Stored as measured, never recomputed from ``values`` on reading.
        std: sample standard deviation (ddof=1; 0 for a single cube) of the per-cube values, or for
            ``"transport_averaged"`` of their linearised values (:meth:`linearised_values`), so that
            ``std / sqrt(n)`` is the estimate's standard error in both cases.
        ci95_half_width: half-width of the two-sided 95% confidence interval of the estimate,
            Student t with ``n - 1`` degrees of freedom times ``std / sqrt(n)`` (inf for a single cube).
        estimator: ``"mean"`` or ``"transport_averaged"``.
        weights: per-cube weights of ``"transport_averaged"`` (the cubes' porosities ε, shape ``n``);
            None for ``"mean"``.
    """

    name: str
    values: np.ndarray
    mean: float
    std: float
    ci95_half_width: float
    estimator: str = "mean"
    weights: np.ndarray | None = None

    @classmethod
    def from_values(cls, name: str, values: np.ndarray | list[float]) -> MetricEstimate:
        """Summarise per-cube values (shape ``n``, all finite).

        Raises:
            ValueError: ``values`` is empty or holds a non-finite number.
        """
        v = np.asarray(values, dtype=np.float64).reshape(-1)
        if v.size == 0 or not np.all(np.isfinite(v)):
            raise ValueError(f"{name}: per-cube values must be non-empty and finite, got {v!r}")
        n = v.size
        std = float(v.std(ddof=1)) if n > 1 else 0.0
        half = float(stats.t.ppf(0.975, n - 1) * std / np.sqrt(n)) if n > 1 else float("inf")
        return cls(name=name, values=v, mean=float(v.mean()), std=std, ci95_half_width=half)

    @classmethod
    def transport_averaged(cls, name: str, tau: np.ndarray | list[float],
                           porosity: np.ndarray | list[float]) -> MetricEstimate:
        """The transport-averaged pore tortuosity factor of ``n`` cubes, ``R = mean(ε) / mean(ε/τ)``.

        ``ε/τ`` is a cube's relative effective diffusivity ``D_eff/D`` (TauFactor's definition of τ,
        Cooper et al., SoftwareX 5 (2016) 203), so ``R`` is the τ that, with the mean porosity, gives the
        mean effective transport of the cubes; the mean of τ instead is dominated by nearly blocked cubes.
        95 % CI by the delta method for a ratio of means (Cochran 1977, eq. 6.13 with ``f = 0``):
        ``v(R) = sum_i (ε_i - R y_i)^2 / ((n - 1) n ȳ^2)`` with ``y_i = ε_i/τ_i``, half-width
        ``t_{0.975, n-1} sqrt(v(R))``.

        Args:
            name: metric key.
            tau: per-cube tortuosity factors (the cubes whose pore network percolates), shape ``n``, > 0.
            porosity: per-cube porosities ε of the same cubes, shape ``n``, > 0.

        Raises:
            ValueError: empty, non-finite or non-positive values, or shapes that differ.
        """
        t = np.asarray(tau, dtype=np.float64).reshape(-1)
        e = np.asarray(porosity, dtype=np.float64).reshape(-1)
        if t.size == 0 or t.shape != e.shape or not (np.all(np.isfinite(t)) and np.all(np.isfinite(e))) \
                or np.any(t <= 0) or np.any(e <= 0):
            raise ValueError(f"{name}: per-cube tau and porosity must be non-empty, positive, finite and of one "
                             f"shape, got {t!r} and {e!r}")
        y = e / t
        r = float(e.mean() / y.mean())
        est = cls(name=name, values=t, mean=r, std=0.0, ci95_half_width=float("inf"),
                  estimator="transport_averaged", weights=e)
        n = t.size
        if n == 1:
            return est
        std = float(est.linearised_values().std(ddof=1))
        half = float(stats.t.ppf(0.975, n - 1) * std / np.sqrt(n))
        return replace(est, std=std, ci95_half_width=half)

    def __post_init__(self) -> None:
        if self.estimator not in ESTIMATORS:
            raise ValueError(f"{self.name}: estimator {self.estimator!r} is not one of {ESTIMATORS}")
        if self.estimator == "transport_averaged" and (
                self.weights is None or np.asarray(self.weights).shape != np.asarray(self.values).shape):
            raise ValueError(f"{self.name}: a transport-averaged estimate needs one weight (porosity) per cube")

    def linearised_values(self) -> np.ndarray:
        """Per-cube values whose mean is :attr:`mean` and whose ``std / sqrt(n)`` is the standard error, shape ``n``.

        ``"mean"``: the per-cube values. ``"transport_averaged"``: ``R + (ε_i - R y_i) / ȳ`` with
        ``y_i = ε_i/τ_i`` (the first-order expansion of the ratio of means, Cochran 1977, §6.3), used for the
        covariance of the metric means in the objective's noise (:mod:`microdesign.objective.noise`).
        """
        v = np.asarray(self.values, dtype=np.float64)
        if self.estimator == "mean":
            return v
        e = np.asarray(self.weights, dtype=np.float64)
        y = e / v
        return self.mean + (e - self.mean * y) / y.mean()

    def with_mean(self, new_mean: float) -> MetricEstimate:
        """A copy with the estimate at ``new_mean`` and the per-cube values moved alike (std and CI kept):
        ``"mean"`` shifts every value by ``new_mean - mean``; ``"transport_averaged"`` scales every τ by
        ``new_mean / mean`` (the ratio is homogeneous of degree one in τ, so it recomputes to ``new_mean``)."""
        v = np.asarray(self.values, dtype=np.float64)
        if self.estimator == "transport_averaged" and self.mean != 0:
            return replace(self, mean=float(new_mean), values=v * (float(new_mean) / self.mean))
        return replace(self, mean=float(new_mean), values=v + (float(new_mean) - self.mean))

    def scaled(self, factor: float) -> MetricEstimate:
        """A copy with every per-cube value, the estimate, its std and CI multiplied by ``factor`` (> 0), so the
        relative CI is kept (a mean and a transport-averaged τ are both homogeneous of degree one in the
        values; the weights are unchanged).

        Raises:
            ValueError: ``factor`` not a positive finite number.
        """
        f = float(factor)
        if not (math.isfinite(f) and f > 0):
            raise ValueError(f"{self.name}: scale factor must be a positive finite number, got {factor!r}")
        return replace(self, values=np.asarray(self.values, dtype=np.float64) * f, mean=self.mean * f,
                       std=self.std * f, ci95_half_width=self.ci95_half_width * f)

    @property
    def n(self) -> int:
        return int(self.values.size)

    @property
    def relative_ci95(self) -> float:
        """CI half-width over |mean|: 0 where the half-width is 0 (all cubes equal, e.g. no AM-CBD
        interface anywhere), inf where the mean is 0 but the cubes differ."""
        if self.ci95_half_width == 0.0:
            return 0.0
        return self.ci95_half_width / abs(self.mean) if self.mean != 0 else float("inf")


@dataclass(frozen=True)
class MicrostructureMetrics:
    """What characterisation measured on a set of cubes (docs/characterisation.md).

    Attributes:
        estimates: metric key -> estimate; holds every key of :data:`REQUIRED_METRICS` when
            ``status == "ok"`` (``TORTUOSITY_IN_PLANE`` optional).
        voxel_size_m: voxel edge length [m].
        cube_size_voxels: cube side L [voxels].
        n_cubes: number of cubes measured.
        stop_reason: why cube sampling stopped (``"ci_target_met"``, ``"cap_reached"``, ...).
        status: ``"ok"`` or ``"failed"``.
        reason: why it failed (e.g. ``"pore network does not percolate through-plane"``), else None.
        bulk_conductivity_S_m: bulk conductivities used for the conductivity solve, phase name -> [S.m-1].
        diagnostics: solver facts for the record (solver name, iterations, converged, timings).
    """

    estimates: dict[str, MetricEstimate]
    voxel_size_m: float
    cube_size_voxels: int
    n_cubes: int
    stop_reason: str = ""
    status: str = "ok"
    reason: str | None = None
    bulk_conductivity_S_m: dict[str, float] = field(default_factory=dict)
    diagnostics: dict[str, object] = field(default_factory=dict)

    def __getitem__(self, key: str) -> MetricEstimate:
        return self.estimates[key]

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def means(self) -> dict[str, float]:
        """Metric key -> mean."""
        return {k: e.mean for k, e in self.estimates.items()}

    def to_attrs(self) -> dict[str, Any]:
        """Plain HDF5 attributes (the campaign file's ``metrics`` group, :mod:`microdesign.storage`):
        ``status``, ``reason`` (``""`` for None), ``voxel_size_m``, ``cube_size_voxels``, ``n_cubes``,
        ``stop_reason``; ``bulk_conductivity_S_m`` as a subgroup; each estimate as a dataset of its
        per-cube values ``(values, {name, mean, std, ci95_half_width})``, plus ``estimator`` and ``weights``
        (per-cube porosities) for an estimate that is not the mean. ``diagnostics`` is not stored."""
        out: dict[str, Any] = {"status": self.status, "reason": self.reason or "", "voxel_size_m": self.voxel_size_m,
                               "cube_size_voxels": self.cube_size_voxels, "n_cubes": self.n_cubes,
                               "stop_reason": self.stop_reason,
                               "bulk_conductivity_S_m": dict(self.bulk_conductivity_S_m or {})}
        for key, e in self.estimates.items():
            a: dict[str, Any] = {"name": key, "mean": e.mean, "std": e.std, "ci95_half_width": e.ci95_half_width}
            if e.estimator != "mean":
                a.update(estimator=e.estimator, weights=np.asarray(e.weights, float))
            out[key] = (np.asarray(e.values, float), a)
        return out

    @classmethod
    def from_attrs(cls, attrs: dict[str, Any]) -> MicrostructureMetrics:
        """The metrics :meth:`to_attrs` wrote (datasets are ``(values, attrs)`` pairs; the metric key is
        the dataset's ``name`` attribute). Each estimate keeps its stored mean, std and CI (never recomputed
        from the values); one without an ``estimator`` attribute (files of older versions) is a mean."""
        estimates = {}
        for item in attrs.values():
            if isinstance(item, tuple):
                values, a = item
                w = a.get("weights")
                estimates[a["name"]] = MetricEstimate(name=a["name"], values=np.asarray(values, float),
                                                      mean=float(a["mean"]), std=float(a["std"]),
                                                      ci95_half_width=float(a["ci95_half_width"]),
                                                      estimator=str(a.get("estimator", "mean")),
                                                      weights=None if w is None else np.asarray(w, float))
        return cls(estimates=estimates, voxel_size_m=attrs["voxel_size_m"], cube_size_voxels=int(attrs["cube_size_voxels"]),
                   n_cubes=int(attrs["n_cubes"]), stop_reason=attrs.get("stop_reason", ""), status=attrs["status"],
                   reason=attrs.get("reason") or None,
                   bulk_conductivity_S_m=dict(attrs.get("bulk_conductivity_S_m") or {}))

    @classmethod
    def failed(cls, reason: str, voxel_size_m: float, cube_size_voxels: int, n_cubes: int = 0,
               bulk_conductivity_S_m: dict[str, float] | None = None,
               diagnostics: dict[str, object] | None = None) -> MicrostructureMetrics:
        """A failed characterisation: no estimates, a reason."""
        return cls(estimates={}, voxel_size_m=voxel_size_m, cube_size_voxels=cube_size_voxels,
                   n_cubes=n_cubes, stop_reason="failed", status="failed", reason=reason,
                   bulk_conductivity_S_m=dict(bulk_conductivity_S_m or {}), diagnostics=dict(diagnostics or {}))

    @classmethod
    def from_means(cls, means: dict[str, float], voxel_size_m: float = 1e-7, cube_size_voxels: int = 0,
                   relative_std: float = 0.0) -> MicrostructureMetrics:
        """Hand-made metrics (tests, base-point studies): each mean as a single exact value.

        With ``relative_std > 0`` the CI half-width is set to ``1.96 * relative_std * |mean|``.
        """
        estimates = {}
        for k, m in means.items():
            half = 1.96 * relative_std * abs(m)
            estimates[k] = MetricEstimate(name=k, values=np.array([m], dtype=np.float64), mean=float(m),
                                          std=relative_std * abs(m), ci95_half_width=half)
        return cls(estimates=estimates, voxel_size_m=voxel_size_m, cube_size_voxels=cube_size_voxels,
                   n_cubes=1, stop_reason="given")
