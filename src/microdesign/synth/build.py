"""Building a labelled training dataset with the synthetic line over a design of experiments.

The design is a scrambled Sobol sequence (``scipy.stats.qmc.Sobol``; Owen scrambling) or a full
factorial grid over the parameter bounds, each point repeated ``replicates`` times with its own
seed. Entry ``j = point * replicates + replicate`` gets the seed
``SeedSequence([seed, point, replicate])``, so a build is reproducible and can be resumed: entries
already committed in the output file are skipped (see :class:`microdesign.data.DatasetWriter`).
"""

from __future__ import annotations

import hashlib
import itertools
import json
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from microdesign.errors import ConfigError

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Design:
    """A design of experiments in physical units.

    Attributes:
        names: parameter names, length ``d``.
        units: unit per name.
        points: ``n x d`` parameter values.
        method: ``"sobol"`` or ``"factorial"``.
        bounds: name -> (lower, upper) of the design (equal for a fixed parameter); recorded in
            the dataset provenance as ``parameter_bounds`` (the generator's training envelope).
    """

    names: tuple[str, ...]
    units: dict[str, str]
    points: np.ndarray
    method: str
    bounds: dict[str, tuple[float, float]] = field(default_factory=dict)


def design_of_experiments(
    bounds: Mapping[str, tuple[float, float]],
    units: Mapping[str, str],
    method: str = "sobol",
    n_points: int = 64,
    levels: int = 3,
    seed: int = 0,
    fixed: Mapping[str, float] | None = None,
) -> Design:
    """Points over ``bounds`` (name -> (lower, upper)) plus ``fixed`` constant parameters.

    Args:
        bounds: varied parameters and their bounds (physical units).
        units: unit of every parameter (varied and fixed).
        method: ``"sobol"`` (``n_points`` scrambled Sobol points; a power of 2 keeps the balance
            properties, Owen 1998) or ``"factorial"`` (``levels`` equally spaced values per
            parameter, ``levels ** d`` points).
        n_points: Sobol points.
        levels: factorial levels (>= 2).
        seed: scrambling seed.
        fixed: parameters held constant (name -> value).

    Returns:
        :class:`Design` with columns ordered as ``bounds`` then ``fixed``.

    Raises:
        ConfigError: unknown method, empty bounds, lower >= upper, n_points < 1, levels < 2.
    """
    fixed = dict(fixed or {})
    names = tuple(bounds) + tuple(n for n in fixed if n not in bounds)
    if not bounds:
        raise ConfigError("parameters", [], "at least one parameter to vary")
    lo = np.array([float(bounds[n][0]) for n in bounds])
    hi = np.array([float(bounds[n][1]) for n in bounds])
    bad = [n for n, a, b in zip(bounds, lo, hi) if not a < b]
    if bad:
        raise ConfigError("bounds", {n: bounds[n] for n in bad}, "lower < upper")
    d = len(bounds)
    if method == "sobol":
        if int(n_points) < 1:
            raise ConfigError("doe.n_points", n_points, ">= 1")
        from scipy.stats import qmc

        sampler = qmc.Sobol(d, scramble=True, seed=int(seed))
        n = int(n_points)
        m = int(np.ceil(np.log2(n))) if n > 1 else 0
        unit = sampler.random_base2(m)[:n] if n == 2**m else sampler.random(n)
    elif method == "factorial":
        if int(levels) < 2:
            raise ConfigError("doe.levels", levels, ">= 2")
        grid = np.linspace(0.0, 1.0, int(levels))
        unit = np.array(list(itertools.product(grid, repeat=d)), dtype=np.float64)
    else:
        raise ConfigError("doe.method", method, "'sobol' or 'factorial'")
    varied = lo + unit * (hi - lo)
    const = np.array([[float(fixed[n]) for n in names[d:]]] * varied.shape[0]).reshape(varied.shape[0], -1)
    missing = [n for n in names if n not in units]
    if missing:
        raise ConfigError("units", dict(units), f"a unit for every parameter; missing {missing}")
    all_bounds = {n: (float(bounds[n][0]), float(bounds[n][1])) for n in bounds}
    all_bounds.update({n: (float(fixed[n]), float(fixed[n])) for n in names[d:]})
    return Design(names=names, units={n: str(units[n]) for n in names}, points=np.hstack([varied, const]),
                  method=method, bounds=all_bounds)


