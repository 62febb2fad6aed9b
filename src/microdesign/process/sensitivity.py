"""Global sensitivity of the electrode structure to the manufacturing inputs (Sobol indices, SALib).

Which process inputs drive porosity, thickness and the phase fractions, and how much through
interactions? :func:`sobol_indices` samples the configured input ranges with Saltelli's scheme
(``SALib.sample.sobol``), evaluates the vectorised process chain once on all samples, and returns
first-order S1 and total-order ST indices with their 95 % bootstrap confidence (``SALib.analyze.sobol``).
Sources: Saltelli et al., Comput. Phys. Commun. 181 (2010) 259; Herman & Usher, JOSS 2 (2017) 97 (SALib).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from microdesign.errors import ConfigError
from microdesign.process.chain import DEFAULT_INPUTS, evaluate_process
from microdesign.process.drying import DryingModel


@dataclass(frozen=True)
class SobolResult:
    """Sobol indices of each output w.r.t. each varied input.

    Attributes:
        input_names: the varied inputs, shape ``k``.
        first_order, total_order: output name -> array ``k`` (S1, ST).
        first_order_ci95, total_order_ci95: output name -> array ``k`` (bootstrap half-widths).
        n_evaluations: process-chain evaluations made (N·(k + 2)).
    """

    input_names: tuple[str, ...]
    first_order: dict[str, np.ndarray]
    total_order: dict[str, np.ndarray]
    first_order_ci95: dict[str, np.ndarray]
    total_order_ci95: dict[str, np.ndarray]
    n_evaluations: int


def sobol_indices(ranges: Mapping[str, tuple[float, float]], base_inputs: Mapping[str, float] | None = None,
                  drying: DryingModel | None = None, outputs: tuple[str, ...] = ("porosity", "thickness_m",
                  "am_volume_fraction", "cbd_volume_fraction", "coating_density_g_cm3"),
                  n_base_samples: int = 1024, seed: int = 0) -> SobolResult:
    """Sobol indices of process outputs over uniform input ranges.

    Args:
        ranges: input name -> (low, high); each a key of :data:`DEFAULT_INPUTS` or ``dry_porosity``.
        base_inputs: the other inputs (defaults: :data:`DEFAULT_INPUTS`).
        drying: drying meta-model (default constant ε_dry).
        outputs: outputs of :func:`evaluate_process` to analyse (an output with zero variance gets NaN indices).
        n_base_samples: Saltelli base sample size N (a power of 2).
        seed: seed of the Sobol sequence scramble and of the bootstrap.

    Raises:
        ConfigError: an unknown input or output, low >= high, or N not a power of 2.
    """
    from SALib.analyze import sobol as sobol_analyze
    from SALib.sample import sobol as sobol_sample

    if not ranges:
        raise ConfigError("ranges", dict(ranges), "at least one input with a (low, high) range", "sensitivity")
    for name, (lo, hi) in ranges.items():
        if name not in DEFAULT_INPUTS and name != "dry_porosity":
            raise ConfigError(f"ranges.{name}", name, f"one of the process inputs {sorted(DEFAULT_INPUTS)}", "sensitivity")
        if not lo < hi:
            raise ConfigError(f"ranges.{name}", (lo, hi), "low < high", "sensitivity")
    if n_base_samples < 2 or n_base_samples & (n_base_samples - 1):
        raise ConfigError("n_base_samples", n_base_samples, "a power of 2 (Saltelli/Sobol sampling)", "sensitivity")
    names = tuple(ranges)
    problem = {"num_vars": len(names), "names": list(names), "bounds": [list(map(float, ranges[n])) for n in names]}
    X = sobol_sample.sample(problem, n_base_samples, calc_second_order=False, seed=seed)
    inputs = {**DEFAULT_INPUTS, **dict(base_inputs or {})}
    inputs.update({n: X[:, i] for i, n in enumerate(names)})
    Y = evaluate_process(inputs, drying)
    unknown = [o for o in outputs if o not in Y]
    if unknown:
        raise ConfigError("outputs", unknown[0], f"an output of the process chain {sorted(Y)}", "sensitivity")
    s1, st, s1c, stc = {}, {}, {}, {}
    for out in outputs:
        y = np.broadcast_to(np.asarray(Y[out], dtype=float), (X.shape[0],))
        if np.ptp(y) == 0:
            nan = np.full(len(names), np.nan)
            s1[out], st[out], s1c[out], stc[out] = nan, nan, nan, nan
            continue
        res = sobol_analyze.analyze(problem, y, calc_second_order=False, seed=seed)
        s1[out], st[out] = np.asarray(res["S1"]), np.asarray(res["ST"])
        s1c[out], stc[out] = np.asarray(res["S1_conf"]), np.asarray(res["ST_conf"])
    return SobolResult(names, s1, st, s1c, stc, int(X.shape[0]))
