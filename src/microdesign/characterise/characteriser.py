"""The characterisation stage: labelled cubes -> :class:`MicrostructureMetrics` (docs/characterisation.md).

Per cube: phase volume fractions (voxel counting), specific surface areas of the AM-pore and AM-CBD
interfaces (:mod:`microdesign.characterise.surface`), the pore tortuosity factor through-plane
(axis 0) and optionally in-plane (mean over axes 1 and 2), and the effective electronic
conductivity of the solid (AM + CBD with their bulk conductivities) through-plane
by a transport solver object (:mod:`microdesign.characterise.solvers`: our MG-CG or TauFactor's SOR).
Over cubes: mean, std, Student-t 95% CI (:class:`MetricEstimate`); the pore tortuosity factors either
as the mean of the per-cube τ or transport-averaged, ``mean(ε) / mean(ε/τ)`` with a delta-method CI
(``tau_estimator``).
:meth:`Characteriser.characterise_adaptive` adds cubes until every metric's relative CI half-width
meets the target or the cap is reached (:class:`AdaptiveSampling`; Kench et al., Matter 7 (2024): 39
cubes of 128^3 give the mean within 1% at 95% confidence).

Percolation is judged on the sample, not cube by cube: the metrics
``"Pore percolating fraction through-plane"`` (:data:`~microdesign.characterise.metrics.PORE_PERCOLATING_FRACTION`)
and ``"Solid percolating fraction through-plane"`` (:data:`~microdesign.characterise.metrics.SOLID_PERCOLATING_FRACTION`)
are the shares of cubes whose pore network and whose solid (AM + CBD) network span axis 0. The pore
tortuosity factors are estimated over the cubes whose pores percolate; a cube whose solid does not span
enters the solid conductivity with 0 S/m. A small cube of a percolating material can be blocked by one
particle or one pore (docs/characterisation.md, "Percolation is judged on the sample"); only a share
below ``min_percolating_fraction`` says the material itself does not percolate.

Failures (a result with ``status="failed"``, never an exception, never inf/NaN): the pore network or the
solid network percolates in a share of the cubes below ``min_percolating_fraction`` (or in none), a
solve returned a non-finite or non-positive value, or (with ``require_convergence``) a solver hit its
iteration limit.

Voxel work (volume fractions, face counting, percolation check, solve set-up) runs with numpy /
scipy on the host, or with torch on the solver's device (``voxel_ops``; by default on the device when
it is CUDA and the solver takes device arrays, where host work would dominate): identical results.
:attr:`Characteriser.timings_s` holds the per-stage wall seconds of the last :meth:`Characteriser.measure`.
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from microdesign.characterise import transport
from microdesign.characterise.metrics import (
    AM_VOLUME_FRACTION,
    CBD_VOLUME_FRACTION,
    CONDUCTIVITY_SOLID,
    PORE_PERCOLATING_FRACTION,
    POROSITY,
    REQUIRED_METRICS,
    SOLID_PERCOLATING_FRACTION,
    SSA_AM_CBD,
    SSA_AM_PORE,
    TORTUOSITY_IN_PLANE,
    TORTUOSITY_THROUGH_PLANE,
    ESTIMATORS,
    MetricEstimate,
    MicrostructureMetrics,
)
from microdesign.characterise.surface import METHODS as SSA_METHODS
from microdesign.characterise.solvers import MgcgSolver, TauFactorSolver, TransportSolver
from microdesign.characterise.surface import face_counting_ssa, interface_face_counts_torch, interface_ssa
from microdesign.errors import ConfigError, check_voxel_size, require
from microdesign.phases import ACTIVE_MATERIAL, CBD, PORE

log = logging.getLogger(__name__)

#: Default bulk electronic conductivities [S.m-1].
#: active_material: NMC811 electrode conductivity of PyBaMM's Chen2020 set (Chen et al., J.
#: Electrochem. Soc. 167 (2020) 080534), 0.18 S/m; measured NMC811 values span ~0.01-1 S/m with
#: state of charge. cbd: 760 S/m, the carbon-binder-domain value used in mesoscale electrode models
#: (Trembacki et al., J. Electrochem. Soc. 165 (2018) E725; docs/characterisation.md); porous
#: CBD measurements go down to ~10 S/m.
DEFAULT_BULK_CONDUCTIVITY_S_M: dict[str, float] = {"active_material": 0.18, "cbd": 760.0}


def label_conductivities(bulk_conductivity_S_m: Mapping[str, float] | None = None) -> dict[int, float]:
    """Label -> bulk conductivity [S.m-1] of the solid phases (AM and CBD; the pore is insulating), from
    ``{"active_material": s, "cbd": s}`` over :data:`DEFAULT_BULK_CONDUCTIVITY_S_M` (missing keys or None:
    the defaults)."""
    bulk = {**DEFAULT_BULK_CONDUCTIVITY_S_M, **dict(bulk_conductivity_S_m or {})}
    return {ACTIVE_MATERIAL: float(bulk["active_material"]), CBD: float(bulk["cbd"])}


class _StageClock:
    """Context factory adding each block's wall seconds to ``store[stage]`` (CUDA synchronised first)."""

    def __init__(self, store: dict[str, float], cuda_device: str | None):
        self.store, self.cuda_device = store, cuda_device

    def _sync(self) -> None:
        if self.cuda_device is not None and self.cuda_device.startswith("cuda"):
            import torch

            torch.cuda.synchronize(self.cuda_device)

    @contextlib.contextmanager
    def __call__(self, stage: str):
        self._sync()
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self._sync()
            self.store[stage] = self.store.get(stage, 0.0) + time.perf_counter() - t0


