"""Scalar objectives of one evaluated design, with observation noise from the characterisation CI.

An objective reads one number from the :class:`~microdesign.cell.result.CellResult` (e.g. the
volumetric energy density [W.h.L-1] of the 4680 cell at the campaign's discharge power) and gives the
optimiser a noise variance for it. The noise is the uncertainty that the finite number of
characterised cubes leaves in the metrics (docs/characterisation.md), carried through the cell model:

* ``"propagate"`` (default): first-order (delta-method) propagation,
  ``Var f ≈ gᵀ C g`` with ``g_k = ∂f/∂m_k`` by a forward difference of one standard error
  ``s_k = σ_k/√n`` (one extra cell simulation per metric) and ``C`` the covariance of the metric
  means estimated from the per-cube values (``cov/n``; diagonal ``s_k²`` where per-cube values are
  not paired). Source: JCGM 100:2008 (GUM) §5.1.2, law of propagation of uncertainty with correlated
  inputs (§5.2).
* ``"central"``: re-simulate at ``mean ± CI95`` per metric, ``Var f ≈ Σ_k ((f(m_k+) - f(m_k-)) / (2·1.96))²``
  (two simulations per metric, uncorrelated inputs, no linearisation at the mean). Where ``mean - CI95``
  of a positive metric is not positive (a solid conductivity with a cube whose solid does not span,
  counted as 0 S/m, can have a CI wider than its mean) the difference is one-sided,
  ``(f(m_k+) - f(m_k)) / 1.96``: the cell model is not asked for a non-physical value.
* ``"none"``: a fixed variance (``fixed_variance``, default 0).

Failures: a failed cell result or a failed re-simulation never raises; the objective is then
``failed`` (cell) or the noise falls back to the remaining metrics (re-simulation), and the metrics
left out are recorded with the reason in :attr:`ObjectiveValue.noise_left_out`.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
from scipy import stats

from microdesign.errors import ConfigError
from microdesign.objective import noise
from microdesign.objective.noise import Resimulate

log = logging.getLogger(__name__)



@dataclass(frozen=True)
class ObjectiveValue:
    """One objective evaluation.

    Attributes:
        status: ``"ok"`` or ``"failed"``.
        value: the objective in the direction the optimiser maximises (negated for ``minimize``);
            0.0 when failed.
        raw_value: the quantity in its own unit and sign (e.g. 612.3 W.h.L-1).
        variance: observation noise variance of ``value`` [unit²] (>= 0, finite).
        reason: why it failed, else None.
        sensitivities: metric key -> ∂raw/∂metric used for the noise (propagate/central), for the record.
        noise_left_out: metric key -> why its CI is missing from ``variance`` (its re-simulation
            failed). The variance is then off in either direction (the metrics are correlated); the
            campaign file says so, and :func:`observations_for_model` gives such a trial at least the
            largest variance observed.
        summary: further named numbers of the evaluation (e.g. the tolerance statistics of a robust
            objective, :mod:`microdesign.objective.robust`); stored only when not empty.
    """

    status: str
    value: float = 0.0
    raw_value: float = 0.0
    variance: float = 0.0
    reason: str | None = None
    sensitivities: dict[str, float] = field(default_factory=dict)
    noise_left_out: dict[str, str] = field(default_factory=dict)
    summary: dict[str, float] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @classmethod
    def failed(cls, reason: str) -> ObjectiveValue:
        return cls(status="failed", reason=reason)

    def to_attrs(self) -> dict[str, Any]:
        """Plain HDF5 attributes (the campaign file's ``objective`` group, :mod:`microdesign.storage`):
        ``status``, ``value``, ``raw_value``, ``variance``, ``reason`` (``""`` for None), and the
        ``sensitivities`` and ``noise_left_out`` mappings as subgroups (and ``summary`` when not empty)."""
        out = {"status": self.status, "value": self.value, "raw_value": self.raw_value, "variance": self.variance,
               "reason": self.reason or "", "sensitivities": dict(self.sensitivities),
               "noise_left_out": dict(self.noise_left_out or {})}
        if self.summary:
            out["summary"] = {k: float(v) for k, v in self.summary.items()}
        return out

    @classmethod
    def from_attrs(cls, attrs: dict[str, Any]) -> ObjectiveValue:
        """The value :meth:`to_attrs` wrote (files without ``noise_left_out`` read it as empty)."""
        return cls(status=attrs["status"], value=attrs.get("value", 0.0), raw_value=attrs.get("raw_value", 0.0),
                   variance=attrs.get("variance", 0.0), reason=attrs.get("reason") or None,
                   sensitivities=dict(attrs.get("sensitivities") or {}),
                   noise_left_out=dict(attrs.get("noise_left_out") or {}),
                   summary=dict(attrs.get("summary") or {}))


DIRECTIONS = ("maximize", "minimize")


def direction_sign(direction: str) -> float:
    """``+1.0`` for a maximised objective, ``-1.0`` for a minimised one: ``value = sign x raw_value``
    (:class:`ObjectiveValue`); ``direction`` as configured and as stored in the campaign file.

    Raises:
        ConfigError: ``direction`` is neither ``"maximize"`` nor ``"minimize"``.
    """
    if direction not in DIRECTIONS:
        raise ConfigError("objective.direction", direction, "'maximize' or 'minimize'")
    return 1.0 if direction == "maximize" else -1.0


class Objective(Protocol):
    """What the campaign needs from an objective."""

    name: str
    unit: str
    direction: str

    def evaluate(self, cell: Any, metrics: Any, resimulate: Resimulate | None = None) -> ObjectiveValue:
        """Objective (and its noise) of one cell result computed from ``metrics``."""


class CellQuantity:
    """A field of the cell result as the objective, e.g. volumetric energy density at the campaign's power.

    Args:
        quantity: attribute of ``CellResult`` (``"volumetric_energy_density_Wh_L"``,
            ``"specific_energy_Wh_kg"``, ``"energy_Wh"``, ...).
        unit: its unit, for display (``"W.h.L-1"``).
        label: display name (default: the quantity).
        direction: ``"maximize"`` or ``"minimize"``.
        noise: ``"propagate"``, ``"central"`` or ``"none"`` (module docstring).
        metrics: metric keys whose CI is propagated (None: every metric with a finite CI).
        fixed_variance: variance used when ``noise == "none"`` [unit²].
        on_failure: ``"exclude"`` failed trials from the surrogate or ``"penalise"`` them
            (see :func:`observations_for_model`); failed trials are always kept in the campaign file.
        penalty: the value a penalised trial gets, in the quantity's unit (None: automatic).

    Raises:
        ConfigError: unknown direction, noise method or failure policy; negative variance.
    """

    def __init__(self, quantity: str = "volumetric_energy_density_Wh_L", unit: str = "W.h.L-1",
                 label: str | None = None, direction: str = "maximize", noise: str = "propagate",
                 metrics: Sequence[str] | None = None, fixed_variance: float = 0.0,
                 on_failure: str = "exclude", penalty: float | None = None):
        direction_sign(direction)  # raises ConfigError for an unknown direction
        if noise not in ("propagate", "central", "none"):
            raise ConfigError("objective.noise", noise, "'propagate', 'central' or 'none'")
        if not (math.isfinite(fixed_variance) and fixed_variance >= 0):
            raise ConfigError("objective.fixed_variance", fixed_variance, "a finite number >= 0")
        self.quantity, self.unit, self.direction, self.noise = str(quantity), str(unit), direction, noise
        self.name = label or self.quantity
        self.metrics = list(metrics) if metrics is not None else None
        self.fixed_variance = float(fixed_variance)
        if on_failure not in ("exclude", "penalise"):
            raise ConfigError("objective.on_failure", on_failure, "'exclude' or 'penalise'")
        self.on_failure = on_failure
        self.penalty = None if penalty is None else self.sign * float(penalty)

    def check_quantity(self) -> None:
        """Raise ConfigError unless ``quantity`` is a numeric field of ``CellResult`` and ``metrics`` are metric keys."""
        from dataclasses import fields

        from microdesign.cell.result import CellResult

        from microdesign.characterise.metrics import REQUIRED_METRICS, TORTUOSITY_IN_PLANE

        numeric = [f.name for f in fields(CellResult) if f.type in ("float", float)]
        if self.quantity not in numeric:
            raise ConfigError("objective.quantity", self.quantity, f"a numeric CellResult field, one of {numeric}")
        known = (*REQUIRED_METRICS, TORTUOSITY_IN_PLANE)
        bad = [k for k in (self.metrics or []) if k not in known]
        if bad:
            raise ConfigError("objective.metrics", bad, f"metric keys among {list(known)}")

    @property
    def sign(self) -> float:
        return direction_sign(self.direction)

    def _read(self, cell: Any) -> float | None:
        if cell is None or getattr(cell, "status", "failed") != "ok":
            return None
        v = float(getattr(cell, self.quantity))
        return v if math.isfinite(v) else None

    def evaluate(self, cell: Any, metrics: Any, resimulate: Resimulate | None = None) -> ObjectiveValue:
        """Objective of ``cell`` (computed from ``metrics``) and its noise variance.

        Args:
            cell: the ``CellResult`` at the metric means.
            metrics: the ``MicrostructureMetrics`` the cell was simulated from.
            resimulate: metrics -> ``CellResult`` with everything else unchanged (needed for
                ``propagate``/``central``; without it the variance is ``fixed_variance``).

        Returns:
            ``ObjectiveValue``; ``failed`` if the cell failed or the quantity is not finite.
        """
        f0 = self._read(cell)
        if f0 is None:
            reason = getattr(cell, "reason", None) or f"{self.quantity} is not a finite number"
            return ObjectiveValue.failed(f"cell: {reason}")
        variance, sens, left_out = self.fixed_variance, {}, {}
        if self.noise != "none" and resimulate is not None and metrics is not None:
            variance, sens, left_out = self._noise(f0, metrics, resimulate)
        return ObjectiveValue("ok", self.sign * f0, f0, float(variance), None, sens, left_out)

    # ------------------------------------------------------------------ noise
    def _noise(self, f0: float, metrics: Any, resimulate: Resimulate) -> tuple[float, dict[str, float], dict[str, str]]:
        """``(variance, sensitivities, left_out)`` by the configured method (module docstring)."""
        keys = noise.noisy_keys(metrics, self.metrics)
        if self.noise == "propagate":
            sens, left_out = noise.forward_differences(f0, metrics, keys, resimulate, self._read)
            if not sens:
                return self.fixed_variance, sens, left_out
            used = list(sens)
            g = np.array([sens[k] for k in used])
            return max(float(g @ noise.mean_covariance(metrics, used) @ g), 0.0), sens, left_out
        # central: mean +- CI95 per metric, uncorrelated
        var, sens, left_out = 0.0, {}, {}
        for k in keys:
            e = metrics.estimates[k]
            hw = e.ci95_half_width
            # every metric the cell model reads is a positive quantity (fractions, SSA, tau, conductivity):
            # no re-simulation at a value <= 0
            one_sided = e.mean > 0 >= e.mean - hw
            hi, why_hi = noise.try_resimulate(resimulate, self._read, noise.perturbed(metrics, k, e.mean + hw))
            if one_sided:
                lo, why_lo, half_widths = f0, None, 1
            else:
                lo, why_lo = noise.try_resimulate(resimulate, self._read, noise.perturbed(metrics, k, e.mean - hw))
                half_widths = 2
            if hi is None or lo is None:
                left_out[k] = "; ".join(f"{side} CI95: {why}" for side, why in (("+", why_hi), ("-", why_lo)) if why)
                log.warning("objective noise: %r left out (%s)", k, left_out[k])
                continue
            sens[k] = (hi - lo) / (half_widths * hw)
            # the half-width is Student t (n - 1 dof) x standard error: divide by the same quantile
            # (noisy_keys keeps metrics from more than one cube only)
            var += ((hi - lo) / (half_widths * float(stats.t.ppf(0.975, e.n - 1)))) ** 2
        return var, sens, left_out


def observations_for_model(values: Sequence[ObjectiveValue], on_failure: str = "exclude",
                           penalty: float | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Which trials the surrogate sees, and with what value and noise.

    Args:
        values: objective values of the finished trials, in trial order.
        on_failure: ``"exclude"`` (failed trials are left out of the GP) or ``"penalise"`` (they enter
            with ``penalty``).
        penalty: value given to failed trials (maximised scale); None: the worst completed value
            minus half the range of completed values (0 if there is none).

    Returns:
        ``(mask, Y, Yvar)``: ``mask`` (bool, one per input value) of trials used, and their values
        and variances (``n_used`` each). Penalised trials get the median observed variance; a trial
        with metrics left out of its noise (``noise_left_out``) gets the largest observed variance.

    Raises:
        ConfigError: unknown ``on_failure``.
    """
    if on_failure not in ("exclude", "penalise"):
        raise ConfigError("objective.on_failure", on_failure, "'exclude' or 'penalise'")
    ok = np.array([v.ok for v in values], bool)
    y_ok = np.array([v.value for v in values if v.ok], float)
    var_ok = np.array([v.variance for v in values if v.ok], float)
    var_ok = noise.distrust_partial(var_ok, [bool(getattr(v, "noise_left_out", None)) for v in values if v.ok])
    if on_failure == "exclude" or ok.all():
        return ok, y_ok, var_ok
    if penalty is None:
        penalty = float(y_ok.min() - 0.5 * np.ptp(y_ok)) if y_ok.size else 0.0
    med = float(np.median(var_ok)) if var_ok.size else 0.0
    Y = np.array([v.value if v.ok else penalty for v in values], float)
    V = np.array([v.variance if v.ok else med for v in values], float)
    return np.ones(len(values), bool), Y, V
