"""Fidelity levels of a multi-fidelity campaign and the cost model of one evaluation per level.

A level is one way of evaluating a design: how many cubes of which side the characterisation uses
(the expensive part of an evaluation), the fidelity value the GP sees (in ``(0, 1]``, the highest
level exactly 1) and the prior cost of one evaluation in seconds (measured beforehand).

:class:`LevelCostModel` starts from those prior seconds and is refitted from the campaign's own
timings: the priors are first rescaled by the pooled speed ratio of the machine (observed seconds
over prior seconds, all observations together), then each level's cost is the mean of its observed
seconds blended with the rescaled prior, weighted by ``prior_count`` pseudo-observations. A level
not yet observed thus follows the machine's measured speed, and a level observed many times is its
own mean. This is the conjugate-normal posterior mean with ``prior_count`` prior observations
(Gelman et al., *Bayesian Data Analysis*, 3rd ed., §2.5); the cost enters BoTorch's
``InverseCostWeightedUtility`` (docs/multi_fidelity.md).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from microdesign.errors import ConfigError, check_positive, require

log = logging.getLogger(__name__)

FIDELITY_TOL = 1e-6  # a fidelity value matches a level when within this distance
FIDELITY_KEY = "fidelity"  # the trial input (campaign file: inputs/fidelity) holding the level's fidelity


@dataclass(frozen=True)
class FidelityLevel:
    """One evaluation level.

    Attributes:
        name: label stored with each trial (``"low"``, ``"high"``).
        fidelity: the GP's fidelity input, in ``(0, 1]``; the highest level is 1 (BoTorch's target fidelity).
        cost_s: prior cost of one evaluation at this level [s] (measured on the machine that runs it).
        n_cubes: cubes characterised per design at this level (None: the campaign's own setting).
        cube_size_voxels: side of those cubes [voxels] (None: the campaign's own setting).
    """

    name: str
    fidelity: float
    cost_s: float
    n_cubes: int | None = None
    cube_size_voxels: int | None = None


def parse_levels(levels: Sequence[Mapping[str, Any] | FidelityLevel], parameter: str = "fidelity_levels.levels"
                 ) -> tuple[FidelityLevel, ...]:
    """Validate fidelity levels from config (``[{name, fidelity, cost_s, n_cubes, cube_size_voxels}, ...]``).

    Args:
        levels: two or more levels, in any order.
        parameter: the config key named in errors.

    Returns:
        The levels sorted by increasing fidelity.

    Raises:
        ConfigError: fewer than two levels, a missing or unknown key, duplicate names or fidelities,
            a fidelity outside ``(0, 1]``, a highest fidelity other than 1, a non-positive cost, or a
            cube count/size that is not a positive integer.
    """
    require(levels is not None and len(levels) >= 2, parameter, levels,
            "a list of two or more levels (e.g. fidelity_levels=two_level)")
    keys = {"name", "fidelity", "cost_s", "n_cubes", "cube_size_voxels"}
    out = []
    for k, lv in enumerate(levels):
        if isinstance(lv, FidelityLevel):
            out.append(lv)
            continue
        require(isinstance(lv, Mapping), f"{parameter}[{k}]", lv, f"a mapping with keys {sorted(keys)}")
        unknown = sorted(set(lv) - keys)
        require(not unknown, f"{parameter}[{k}]", unknown, f"keys among {sorted(keys)}")
        for key in ("name", "fidelity", "cost_s"):
            require(lv.get(key) is not None, f"{parameter}[{k}].{key}", None, "a value")
        try:
            fid, cost = float(lv["fidelity"]), float(lv["cost_s"])
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"{parameter}[{k}]", dict(lv), "numeric fidelity and cost_s") from exc
        require(0.0 < fid <= 1.0, f"{parameter}[{k}].fidelity", fid, "a value in (0, 1]")
        check_positive(f"{parameter}[{k}].cost_s", cost)
        cubes = {}
        for key in ("n_cubes", "cube_size_voxels"):
            v = lv.get(key)
            if v is not None:
                require(isinstance(v, int) and not isinstance(v, bool) and v >= 1, f"{parameter}[{k}].{key}", v,
                        "an integer >= 1 or null")
            cubes[key] = v
        out.append(FidelityLevel(str(lv["name"]), fid, cost, **cubes))
    out.sort(key=lambda lv: lv.fidelity)
    names = [lv.name for lv in out]
    require(len(set(names)) == len(names), parameter, names, "distinct level names")
    fids = np.array([lv.fidelity for lv in out])
    require(bool(np.all(np.diff(fids) > FIDELITY_TOL)), parameter, fids.tolist(), "distinct fidelities")
    require(abs(fids[-1] - 1.0) <= FIDELITY_TOL, f"{parameter}[-1].fidelity", float(fids[-1]),
            "1 for the highest level (the target fidelity)")
    return tuple(out)


def level_index(levels: Sequence[FidelityLevel], fidelity: np.ndarray | float) -> np.ndarray:
    """Index of the level of each fidelity value (levels sorted as :func:`parse_levels` returns them).

    Raises:
        ConfigError: a value that is no level's fidelity (within 1e-6).
    """
    f = np.atleast_1d(np.asarray(fidelity, dtype=np.float64))
    fids = np.array([lv.fidelity for lv in levels])
    dist = np.abs(f[:, None] - fids[None, :])
    idx = dist.argmin(axis=1)
    bad = dist[np.arange(f.size), idx] > FIDELITY_TOL
    if bad.any():
        raise ConfigError("fidelity", float(f[bad][0]), f"one of the levels' fidelities {fids.tolist()}")
    return idx


class LevelCostModel:
    """Seconds per evaluation at each level: prior seconds refitted from observed timings.

    Args:
        levels: the levels (their ``cost_s`` is the prior), sorted by fidelity.
        prior_count: weight of the prior, in pseudo-observations (> 0).
        seconds_per_level: fitted costs [s], one per level (None: the priors).

    Raises:
        ConfigError: ``prior_count <= 0``.
    """

    def __init__(self, levels: Sequence[FidelityLevel], prior_count: float = 1.0,
                 seconds_per_level: np.ndarray | None = None):
        check_positive("optimiser.cost_prior_count", prior_count)
        self.levels = tuple(levels)
        self.prior_count = float(prior_count)
        prior = np.array([lv.cost_s for lv in self.levels], dtype=np.float64)
        self.seconds_per_level = prior if seconds_per_level is None else np.asarray(seconds_per_level, np.float64)

    @property
    def fidelities(self) -> np.ndarray:
        return np.array([lv.fidelity for lv in self.levels])

    def refit(self, fidelity: np.ndarray, seconds: np.ndarray) -> LevelCostModel:
        """A model refitted from observed evaluations (the priors are kept; this model is unchanged).

        Args:
            fidelity: fidelity of each observed evaluation, shape ``n``.
            seconds: its wall time [s], shape ``n``; non-finite or non-positive values (unknown
                timings, e.g. a trial interrupted by a crash) are left out.

        Returns:
            A new :class:`LevelCostModel` with ``seconds_per_level`` = the blended estimate.

        Raises:
            ConfigError: a fidelity that is no level's, or arrays of different lengths.
        """
        f = np.asarray(fidelity, dtype=np.float64).reshape(-1)
        s = np.asarray(seconds, dtype=np.float64).reshape(-1)
        require(f.shape == s.shape, "seconds", s.shape, f"one timing per observation ({f.shape[0]})")
        ok = np.isfinite(s) & (s > 0)
        prior = np.array([lv.cost_s for lv in self.levels])
        if not ok.any():
            return LevelCostModel(self.levels, self.prior_count)
        idx = level_index(self.levels, f[ok])
        s = s[ok]
        speed = s.sum() / prior[idx].sum()  # pooled machine speed ratio: observed over prior seconds
        n = np.bincount(idx, minlength=len(self.levels)).astype(np.float64)
        total = np.bincount(idx, weights=s, minlength=len(self.levels))
        fitted = (self.prior_count * speed * prior + total) / (self.prior_count + n)
        log.debug("cost model refitted: speed ratio %.3g, seconds per level %s", speed, fitted.tolist())
        return LevelCostModel(self.levels, self.prior_count, fitted)

    def with_overhead(self, overhead_s: float) -> LevelCostModel:
        """A model whose every level costs ``overhead_s`` more (e.g. the proposal that precedes each
        evaluation, whatever its level; this model is unchanged).

        Raises:
            ConfigError: a negative or non-finite ``overhead_s``.
        """
        o = float(overhead_s)
        require(np.isfinite(o) and o >= 0.0, "overhead_s", overhead_s, "a finite number of seconds >= 0")
        return LevelCostModel(self.levels, self.prior_count, self.seconds_per_level + o)

    def seconds(self, fidelity: np.ndarray | float) -> np.ndarray:
        """Cost [s] of one evaluation at each given fidelity (exact level values), shape ``n``."""
        return self.seconds_per_level[level_index(self.levels, fidelity)]

    def botorch_model(self, fidelity_column: int):
        """The cost as a BoTorch ``DeterministicModel`` for ``InverseCostWeightedUtility``.

        Args:
            fidelity_column: index of the fidelity in the model's inputs.

        Returns:
            A model mapping inputs ``... x q x D`` to costs ``... x q x 1`` [s], piecewise-linear in
            the fidelity between levels (exact at the levels, constant beyond the end levels).
        """
        return _piecewise_cost_class()(self.fidelities, self.seconds_per_level, fidelity_column)


@functools.cache
def _piecewise_cost_class():
    """The ``DeterministicModel`` subclass, defined on first use (BoTorch is imported lazily)."""
    from botorch.models.deterministic import DeterministicModel

    class PiecewiseLinearFidelityCost(DeterministicModel):
        """Cost [s] as a piecewise-linear function of the fidelity column.

        Args:
            fidelities: level fidelities, increasing, shape ``k``.
            seconds: cost per level [s], shape ``k``.
            fidelity_column: index of the fidelity in the inputs.
        """

        def __init__(self, fidelities: np.ndarray, seconds: np.ndarray, fidelity_column: int):
            super().__init__()
            self.register_buffer("fidelities", torch.as_tensor(np.asarray(fidelities, np.float64)))
            self.register_buffer("costs", torch.as_tensor(np.asarray(seconds, np.float64)))
            self.fidelity_column = int(fidelity_column)
            self._num_outputs = 1

        def forward(self, X: torch.Tensor) -> torch.Tensor:
            f, c = self.fidelities, self.costs
            s = X[..., self.fidelity_column].to(f).clamp(float(f[0]), float(f[-1]))
            hi = torch.searchsorted(f, s.contiguous()).clamp(1, f.numel() - 1)
            lo = hi - 1
            w = (s - f[lo]) / (f[hi] - f[lo])
            return (c[lo] + w * (c[hi] - c[lo])).unsqueeze(-1).to(X)

    return PiecewiseLinearFidelityCost