def _swap_contiguous(a, i: int, j: int):
    """``a`` with axes ``i`` and ``j`` swapped, contiguous (numpy array or torch tensor)."""
    if isinstance(a, np.ndarray):
        return np.ascontiguousarray(np.swapaxes(a, i, j))
    return a.transpose(i, j).contiguous()


VOXEL_OPS = ("auto", "host", "device")

#: Metric keys a Characteriser measures (the adaptive CI target may watch any subset). The pore and solid
#: percolating fractions are measured too but are feasibility shares, not model inputs: no CI target applies.
MEASURED_METRICS = (*REQUIRED_METRICS, TORTUOSITY_IN_PLANE)
#: Metrics estimated over the cubes whose pore network percolates (NaN per-cube values elsewhere).
PORE_TRANSPORT_METRICS = (TORTUOSITY_THROUGH_PLANE, TORTUOSITY_IN_PLANE)
#: Estimators of the pore tortuosity factors over the percolating cubes (``Characteriser(tau_estimator=...)``):
#: the mean of the per-cube τ, or the transport-averaged ``mean(ε) / mean(ε/τ)``
#: (:meth:`MetricEstimate.transport_averaged <microdesign.characterise.metrics.MetricEstimate.transport_averaged>`).
TAU_ESTIMATORS = ESTIMATORS


@dataclass(frozen=True)
class AdaptiveSampling:
    """Settings of :meth:`Characteriser.characterise_adaptive`.

    Attributes:
        target_relative_ci: target relative 95% CI half-width of every watched metric (default 0.01:
            the mean within 1% at 95% confidence, Kench et al., Matter 7 (2024)).
        max_cubes: cap on the cubes characterised (default 39, Kench et al. 2024).
        min_cubes: cubes of the first batch (>= 2 for a CI).
        batch_cubes: smallest later batch.
        ci_metrics: metric keys the CI target applies to (None: every metric measured). The solid
            conductivity at a 4000x AM/CBD contrast scatters far more between cubes than the other
            metrics (CBD percolation), so it alone can force the cap.

    Raises:
        ConfigError: a value out of range (at construction).
    """

    target_relative_ci: float = 0.01
    max_cubes: int = 39
    min_cubes: int = 4
    batch_cubes: int = 4
    ci_metrics: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        require(0 < self.target_relative_ci < 1, "target_relative_ci", self.target_relative_ci, "a number in (0, 1)")
        require(int(self.min_cubes) >= 2, "min_cubes", self.min_cubes, "an integer >= 2")
        require(int(self.max_cubes) >= int(self.min_cubes), "max_cubes", self.max_cubes,
                f"an integer >= min_cubes ({self.min_cubes})")
        require(int(self.batch_cubes) >= 1, "batch_cubes", self.batch_cubes, "an integer >= 1")
        ci = self.ci_metrics
        if ci is not None:
            ci = tuple(str(k) for k in ci)
            require(len(ci) > 0 and set(ci) <= set(MEASURED_METRICS), "ci_metrics", list(ci),
                    f"None or a non-empty list of metric keys among {sorted(MEASURED_METRICS)}")
        for name, value in (("target_relative_ci", float(self.target_relative_ci)), ("max_cubes", int(self.max_cubes)),
                            ("min_cubes", int(self.min_cubes)), ("batch_cubes", int(self.batch_cubes)),
                            ("ci_metrics", ci)):
            object.__setattr__(self, name, value)

    @classmethod
    def from_mapping(cls, node: Mapping[str, Any] | AdaptiveSampling | None) -> AdaptiveSampling:
        """From a dict / DictConfig (missing keys take the defaults), an instance, or None (defaults).

        Raises:
            ConfigError: an unknown key or a value out of range.
        """
        if isinstance(node, AdaptiveSampling):
            return node
        data = dict(node or {})
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(data) - known)
        require(not unknown, "adaptive", unknown, f"keys among {sorted(known)}")
        return cls(**data)


