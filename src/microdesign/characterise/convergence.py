"""Convergence analysis: how many cubes of which size give each metric's mean within a target CI.

For every cube size L, ``max(counts)`` cubes are drawn once (seeded) and measured once; the
estimate for ``n`` cubes uses the first ``n``. The smallest setting is the one with the least
voxels ``n * L^3`` (the solve cost) whose every metric meets the target relative 95% CI
half-width -- the analysis that chose 39 x 128^3 in Kench et al., Matter 7 (2024).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from microdesign.characterise.characteriser import Characteriser
from microdesign.characterise.metrics import PERCOLATING_FRACTIONS
from microdesign.errors import ConfigError, require

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ConvergenceRow:
    """One (cube size, count, metric) cell of the table."""

    cube_size_voxels: int
    n_cubes: int
    metric: str
    mean: float
    std: float
    ci95_half_width: float
    relative_ci95: float


@dataclass(frozen=True)
class ConvergenceResult:
    """The convergence table and its conclusion.

    Attributes:
        rows: one row per cube size, count and metric.
        target_relative_ci: the target relative 95% CI half-width.
        smallest: ``(L, n)`` of the cheapest setting meeting the target, or None.
        failures: cube size -> failure reason where a size could not be characterised.
        predicted_n: cube size -> cubes predicted to meet the target from the largest count
            (``n_max (worst_rel_ci / target)^2``).
    """

    rows: list[ConvergenceRow]
    target_relative_ci: float
    smallest: tuple[int, int] | None
    failures: dict[int, str] = field(default_factory=dict)
    predicted_n: dict[int, int] = field(default_factory=dict)


def convergence_analysis(characteriser: Characteriser, source_for_size: Callable[[int], Callable[[int, int], np.ndarray]],
                         voxel_size_m: float, cube_sizes: Sequence[int], counts: Sequence[int],
                         target_relative_ci: float = 0.01, seed: int = 0) -> ConvergenceResult:
    """Mean and CI of each metric for every cube size and count.

    Args:
        characteriser: measures the cubes.
        source_for_size: ``L -> cube source (n_cubes, seed) -> n x L x L x L``.
        voxel_size_m: voxel edge [m].
        cube_sizes: cube sides L [voxels], e.g. ``[64, 96, 128]``.
        counts: cube counts, e.g. ``[4, 8, 16, 39]`` (each >= 2).
        target_relative_ci: target relative 95% CI half-width.
        seed: seed of the cube draws (the same for every size).

    Returns:
        :class:`ConvergenceResult`.

    Raises:
        ConfigError: empty sizes/counts, a count < 2, a target outside (0, 1).
    """
    sizes = sorted({int(s) for s in cube_sizes})
    ns = sorted({int(n) for n in counts})
    require(len(sizes) > 0 and sizes[0] >= 3, "cube_sizes", list(cube_sizes), "cube sides >= 3")
    require(len(ns) > 0 and ns[0] >= 2, "counts", list(counts), "cube counts >= 2")
    require(0 < target_relative_ci < 1, "target_relative_ci", target_relative_ci, "a number in (0, 1)")
    rows: list[ConvergenceRow] = []
    failures: dict[int, str] = {}
    predicted: dict[int, int] = {}
    meeting: list[tuple[int, int]] = []
    for L in sizes:
        cubes = source_for_size(L)(ns[-1], seed)
        if cubes.shape[0] != ns[-1] or cubes.shape[1] != L:
            raise ConfigError("cube source", cubes.shape, f"{ns[-1]} x {L} x {L} x {L}")
        values, reason = characteriser.measure(cubes, voxel_size_m)
        reason = reason or characteriser.percolation_reason(values)
        # the percolating fractions are feasibility shares, not metrics with a CI target
        values = {k: v for k, v in values.items() if k not in PERCOLATING_FRACTIONS}
        if reason:
            log.warning("cube size %d: %s", L, reason)
            failures[L] = reason
            continue
        tau_estimator = getattr(characteriser, "tau_estimator", "mean")
        for n in ns:
            worst = 0.0
            # pore tortuosity: over the percolating cubes, by the characteriser's estimator
            for k, e in Characteriser.estimates({k: v[:n] for k, v in values.items()}, tau_estimator).items():
                rows.append(ConvergenceRow(L, n, k, e.mean, e.std, e.ci95_half_width, e.relative_ci95))
                worst = max(worst, e.relative_ci95)
            if worst <= target_relative_ci:
                meeting.append((L, n))
        worst_max = max(e.relative_ci95 for e in Characteriser.estimates(values, tau_estimator).values())
        predicted[L] = int(np.ceil(ns[-1] * (worst_max / target_relative_ci) ** 2))
        log.info("cube size %d: worst relative CI %.4f with %d cubes (predicted %d cubes for %.3f)", L, worst_max,
                 ns[-1], predicted[L], target_relative_ci)
    smallest = min(meeting, key=lambda s: (s[1] * s[0] ** 3, s[0])) if meeting else None
    return ConvergenceResult(rows=rows, target_relative_ci=float(target_relative_ci), smallest=smallest,
                             failures=failures, predicted_n=predicted)
