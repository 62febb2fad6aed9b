"""A vector objective: several cell quantities at once (e.g. energy at a low and at a high power).

* :class:`CellQuantities` - several numbers of one :class:`~microdesign.cell.result.CellResult`
  (fields, or ``extra`` keys such as ``"Volumetric energy density at 200 W [W.h.L-1]"`` written by
  :class:`~microdesign.case_studies.stages.MultiPowerCellModel`), each with its observation noise
  from the characterisation CI by first-order propagation (GUM §5.1.2 with correlated inputs,
  JCGM 100:2008; the same method as :class:`microdesign.objective.CellQuantity`, one re-simulation
  per metric shared by all objectives).
* :func:`multi_objective_observations` - the ``n x m`` history a multi-objective proposer
  (:class:`microdesign.optim.multi_objective.HypervolumeProposer`) sees; used by
  :class:`microdesign.campaign.loop.MultiObjectiveCampaign`.

Storage: the campaign file stores one scalar objective per trial. The vector goes, losslessly, into
the stored objective's ``sensitivities`` under the keys ``"objective[j] value"``,
``"objective[j] raw value"`` and ``"objective[j] variance"`` (:func:`vector_of` reads it back); the
scalar ``value`` is objective 0.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from microdesign.errors import ConfigError
from microdesign.objective import noise
from microdesign.objective.scalar import DIRECTIONS, ObjectiveValue, direction_sign

log = logging.getLogger(__name__)


def _vkey(j: int, what: str) -> str:
    return f"objective[{j}] {what}"


def vector_of(value: Any, m: int) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """``(values, raw_values, variances)`` (shape ``m`` each) of a stored vector objective, or None."""
    if value is None or not getattr(value, "ok", False):
        return None
    s = value.sensitivities or {}
    try:
        vals = np.array([float(s[_vkey(j, "value")]) for j in range(m)])
        raw = np.array([float(s[_vkey(j, "raw value")]) for j in range(m)])
        var = np.array([float(s[_vkey(j, "variance")]) for j in range(m)])
    except KeyError:
        return None
    return vals, raw, var


class CellQuantities:
    """Several cell quantities as objectives, each maximised or minimised, with propagated noise.

    Args:
        objectives: one mapping per objective: ``quantity`` (a ``CellResult`` field or an ``extra``
            key), ``label``, ``unit``, ``direction`` (``"maximize"`` | ``"minimize"``).
        noise: ``"propagate"`` or ``"none"``.
        metrics: metric keys whose CI is propagated (None: every metric with a finite CI).

    Raises:
        ConfigError: fewer than two objectives, a missing quantity, a bad direction or noise mode.
    """

    on_failure = "exclude"
    penalty = None

    def __init__(self, objectives: Sequence[Mapping[str, Any]], noise: str = "propagate",
                 metrics: Sequence[str] | None = None):
        objs = [dict(o) for o in objectives]
        if len(objs) < 2:
            raise ConfigError("objective.objectives", objs, "two or more objectives")
        for k, o in enumerate(objs):
            if not o.get("quantity"):
                raise ConfigError(f"objective.objectives[{k}].quantity", o.get("quantity"), "a CellResult field or extra key")
            o.setdefault("direction", "maximize")
            if o["direction"] not in DIRECTIONS:
                raise ConfigError(f"objective.objectives[{k}].direction", o["direction"], "'maximize' or 'minimize'")
            o.setdefault("label", o["quantity"])
            o.setdefault("unit", "")
        if noise not in ("propagate", "none"):
            raise ConfigError("objective.noise", noise, "'propagate' or 'none'")
        self.objectives, self.noise = objs, noise
        self.metrics = None if metrics is None else list(metrics)
        self.name = " & ".join(o["label"] for o in objs)
        self.unit = objs[0]["unit"]
        self.direction = "maximize"
        self.sign = 1.0
        self.signs = np.array([direction_sign(o["direction"]) for o in objs])

    @property
    def m(self) -> int:
        return len(self.objectives)

    def read(self, cell: Any) -> np.ndarray | None:
        """Raw quantities of ``cell`` (shape ``m``), or None if it failed or one is missing / not finite."""
        if cell is None or getattr(cell, "status", "failed") != "ok":
            return None
        out = []
        for o in self.objectives:
            q = o["quantity"]
            v = getattr(cell, q, None) if not q.endswith("]") else None
            if v is None:
                v = (getattr(cell, "extra", None) or {}).get(q)
            if v is None or not math.isfinite(float(v)):
                return None
            out.append(float(v))
        return np.array(out)

    def evaluate(self, cell: Any, metrics: Any, resimulate: Callable[[Any], Any] | None = None) -> ObjectiveValue:
        """The vector objective packed into an :class:`~microdesign.objective.ObjectiveValue` (module docstring)."""
        f0 = self.read(cell)
        if f0 is None:
            return ObjectiveValue.failed(f"cell: {getattr(cell, 'reason', None) or 'an objective is missing or not finite'}")
        var = np.zeros(self.m)
        sens: dict[str, float] = {}
        left_out: dict[str, str] = {}
        if self.noise == "propagate" and resimulate is not None and metrics is not None:
            var, sens, left_out = self._noise(f0, metrics, resimulate)
        packed = dict(sens)
        for j in range(self.m):
            packed[_vkey(j, "value")] = float(self.signs[j] * f0[j])
            packed[_vkey(j, "raw value")] = float(f0[j])
            packed[_vkey(j, "variance")] = float(var[j])
        return ObjectiveValue("ok", float(self.signs[0] * f0[0]), float(f0[0]), float(var[0]), None, packed, left_out)

    def _noise(self, f0: np.ndarray, metrics: Any, resimulate: Callable[[Any], Any]
               ) -> tuple[np.ndarray, dict[str, float], dict[str, str]]:
        """``(variances m, sensitivities of objective 0, left_out)``: one re-simulation per metric for all objectives."""
        keys = noise.noisy_keys(metrics, self.metrics)
        grads, left_out = noise.forward_differences(f0, metrics, keys, resimulate, self.read)
        if not grads:
            return np.zeros(self.m), {}, left_out
        used = list(grads)
        G = np.stack([grads[k] for k in used])  # k x m
        C = noise.mean_covariance(metrics, used)
        var = np.maximum(np.einsum("km,kl,lm->m", G, C, G), 0.0)
        return var, {k: float(G[i, 0]) for i, k in enumerate(used)}, left_out


def multi_objective_observations(trials: Sequence[Any], names: Sequence[str], m: int
                                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[int]]:
    """``(X n x d, Y n x m, Yvar n x m, indices)`` of the completed trials with a vector objective; a trial
    with metrics left out of its noise (``noise_left_out``) gets, per objective, the largest variance observed."""
    X, Y, V, idx, partial = [], [], [], [], []
    for t in trials:
        if t.status != "completed":
            continue
        vec = vector_of(t.objective, m)
        if vec is None:
            continue
        X.append([t.inputs[n] for n in names])
        Y.append(vec[0])
        V.append(vec[2])
        idx.append(t.index)
        partial.append(bool(getattr(t.objective, "noise_left_out", None)))
    d = len(names)
    V = noise.distrust_partial(np.array(V, float).reshape(-1, m), partial)
    return np.array(X, float).reshape(-1, d), np.array(Y, float).reshape(-1, m), V, idx