class Characteriser:
    """TauFactor-style characterisation of labelled cubes, with confidence intervals.

    Args:
        solver: the transport solver (:class:`~microdesign.characterise.solvers.MgcgSolver`, the
            default, or :class:`~microdesign.characterise.solvers.TauFactorSolver`; any
            :class:`~microdesign.characterise.solvers.TransportSolver`), holding the device,
            batching, tolerances, iteration cap, precision and CPU threads of the solves.
        in_plane: also measure the pore tortuosity factor in-plane (axes 1 and 2, averaged).
        bulk_conductivity_S_m: ``{"active_material": s, "cbd": s}`` [S.m-1]; see
            :data:`DEFAULT_BULK_CONDUCTIVITY_S_M` for sources.
        surface_area: ``{"method": "face_counting"|"marching_cubes", "isotropic_correction": bool,
            "smoothing": bool}`` (see :mod:`microdesign.characterise.surface`).
        require_convergence: treat a solve that hit its iteration limit as a failure.
        adaptive: :class:`AdaptiveSampling` or its keys (``target_relative_ci``, ``max_cubes``,
            ``min_cubes``, ``batch_cubes``, ``ci_metrics``); None: its defaults.
        min_percolating_fraction: smallest share of cubes whose pore network, and smallest share whose
            solid (AM + CBD) network, must span axis 0 (in (0, 1]); below it the material is judged not to
            percolate and the characterisation fails. 1 (the class default): every cube must percolate.
            ``conf/characterise/_base.yaml`` sets 0.5.
        tau_estimator: estimator of the pore tortuosity factors (through-plane, and in-plane when measured)
            over the percolating cubes (:data:`TAU_ESTIMATORS`): ``"mean"`` (the class default: the mean of
            the per-cube τ, Student-t CI) or ``"transport_averaged"`` (``mean(ε) / mean(ε/τ)``, the τ whose
            ε/τ is the cubes' mean effective transport; delta-method CI of a ratio of means, Cochran,
            Sampling Techniques, 1977, §6.4). The per-cube τ are stored either way; docs/characterisation.md,
            "Estimators of the pore tortuosity factor".
        voxel_ops: where the voxel work runs: ``"host"`` (numpy, scipy percolation labelling),
            ``"device"`` (torch on the solver's device: the cubes are copied there once), or ``"auto"``
            (default: device when it is CUDA and the solver takes device arrays, host otherwise). Same
            results; marching-cubes areas and TauFactor's solves always take host arrays.

    Attributes:
        timings_s: wall seconds per stage of the last :meth:`measure` (``host_prep``, ``transfer``,
            ``fractions_surfaces``, ``tortuosity``, ``conductivity``), the device synchronised at
            each stage end.

    Raises:
        ConfigError: any argument out of range (at construction, before any solve).
    """

    def __init__(self, solver: TransportSolver | None = None, in_plane: bool = False,
                 bulk_conductivity_S_m: Mapping[str, float] | None = None,
                 surface_area: Mapping[str, object] | None = None, require_convergence: bool = True,
                 adaptive: Mapping[str, Any] | AdaptiveSampling | None = None, voxel_ops: str = "auto",
                 min_percolating_fraction: float = 1.0, tau_estimator: str = "mean"):
        require(isinstance(tau_estimator, str) and tau_estimator in TAU_ESTIMATORS, "tau_estimator", tau_estimator,
                f"one of {TAU_ESTIMATORS}")
        solver = MgcgSolver() if solver is None else solver
        require(all(hasattr(solver, a) for a in ("name", "device", "tortuosity", "conductivity")), "solver",
                solver, f"a transport solver object such as {MgcgSolver.__name__} or {TauFactorSolver.__name__}")
        cond = dict(DEFAULT_BULK_CONDUCTIVITY_S_M)
        cond.update(dict(bulk_conductivity_S_m or {}))
        require(set(cond) == {"active_material", "cbd"}, "bulk_conductivity_S_m", dict(cond),
                "keys 'active_material' and 'cbd' only")
        for k, v in cond.items():
            require(isinstance(v, (int, float)) and math.isfinite(v) and v > 0,
                    f"bulk_conductivity_S_m.{k}", v, "a finite positive conductivity [S.m-1]")
        sa = {"method": "face_counting", "isotropic_correction": True, "smoothing": True}
        sa.update(dict(surface_area or {}))
        require(sa["method"] in SSA_METHODS, "surface_area.method", sa["method"], f"one of {SSA_METHODS}")
        self.adaptive = AdaptiveSampling.from_mapping(adaptive)
        require(voxel_ops in VOXEL_OPS, "voxel_ops", voxel_ops, f"one of {VOXEL_OPS}")
        require(isinstance(min_percolating_fraction, (int, float)) and 0 < float(min_percolating_fraction) <= 1,
                "min_percolating_fraction", min_percolating_fraction, "a share of cubes in (0, 1]")
        self.min_percolating_fraction = float(min_percolating_fraction)
        self.tau_estimator = str(tau_estimator)
        self.solver = solver
        self.in_plane = bool(in_plane)
        self.bulk_conductivity_S_m = {k: float(v) for k, v in cond.items()}
        self.surface_area = sa
        self.require_convergence = bool(require_convergence)
        self.voxel_ops = voxel_ops
        self.timings_s: dict[str, float] = {}

    @property
    def device(self) -> str:
        """The solver's (resolved) torch device."""
        return self.solver.device

    @property
    def on_device(self) -> bool:
        """Whether the voxel work runs in torch on :attr:`device` (see ``voxel_ops``; ``auto`` keeps it on
        the host for a solver that takes host arrays, such as TauFactor's)."""
        if self.voxel_ops == "auto":
            return self.device.startswith("cuda") and bool(getattr(self.solver, "takes_device_arrays", False))
        return self.voxel_ops == "device"

    def settings(self) -> dict[str, Any]:
        """Every setting that changes a cube's measured values (solver settings included; not the device,
        the batching, the threads, the adaptive sampling, or the rules that summarise the cubes:
        ``min_percolating_fraction`` and ``tau_estimator``, which the campaign's stored config records)."""
        return {**self.solver.settings(), "in_plane": self.in_plane, "require_convergence": self.require_convergence,
                "bulk_conductivity_S_m": dict(self.bulk_conductivity_S_m), "surface_area": dict(self.surface_area)}

    # ------------------------------------------------------------------------------ validation
    @staticmethod
    def _as_cubes(volumes: np.ndarray) -> np.ndarray:
        v = np.asarray(volumes)
        if v.ndim == 3:
            v = v[None]
        if v.ndim != 4 or v.shape[0] < 1:
            raise ConfigError("volumes", v.shape, "n x L x L x L or L x L x L")
        if not (v.shape[1] == v.shape[2] == v.shape[3]) or v.shape[1] < 3:
            raise ConfigError("volumes", v.shape, "cubes n x L x L x L with L >= 3")
        if v.dtype != np.uint8:
            raise ConfigError("volumes.dtype", str(v.dtype), "uint8 phase labels")
        bad = np.setdiff1d(np.unique(v), [PORE, ACTIVE_MATERIAL, CBD]) if v.max() > max(PORE, ACTIVE_MATERIAL, CBD) \
            else np.zeros(0)  # uint8: labels beyond {0, 1, 2} exist iff the maximum exceeds 2 (np.unique sorts)
        if bad.size:
            raise ConfigError("volumes", f"labels {bad.tolist()}", "labels 0 pore, 1 AM, 2 CBD only")
        return v

    @staticmethod
    def _check_voxel(voxel_size_m: float) -> float:
        return check_voxel_size("voxel_size_m", voxel_size_m, hint="e.g. 3.98e-7")

    # ------------------------------------------------------------------------------- solves
    def _conductivities(self) -> dict[int, float]:
        """Label -> bulk conductivity [S.m-1] of the solid phases."""
        return label_conductivities(self.bulk_conductivity_S_m)

    def measure(self, volumes: np.ndarray, voxel_size_m: float) -> tuple[dict[str, np.ndarray], str | None]:
        """Per-cube values of every metric.

        Args:
            volumes: ``n x L x L x L`` (or ``L x L x L``) uint8 labels.
            voxel_size_m: voxel edge [m].

        Returns:
            ``(values, reason)``: metric key -> per-cube values (shape ``n``), and ``None`` or the
            reason the set failed (then ``values`` is incomplete). A cube whose pore network does not
            span axis 0 is no failure here: it has ``0`` under ``PORE_PERCOLATING_FRACTION`` and NaN
            pore tortuosity factors. A cube whose solid network does not span axis 0 has ``0`` under
            ``SOLID_PERCOLATING_FRACTION`` and a solid conductivity of 0 S/m. The shares are judged over
            the sample (:meth:`percolation_reason`).

        Raises:
            ConfigError: bad shape, dtype, labels or voxel size.
        """
        return self._measure(*self._validated(volumes, voxel_size_m))

    def _clock(self) -> _StageClock:
        return _StageClock(self.timings_s, self.device if self.on_device else None)

    def _validated(self, volumes: np.ndarray, voxel_size_m: float) -> tuple[np.ndarray, float]:
        """``(cubes n x L x L x L, voxel size [m])`` checked once per call; starts :attr:`timings_s`."""
        self.timings_s = {}
        with self._clock()("host_prep"):
            return self._as_cubes(volumes), self._check_voxel(voxel_size_m)

    def _measure(self, cubes: np.ndarray, dx: float) -> tuple[dict[str, np.ndarray], str | None]:
        """:meth:`measure` of cubes that :meth:`_validated` checked (adds to :attr:`timings_s`)."""
        clock = self._clock()
        n = cubes.shape[0]
        with clock("transfer"):
            vol = self._to_device(cubes) if self.on_device else cubes
        with clock("fractions_surfaces"):
            values = self._fractions_and_surfaces(cubes, vol, dx)

        pore = vol == PORE
        with clock("tortuosity"):
            r = self.solver.tortuosity(pore)
        reason = self._check(r, n, "pore network", "through-plane (axis 0)", blocked_allowed=True)
        if reason:
            return values, reason
        values[PORE_PERCOLATING_FRACTION] = np.asarray(r.percolating, dtype=np.float64)
        values[TORTUOSITY_THROUGH_PLANE] = np.where(r.percolating, r.tau, np.nan)
        if self.in_plane:
            taus = []
            for axis in (1, 2):
                # cube axis `axis` becomes the transport axis 0 (array axis 1)
                with clock("tortuosity"):
                    ri = self.solver.tortuosity(_swap_contiguous(pore, 1, axis + 1))
                reason = self._check(ri, n, "pore network", f"in-plane (axis {axis})", blocked_allowed=True)
                if reason:
                    return values, reason
                taus.append(np.where(ri.percolating, ri.tau, np.nan))
            values[TORTUOSITY_IN_PLANE] = 0.5 * (taus[0] + taus[1])
        with clock("conductivity"):
            rc = self.solver.conductivity(vol, self._conductivities())
        reason = self._check(rc, n, "solid (AM + CBD) network", "through-plane (axis 0)", blocked_allowed=True)
        if reason:
            return values, reason
        spans = np.asarray(rc.percolating, dtype=bool)
        values[SOLID_PERCOLATING_FRACTION] = spans.astype(np.float64)
        # a solid that does not span conducts nothing through-plane
        values[CONDUCTIVITY_SOLID] = np.where(spans, rc.d_eff, 0.0)
        return values, None

    def _to_device(self, cubes: np.ndarray):
        import torch

        return torch.from_numpy(np.ascontiguousarray(cubes)).to(self.device)

    def _fractions_and_surfaces(self, cubes: np.ndarray, vol, dx: float) -> dict[str, np.ndarray]:
        """Volume fractions and interface SSAs per cube; ``vol`` is ``cubes`` or its device copy."""
        sa = self.surface_area
        values = {key: transport.fraction_per_cube(vol == phase) for key, phase in
                  ((POROSITY, PORE), (AM_VOLUME_FRACTION, ACTIVE_MATERIAL), (CBD_VOLUME_FRACTION, CBD))}
        if self.on_device and sa["method"] == "face_counting":
            for key, other in ((SSA_AM_PORE, PORE), (SSA_AM_CBD, CBD)):
                counts = interface_face_counts_torch(vol, ACTIVE_MATERIAL, other).cpu().numpy()
                values[key] = face_counting_ssa(counts, cubes[0].size, dx, bool(sa["isotropic_correction"]))
            return values
        ssa = [interface_ssa(c, dx, method=sa["method"], isotropic_correction=bool(sa["isotropic_correction"]),
                             smoothing=bool(sa["smoothing"])) for c in cubes]
        values[SSA_AM_PORE] = np.array([s["am_pore"] for s in ssa])
        values[SSA_AM_CBD] = np.array([s["am_cbd"] for s in ssa])
        return values

    def _check(self, r: transport.TransportResult, n: int, what: str, direction: str,
               blocked_allowed: bool = False) -> str | None:
        """Why a solve result fails the set, or None. ``blocked_allowed``: cubes whose phase does not span
        are no failure here (their share is judged by :meth:`percolation_reason`). A cube whose phase spans
        but whose solve gave no finite positive value fails the set either way; convergence and finiteness
        are then checked on the percolating cubes."""
        ok = np.asarray(r.percolating, dtype=bool)
        spans = ok if r.spans is None else np.asarray(r.spans, dtype=bool)
        if not blocked_allowed and not spans.all():
            k = int((~spans).sum())
            return f"{what} does not percolate {direction} in {k} of {n} cubes"
        if (spans & ~ok).any():
            k = int((spans & ~ok).sum())
            return (f"{what} transport solve ({self.solver.name}) returned a non-finite or non-positive value "
                    f"{direction} in {k} of {n} cubes")
        if self.require_convergence and not np.asarray(r.converged)[ok].all():
            k = int((~np.asarray(r.converged)[ok]).sum())
            return (f"{what} transport solve ({self.solver.name}) did not converge {direction} in {k} of {n} cubes "
                    f"within its iteration limit")
        tau, d_eff = np.asarray(r.tau)[ok], np.asarray(r.d_eff)[ok]
        if not (np.all(np.isfinite(tau)) and np.all(np.isfinite(d_eff)) and np.all(d_eff > 0)):
            return f"{what} transport solve ({self.solver.name}) returned a non-finite or non-positive value"
        return None

    def percolation_reason(self, values: Mapping[str, np.ndarray]) -> str | None:
        """Why the sample's pore or solid network is judged not to percolate, or None.

        Fails when the share of cubes whose pore network, or whose solid (AM + CBD) network, spans axis 0
        is below ``min_percolating_fraction``, when no cube percolates, or (``in_plane``) when no cube's
        pores percolate along both in-plane axes.
        """
        for key, network in ((PORE_PERCOLATING_FRACTION, "pore network"),
                             (SOLID_PERCOLATING_FRACTION, "solid (AM + CBD) network")):
            perc = np.asarray(values.get(key, np.ones(0)), dtype=np.float64)
            n, k = perc.size, int(round(float(perc.sum())))
            if n == 0:
                continue
            share = k / n
            if k == 0:
                return f"{network} does not percolate through-plane (axis 0) in any of {n} cubes"
            if share < self.min_percolating_fraction:
                return (f"{network} does not percolate through-plane (axis 0) in {n - k} of {n} cubes (percolating "
                        f"fraction {share:.3g} < min_percolating_fraction {self.min_percolating_fraction:g})")
        in_plane = values.get(TORTUOSITY_IN_PLANE) if self.in_plane else None
        if in_plane is not None and not np.isfinite(in_plane).any():
            return f"pore network does not percolate in-plane (axes 1 and 2) in any of {len(in_plane)} cubes"
        return None

    @staticmethod
    def estimates(values: Mapping[str, np.ndarray], tau_estimator: str = "mean") -> dict[str, MetricEstimate]:
        """Estimates of per-cube values; the pore tortuosity factors over the percolating cubes (finite values).

        Args:
            values: metric key -> per-cube values, shape ``n`` (NaN pore tortuosity factors where the pore
                network does not percolate), e.g. :meth:`measure`'s.
            tau_estimator: ``"mean"`` (every metric a sample mean) or ``"transport_averaged"`` (the pore
                tortuosity factors by :meth:`MetricEstimate.transport_averaged
                <microdesign.characterise.metrics.MetricEstimate.transport_averaged>` with the same cubes'
                porosities; needs ``POROSITY`` in ``values``).

        Raises:
            ConfigError: an unknown ``tau_estimator``, or ``"transport_averaged"`` without per-cube porosities
                of the same length.
            ValueError: non-finite values of a metric other than a pore tortuosity factor.
        """
        require(tau_estimator in TAU_ESTIMATORS, "tau_estimator", tau_estimator, f"one of {TAU_ESTIMATORS}")
        eps = None
        if tau_estimator == "transport_averaged" and any(k in values for k in PORE_TRANSPORT_METRICS):
            eps = np.asarray(values.get(POROSITY, np.zeros(0)), dtype=np.float64)
            n = {np.asarray(values[k]).size for k in PORE_TRANSPORT_METRICS if k in values}
            require(n == {eps.size}, "values", sorted(values),
                    f"per-cube '{POROSITY}' beside the pore tortuosity factors (transport-averaged estimator)")
        out = {}
        for k, v in values.items():
            v = np.asarray(v, dtype=np.float64)
            if k not in PORE_TRANSPORT_METRICS:
                out[k] = MetricEstimate.from_values(k, v)
            elif eps is None:
                out[k] = MetricEstimate.from_values(k, v[np.isfinite(v)])
            else:
                ok = np.isfinite(v)
                out[k] = MetricEstimate.transport_averaged(k, v[ok], eps[ok])
        return out

    # ----------------------------------------------------------------------------- public API
    def characterise(self, volumes: np.ndarray, voxel_size_m: float, seed: int | None = None) -> MicrostructureMetrics:
        """Characterise a fixed set of cubes.

        Args:
            volumes: ``n x L x L x L`` uint8 labels (0 pore, 1 AM, 2 CBD), or one ``L x L x L`` cube.
            voxel_size_m: voxel edge [m].
            seed: recorded in the log only (the measurement itself is deterministic).

        Returns:
            :class:`MicrostructureMetrics` with ``stop_reason="fixed_count"``, or a failed one.

        Raises:
            ConfigError: bad shape, dtype, labels or voxel size (before any solve).
        """
        cubes, dx = self._validated(volumes, voxel_size_m)
        t0 = time.perf_counter()
        values, reason = self._measure(cubes, dx)
        reason = reason or self.percolation_reason(values)
        L = cubes.shape[1]
        if reason:
            log.warning("characterisation failed: %s", reason)
            return self._failed(reason, dx, L, cubes.shape[0])
        log.info("characterised %d cubes of %d^3 in %.2f s (solver %s, seed %s)", cubes.shape[0], L,
                 time.perf_counter() - t0, self.solver.name, seed)
        return self._summarise(values, dx, L, "fixed_count")

    def characterise_adaptive(self, sample_cubes: Callable[[int, int], np.ndarray], voxel_size_m: float,
                              seed: int = 0, target_relative_ci: float | None = None,
                              max_cubes: int | None = None,
                              relative_ci: Callable[[MicrostructureMetrics], float] | None = None
                              ) -> MicrostructureMetrics:
        """Add cubes in batches until every metric's relative 95% CI half-width meets the target.

        The first batch has ``adaptive.min_cubes`` cubes; afterwards the batch is the number of cubes the
        current CI predicts are still needed (``n (rel_ci / target)^2 - n``, the CI falling as
        ``1/sqrt(n)``), at least ``adaptive.batch_cubes``, never past the cap. A metric whose values are all
        equal (CI 0) meets any target.

        Args:
            sample_cubes: cube source ``(n_cubes, seed) -> n_cubes x L x L x L`` uint8.
            voxel_size_m: voxel edge [m].
            seed: master seed; batch ``k`` is drawn with ``seed`` spawned by ``numpy.random.SeedSequence``.
            target_relative_ci: overrides the configured target.
            max_cubes: overrides the configured cap.
            relative_ci: judge the target on this instead of the metrics' CIs: called after every batch with
                the metrics of the cubes so far, it returns the relative 95% CI half-width of what they
                feed (e.g. the campaign objective, propagated through the cell model:
                :class:`~microdesign.campaign.evaluate.TrialEvaluator` with ``adaptive_target="objective"``).
                A value that is not finite (it could not be computed) does not meet the target.

        Returns:
            :class:`MicrostructureMetrics` with ``stop_reason`` ``"ci_target_met"`` or
            ``"cap_reached"``, or a failed one.
        """
        dx = self._check_voxel(voxel_size_m)
        ad = self.adaptive
        target = ad.target_relative_ci if target_relative_ci is None else float(target_relative_ci)
        cap = ad.max_cubes if max_cubes is None else int(max_cubes)
        require(0 < target < 1, "target_relative_ci", target, "a number in (0, 1)")
        require(cap >= 2, "max_cubes", cap, "an integer >= 2")
        seeds = np.random.SeedSequence(seed)
        collected: dict[str, list[np.ndarray]] = {}
        n, L, next_batch = 0, 0, min(ad.min_cubes, cap)
        t0 = time.perf_counter()
        while True:
            batch_seed = int(seeds.spawn(1)[0].generate_state(1)[0])
            cubes, dx = self._validated(sample_cubes(next_batch, batch_seed), dx)
            L = cubes.shape[1]
            values, reason = self._measure(cubes, dx)
            n += cubes.shape[0]
            if not reason:
                for k, v in values.items():
                    collected.setdefault(k, []).append(v)
                # judged on every cube so far: a blocked cube of the first batch is not the material's verdict
                reason = self.percolation_reason({k: np.concatenate(v) for k, v in collected.items()})
            if reason:
                log.warning("characterisation failed after %d cubes: %s", n, reason)
                return self._failed(reason, dx, L, n)
            so_far = {k: np.concatenate(v) for k, v in collected.items()}
            if relative_ci is not None:
                worst = float(relative_ci(self._summarise(so_far, dx, L, "in_progress")))
                worst = worst if math.isfinite(worst) else math.inf
                judged = "relative CI (relative_ci)"
            else:
                est = self.estimates(so_far, self.tau_estimator)
                watched = [e for k, e in est.items()
                           if (k in ad.ci_metrics if ad.ci_metrics is not None else k in MEASURED_METRICS)]
                worst = max(e.relative_ci95 for e in watched) if watched else 0.0
                judged = "worst relative CI"
            log.info("adaptive characterisation: %d cubes, %s %.4f (target %.4f)", n, judged, worst, target)
            if worst <= target:
                stop = "ci_target_met"
                break
            if n >= cap:
                stop = "cap_reached"
                break
            needed = math.ceil(n * (worst / target) ** 2) - n if math.isfinite(worst) else ad.batch_cubes
            next_batch = int(min(cap - n, max(ad.batch_cubes, needed)))
        log.info("adaptive characterisation stopped (%s) after %d cubes of %d^3 in %.1f s", stop, n, L,
                 time.perf_counter() - t0)
        return self._summarise({k: np.concatenate(v) for k, v in collected.items()}, dx, L, stop)

    # -------------------------------------------------------------------------------- helpers
    def _failed(self, reason: str, dx: float, L: int, n: int) -> MicrostructureMetrics:
        return MicrostructureMetrics.failed(reason=reason, voxel_size_m=dx, cube_size_voxels=L, n_cubes=n,
                                            bulk_conductivity_S_m=self.bulk_conductivity_S_m)

    def _summarise(self, values: dict[str, np.ndarray], dx: float, L: int, stop: str) -> MicrostructureMetrics:
        est = self.estimates(values, self.tau_estimator)
        n = est[POROSITY].n if POROSITY in est else next(iter(est.values())).n
        return MicrostructureMetrics(estimates=est, voxel_size_m=dx, cube_size_voxels=L, n_cubes=n,
                                     stop_reason=stop, status="ok", reason=None,
                                     bulk_conductivity_S_m=dict(self.bulk_conductivity_S_m))