def design_from_config(design_space_cfg: Any, dataset_cfg: Any, seed: int) -> Design:
    """The DOE of ``conf/dataset/*.yaml`` over the microstructure parameters of the design space.

    ``dataset_cfg.parameters`` (list or null) picks names among the design space's parameters
    (default: every parameter with role ``microstructure``); a design-space parameter with
    ``fixed: value`` is held constant; ``dataset_cfg.extra_parameters`` adds parameters of the
    synthetic line (e.g. ``particle_radius_mean_m: {lower, upper, unit}``) to the design.

    Raises:
        ConfigError: an invalid design space (:meth:`microdesign.design.DesignSpace.from_config`) or a
            requested name that it does not define.
    """
    from microdesign.design import DesignSpace

    space = DesignSpace.from_config(design_space_cfg)
    wanted = dataset_cfg.get("parameters")
    if wanted is None:
        wanted = list(space.microstructure_names)
    unknown = [n for n in wanted if n not in space.names]
    if unknown:
        raise ConfigError("dataset.parameters", list(wanted), f"names of the design space {list(space.names)}")
    bounds: dict[str, tuple[float, float]] = {}
    fixed: dict[str, float] = {}
    units: dict[str, str] = {}
    for n in wanted:
        p = space[n]
        units[n] = str(p.unit)
        if p.is_fixed:
            fixed[n] = float(p.fixed)
        else:
            bounds[n] = (float(p.lower), float(p.upper))
    for n, p in (dataset_cfg.get("extra_parameters") or {}).items():
        units[n] = str(p.get("unit", "1"))
        bounds[n] = (float(p["lower"]), float(p["upper"]))
    doe = dataset_cfg["doe"]
    return design_of_experiments(bounds, units, method=str(doe["method"]), n_points=int(doe.get("n_points", 64)),
                                 levels=int(doe.get("levels", 3)), seed=seed, fixed=fixed)


def entry_seed(seed: int, point: int, replicate: int) -> int:
    """Seed of DOE entry (point, replicate): ``SeedSequence([seed, point, replicate])``, 63-bit."""
    state = np.random.SeedSequence([int(seed), int(point), int(replicate)]).generate_state(2, dtype=np.uint32)
    return int((int(state[0]) << 31) ^ int(state[1])) & ((1 << 63) - 1)


def build_key(payload: Mapping[str, Any]) -> str:
    """Stable short hash of the build settings (a resumed build must match it)."""
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:16]


def build_dataset(
    line: Any,
    path: str | Path,
    design: Design,
    shape: int | Sequence[int],
    voxel_size_m: float,
    replicates: int = 1,
    seed: int = 0,
    provenance: Mapping[str, Any] | None = None,
    progress: bool = True,
    resume: bool = True,
) -> Path:
    """Generate ``n_points x replicates`` samples with ``line`` and write them to ``path``.

    Already committed entries of an existing compatible file are skipped (resume). A progress bar
    (tqdm, on stderr) shows entries done / total and the rate.

    Args:
        line: object with ``generate(params, shape, voxel_size_m, seed) -> uint8 array``
            (a :class:`microdesign.synth.SyntheticLine`).
        path: output dataset file.
        design: the DOE (labels are its columns).
        shape: sample shape (cube edge, 3-tuple or 2-tuple).
        voxel_size_m: voxel edge [m].
        replicates: samples per DOE point (different seeds).
        seed: master seed.
        provenance: extra provenance entries (e.g. the composed config).
        progress: show the progress bar.
        resume: continue an existing file (else an existing file is an error).

    Returns:
        The output path.

    Raises:
        ConfigError: replicates < 1, or an existing file built with other settings.
    """
    from tqdm import tqdm

    from microdesign.data.dataset import DatasetWriter
    from microdesign.synth.line import _normalise_shape

    if int(replicates) < 1:
        raise ConfigError("replicates", replicates, ">= 1")
    sample_shape = _normalise_shape(shape)
    n_points = design.points.shape[0]
    total = n_points * int(replicates)
    settings = {
        "names": list(design.names),
        "points": design.points.round(12).tolist(),
        "replicates": int(replicates),
        "seed": int(seed),
        "shape": list(sample_shape),
        "voxel_size_m": float(voxel_size_m),
        "line": {k: v for k, v in sorted(vars(line).items()) if not k.startswith("_")},
    }
    if hasattr(line, "resolve_parameters") and n_points:  # fail before any expensive work
        for row in design.points:
            line.resolve_parameters(dict(zip(design.names, map(float, row))))
    prov = {
        "kind": "synthetic",
        "generator": f"{type(line).__module__}.{type(line).__qualname__}",
        "doe_method": design.method,
        "n_points": n_points,
        "replicates": int(replicates),
        "seed": int(seed),
        "seed_rule": "numpy SeedSequence([seed, point, replicate]) -> 63-bit int (microdesign.synth.build.entry_seed)",
        "line_parameters": settings["line"],
        "parameter_bounds": {n: list(b) for n, b in design.bounds.items()},
        "build_key": build_key(settings),
    }
    prov.update(dict(provenance or {}))
    with DatasetWriter(path, sample_shape, design.names, design.units, voxel_size_m, prov, resume=resume) as writer:
        done = len(writer)
        if done:
            logger.info("%s: %d of %d entries already built, resuming", path, done, total)
        t0 = time.perf_counter()
        with tqdm(total=total, initial=done, desc="build-dataset", unit="vol", disable=not progress) as bar:
            for j in range(done, total):
                point, rep = divmod(j, int(replicates))
                labels = dict(zip(design.names, map(float, design.points[point])))
                s = entry_seed(seed, point, rep)
                image = line.generate(labels, sample_shape, voxel_size_m=voxel_size_m, seed=s)
                writer.append(image, labels, seed=s, source=f"doe point {point} replicate {rep}")
                bar.update(1)
        writer.set_provenance(last_session_seconds=round(time.perf_counter() - t0, 3), complete=len(writer) == total)
    logger.info("wrote %s (%d entries)", path, total)
    return Path(path)
