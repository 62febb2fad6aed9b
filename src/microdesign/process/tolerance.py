"""Manufacturing tolerances propagated by Monte Carlo (docs/process_model.md).

Each uncertain input carries a :class:`Tolerance`: a normal distribution (``relative`` or ``absolute``
is one standard deviation) or a uniform one (``relative`` or ``absolute`` is the half-width, i.e.
"± x %"). :func:`propagate` draws ``N`` samples of all inputs at once (vectorised, seeded with
``numpy.random.default_rng``), evaluates the model once on arrays, and returns the mean, standard
deviation and the Pearson correlation matrix of every output.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np

from microdesign.errors import ConfigError, require

_DISTRIBUTIONS = ("normal", "uniform")


@dataclass(frozen=True)
class Tolerance:
    """Distribution of one input around its base value.

    Attributes:
        distribution: ``"normal"`` (spread = 1 standard deviation) or ``"uniform"`` (spread = half-width).
        relative: spread as a fraction of |base| (0.02 = ±2 %).
        absolute: spread in the input's own unit. Exactly one of relative/absolute is given.

    Raises:
        ConfigError: unknown distribution, both or neither spread given, or a negative spread.
    """

    distribution: str = "normal"
    relative: float | None = None
    absolute: float | None = None

    def __post_init__(self) -> None:
        require(self.distribution in _DISTRIBUTIONS, "distribution", self.distribution, f"one of {_DISTRIBUTIONS}", "tolerance")
        require((self.relative is None) != (self.absolute is None), "relative/absolute",
                (self.relative, self.absolute), "exactly one of them", "tolerance")
        spread = self.relative if self.relative is not None else self.absolute
        require(np.isfinite(spread) and spread >= 0, "relative" if self.relative is not None else "absolute",
                spread, "a finite spread >= 0", "tolerance")

    def spread(self, base: float) -> float:
        return abs(base) * self.relative if self.relative is not None else float(self.absolute)

    def sample(self, base: float, n: int, rng: np.random.Generator) -> np.ndarray:
        """``n`` draws around ``base``."""
        s = self.spread(base)
        if self.distribution == "normal":
            return base + s * rng.standard_normal(n)
        return base + rng.uniform(-s, s, n)


@dataclass(frozen=True)
class ToleranceResult:
    """Monte Carlo summary.

    Attributes:
        output_names: outputs in the order of the matrix, shape ``k``.
        mean, std: per output (std with ddof=1).
        correlation: ``k x k`` Pearson correlation (NaN rows/columns for outputs with zero variance).
        n_samples, seed: what was drawn.
        samples: output name -> array ``N``.
    """

    output_names: tuple[str, ...]
    mean: dict[str, float]
    std: dict[str, float]
    correlation: np.ndarray
    n_samples: int
    seed: int
    samples: dict[str, np.ndarray]

    def corr(self, a: str, b: str) -> float:
        return float(self.correlation[self.output_names.index(a), self.output_names.index(b)])


def propagate(model: Callable[[Mapping[str, object]], Mapping[str, object]], base_inputs: Mapping[str, float],
              tolerances: Mapping[str, Tolerance], n_samples: int = 10_000, seed: int = 0) -> ToleranceResult:
    """Propagate input tolerances through a vectorised model.

    Args:
        model: maps a dict of inputs (floats or arrays ``N``) to a dict of outputs (arrays ``N``).
        base_inputs: nominal inputs.
        tolerances: input name -> Tolerance; inputs without one stay at their base value.
        n_samples: N (≥ 2).
        seed: seed of ``numpy.random.default_rng``.

    Raises:
        ConfigError: N < 2 or a tolerance on an input not in ``base_inputs`` (before sampling);
            whatever the model raises for a sampled value outside its valid range.
    """
    require(int(n_samples) >= 2, "n_samples", n_samples, "an integer >= 2", "tolerance propagation")
    for name in tolerances:
        if name not in base_inputs:
            raise ConfigError(f"tolerances.{name}", name, f"an input of the model {sorted(base_inputs)}", "tolerance propagation")
    rng = np.random.default_rng(seed)
    inputs: dict[str, object] = dict(base_inputs)
    for name in sorted(tolerances):  # sorted: the same seed gives the same draws whatever the dict order
        inputs[name] = tolerances[name].sample(float(base_inputs[name]), int(n_samples), rng)
    raw = model(inputs)
    samples = {k: np.broadcast_to(np.asarray(v, dtype=float), (int(n_samples),)).copy() for k, v in raw.items()}
    names = tuple(samples)
    matrix = np.vstack([samples[k] for k in names])
    std = matrix.std(axis=1, ddof=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        centred = matrix - matrix.mean(axis=1, keepdims=True)
        cov = centred @ centred.T / (int(n_samples) - 1)
        correlation = cov / np.outer(std, std)
    return ToleranceResult(output_names=names, mean={k: float(samples[k].mean()) for k in names},
                           std=dict(zip(names, map(float, std))), correlation=correlation,
                           n_samples=int(n_samples), seed=int(seed), samples=samples)
