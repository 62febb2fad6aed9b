"""Result types of the characterisation stage.

These are the contract between characterisation, the cell model and the campaign: a
:class:`MicrostructureMetrics` holds one :class:`MetricEstimate` per metric, keyed by the metric's
standard name with its unit in brackets (PyBaMM style).
"""

from __future__ import annotations

from dataclasses import dataclass, field
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

    Attributes:
        name: metric key with unit, e.g. ``"Specific surface area active material-pore [m-1]"``.
        values: per-cube values, shape ``n``.
        mean: sample mean.
        std: sample standard deviation (ddof=1; 0 for a single cube).
        ci95_half_width: half-width of the two-sided 95% confidence interval of the mean,
            Student t with ``n - 1`` degrees of freedom (inf for a single cube).
    """

    name: str
    values: np.ndarray
    mean: float
    std: float
    ci95_half_width: float

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
        per-cube values ``(values, {name, mean, std, ci95_half_width})``. ``diagnostics`` is not stored."""
        out: dict[str, Any] = {"status": self.status, "reason": self.reason or "", "voxel_size_m": self.voxel_size_m,
                               "cube_size_voxels": self.cube_size_voxels, "n_cubes": self.n_cubes,
                               "stop_reason": self.stop_reason,
                               "bulk_conductivity_S_m": dict(self.bulk_conductivity_S_m or {})}
        for key, e in self.estimates.items():
            out[key] = (np.asarray(e.values, float),
                        {"name": key, "mean": e.mean, "std": e.std, "ci95_half_width": e.ci95_half_width})
        return out

    @classmethod
    def from_attrs(cls, attrs: dict[str, Any]) -> MicrostructureMetrics:
        """The metrics :meth:`to_attrs` wrote (datasets are ``(values, attrs)`` pairs; the metric key is
        the dataset's ``name`` attribute)."""
        estimates = {}
        for item in attrs.values():
            if isinstance(item, tuple):
                values, a = item
                estimates[a["name"]] = MetricEstimate(name=a["name"], values=np.asarray(values, float), mean=a["mean"],
                                                      std=a["std"], ci95_half_width=a["ci95_half_width"])
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
