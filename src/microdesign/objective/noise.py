"""Observation noise of an objective from the characterisation CI: the shared propagation steps.

Used by the scalar (:class:`~microdesign.objective.CellQuantity`) and the vector
(:class:`~microdesign.objective.vector.CellQuantities`) objectives. The method is first-order
(delta-method) propagation with correlated inputs, ``Var f ≈ gᵀ C g`` (JCGM 100:2008, GUM §5.1.2
and §5.2): ``g_k`` is a forward difference of one standard error ``s_k = σ_k/√n`` of metric ``k``
(one extra cell simulation per metric, the backward step if the forward one fails), and ``C`` the
covariance of the metric means from the paired per-cube values.

A re-simulation that fails is never silent: the metric is left out of ``g`` and returned with the
reason, which the objective stores in :attr:`~microdesign.objective.ObjectiveValue.noise_left_out`.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

Resimulate = Callable[[Any], Any]  # MicrostructureMetrics -> CellResult
Read = Callable[[Any], Any]  # CellResult -> objective value(s), or None if failed / not finite


def perturbed(metrics: Any, key: str, new_mean: float) -> Any:
    """A copy of ``metrics`` with one metric's estimate at ``new_mean`` and its per-cube values moved alike
    (``MetricEstimate.with_mean``: shifted for a mean, scaled for a transport-averaged τ)."""
    return replace(metrics, estimates={**metrics.estimates, key: metrics.estimates[key].with_mean(new_mean)})


def noisy_keys(metrics: Any, selected: Sequence[str] | None) -> list[str]:
    """Metric keys (of ``selected``, None: all but the percolating fractions, which are feasibility shares
    and not cell-model inputs) with a finite, positive CI from more than one cube."""
    from microdesign.characterise.metrics import PERCOLATING_FRACTIONS

    out = []
    for k in (selected if selected is not None else [k for k in metrics.estimates if k not in PERCOLATING_FRACTIONS]):
        e = metrics.estimates.get(k)
        if e is not None and e.n > 1 and math.isfinite(e.ci95_half_width) and e.ci95_half_width > 0:
            out.append(k)
    return out


def mean_covariance(metrics: Any, keys: Sequence[str]) -> np.ndarray:
    """Covariance ``k x k`` of the metric estimates: paired per-cube sample covariance / n (of the linearised
    values for a ratio estimate, the delta method), else diagonal ``s_k²``."""
    vals = [np.asarray(metrics.estimates[k].linearised_values(), float) for k in keys]
    n = vals[0].size
    if all(v.size == n for v in vals) and n > 1:
        return np.atleast_2d(np.cov(np.stack(vals), ddof=1)) / n
    return np.diag([metrics.estimates[k].std ** 2 / metrics.estimates[k].n for k in keys])


def try_resimulate(resimulate: Resimulate, read: Read, metrics: Any) -> tuple[Any, str | None]:
    """``(value, None)`` of the cell re-simulated from ``metrics``, or ``(None, reason)``; never raises."""
    try:
        cell = resimulate(metrics)
        value = read(cell)
    except Exception as exc:  # noqa: BLE001 - a stage never raises through the loop
        return None, f"re-simulation raised {type(exc).__name__}: {exc}"
    if value is None:
        return None, f"re-simulated cell failed: {getattr(cell, 'reason', None) or 'objective not finite'}"
    return value, None


def forward_differences(f0: Any, metrics: Any, keys: Sequence[str], resimulate: Resimulate,
                        read: Read) -> tuple[dict[str, Any], dict[str, str]]:
    """``∂f/∂m_k`` by a step of one standard error (forward, else backward) for each metric key.

    Args:
        f0: objective value(s) at the metric means (float or array ``m``).
        metrics: the ``MicrostructureMetrics`` the cell was simulated from.
        keys: metric keys to differentiate (see :func:`noisy_keys`).
        resimulate: metrics -> ``CellResult`` with everything else unchanged.
        read: ``CellResult`` -> value(s) like ``f0``, or None.

    Returns:
        ``(gradients, left_out)``: metric key -> derivative (like ``f0``), and metric key -> why both
        re-simulations failed.
    """
    grads: dict[str, Any] = {}
    left_out: dict[str, str] = {}
    for k in keys:
        e = metrics.estimates[k]
        h = e.std / math.sqrt(e.n)
        reasons = []
        for step in (h, -h):
            f1, why = try_resimulate(resimulate, read, perturbed(metrics, k, e.mean + step))
            if f1 is not None:
                grads[k] = (f1 - f0) / step
                break
            reasons.append(f"{'+' if step > 0 else '-'}1 standard error: {why}")
        else:
            left_out[k] = "; ".join(reasons)
            log.warning("objective noise: %r left out (%s)", k, left_out[k])
    return grads, left_out


def distrust_partial(variances: np.ndarray, partial: Sequence[bool]) -> np.ndarray:
    """Variances with each trial whose noise lacks a metric (``noise_left_out``) raised to the largest observed.

    Such a variance is off in either direction (the metrics are correlated), so the surrogate gets it
    as the least precise observation rather than as a possibly over-precise one.

    Args:
        variances: ``n`` (scalar objective) or ``n x m`` (vector objective, per objective) [unit²].
        partial: ``n`` flags, True where a metric was left out of the trial's noise.

    Returns:
        Variances of the same shape.
    """
    V = np.asarray(variances, float)
    p = np.asarray(partial, bool)
    if not p.any():
        return V
    return np.where(p.reshape(-1, *([1] * (V.ndim - 1))), np.maximum(V, V.max(0)), V)