# ------------------------------------------------------------------------------ stored configs
#: Keys of the flat ``characterise`` config of campaign files written before the solver became an object:
#: flat key -> key of the solver node, per solver name (absent: the solver has no such setting).
FLAT_SOLVER_KEYS: dict[str, dict[str, str]] = {
    "mgcg": {"device": "device", "batch": "batch", "conv_crit": "conv_crit", "rtol": "rtol", "criterion": "criterion",
             "iter_limit": "iter_limit", "precision": "precision", "conductivity_precision": "conductivity_precision",
             "threads": "threads"},
    "taufactor": {"device": "device", "batch": "batch", "conv_crit": "conv_crit", "taufactor_iter_limit": "iter_limit",
                  "threads": "threads"},
}
#: ... and flat keys that moved into the ``adaptive`` node.
FLAT_ADAPTIVE_KEYS = ("target_relative_ci", "max_cubes", "min_cubes", "batch_cubes", "ci_metrics")
_SOLVER_TARGETS = {"mgcg": f"{MgcgSolver.__module__}.{MgcgSolver.__name__}",
                   "taufactor": f"{TauFactorSolver.__module__}.{TauFactorSolver.__name__}"}


def upgrade_flat_config(node: Mapping[str, Any]) -> dict[str, Any]:
    """A ``characterise`` config in the nested form of ``conf/characterise/`` from the flat form of older campaign
    files (``solver: mgcg|taufactor`` beside ``rtol``, ``iter_limit``, ``taufactor_iter_limit``, ``max_cubes``...).

    The solver's settings go into a ``solver`` node with its ``_target_``, the adaptive-sampling settings into
    ``adaptive``; the settings of the solver not selected are dropped (they had no effect), every other key is
    kept (e.g. ``cache_dir`` of ``CachedCharacteriser``). A node that is already nested, or whose ``_target_``
    is not a :class:`Characteriser`, is returned unchanged (as a plain dict).

    Raises:
        ConfigError: a flat ``solver`` that is neither ``"mgcg"`` nor ``"taufactor"``.
    """
    from hydra.utils import get_object
    from omegaconf import DictConfig, OmegaConf

    data = OmegaConf.to_container(node) if isinstance(node, DictConfig) else dict(node)
    try:
        target = get_object(str(data.get("_target_")))
    except Exception:  # noqa: BLE001 - not an importable class: not ours to convert
        return data
    flat_keys = {k for keys in FLAT_SOLVER_KEYS.values() for k in keys} | set(FLAT_ADAPTIVE_KEYS)
    solver = data.get("solver")
    if not (isinstance(target, type) and issubclass(target, Characteriser)) or \
            not (isinstance(solver, str) or (solver is None and flat_keys & set(data))):
        return data
    name = solver or "mgcg"
    require(name in FLAT_SOLVER_KEYS, "characterise.solver", name, f"one of {sorted(FLAT_SOLVER_KEYS)}")
    out: dict[str, Any] = {k: v for k, v in data.items() if k not in flat_keys and k != "solver"}
    node_solver = {"_target_": _SOLVER_TARGETS[name]}
    node_solver.update({new: data[old] for old, new in FLAT_SOLVER_KEYS[name].items() if old in data})
    out["solver"] = node_solver
    adaptive = {k: data[k] for k in FLAT_ADAPTIVE_KEYS if k in data}
    if adaptive:
        out["adaptive"] = adaptive
    return out
