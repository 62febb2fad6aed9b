"""Reading labelled volumes, building cube sources from config, results as JSON-ready dictionaries.

Used by the ``characterise`` and ``convergence`` commands (:func:`command_cube_sources`) and the
characterisation benchmark; the source config is::

    source:
      kind: tiff | npy | synthetic
      path: file (tiff / npy), axis 0 through-plane
      phase_values: [pore, AM, CBD]      # raw values of the three phases in the file; others rejected
      voxel_size_m: edge [m]             # required for files: never guessed
      params: {am_weight_fraction, porosity, cbd_adhesion}   # synthetic only
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from microdesign.characterise.metrics import MicrostructureMetrics
from microdesign.characterise.sampling import SubcubeSampler
from microdesign.errors import ConfigError, check_voxel_size
from microdesign.phases import N_PHASES

SOURCE_KINDS = ("tiff", "npy", "synthetic")


def load_volume(path: str | Path, labels: Mapping[Any, int] | None = None) -> np.ndarray:
    """Read a 3D labelled volume from ``.tif/.tiff`` (tifffile) or ``.npy`` and map its labels.

    Args:
        path: the file.
        labels: raw value -> phase label (0 pore, 1 AM, 2 CBD); None means identity on {0, 1, 2}.
            Mapped by :func:`microdesign.data.importer.map_grey_values`.

    Returns:
        uint8 volume of phase labels, the file's shape.

    Raises:
        ConfigError: missing, empty, truncated or unreadable file (:func:`microdesign.data.files.read_array`),
            unknown suffix, not 3D, a raw value without a mapping, or a target label outside {0, 1, 2}.
    """
    from microdesign.data.files import read_array
    from microdesign.data.importer import map_grey_values, parse_grey_table

    p = Path(str(path)).expanduser()
    if p.suffix.lower() not in (".tif", ".tiff", ".npy"):
        raise ConfigError("source.path", str(path), "a .tif, .tiff or .npy file")
    raw = read_array(p, "source.path")
    raw = np.squeeze(raw) if raw.ndim > 3 else raw
    if raw.ndim != 3:
        raise ConfigError("source.path", f"{p.name} with shape {raw.shape}", "a 3D volume X x Y x Z")
    greys, phase_labels = parse_grey_table({0: 0, 1: 1, 2: 2} if labels is None else labels, "source.phase_values")
    return map_grey_values(raw, greys, phase_labels, str(p), "source.phase_values")


def cube_sources_from_config(source: Mapping[str, Any], cube_sizes: Sequence[int], synth: Any = None
                             ) -> tuple[dict[int, Callable[[int, int], np.ndarray]], float]:
    """Cube sources ``(n_cubes, seed) -> n x L x L x L`` for every cube size, and the voxel size [m].

    Everything is validated, and a file read once, before any cube is drawn.

    Args:
        source: the ``source`` config (see module docstring).
        cube_sizes: cube sides L [voxels].
        synth: a :class:`microdesign.synth.SyntheticLine` (required for ``kind: synthetic``).

    Returns:
        ``({L: source}, voxel_size_m)``; a synthetic source draws cube ``k`` of a call with seed
        ``seed + k`` (so ``source(1, seed + k)[0] == source(n, seed)[k]``); a file source draws
        seeded sub-cubes (:class:`SubcubeSampler`).

    Raises:
        ConfigError: unknown kind, missing path / voxel size, bad labels, cube larger than the volume.
    """
    kind = source.get("kind")
    if kind not in SOURCE_KINDS:
        raise ConfigError("source.kind", kind, f"one of {SOURCE_KINDS}")
    voxel = source.get("voxel_size_m")
    sizes = [int(L) for L in cube_sizes]
    if kind == "synthetic":
        if synth is None:
            raise ConfigError("synth", None, "a synthetic line config for source.kind=synthetic")
        params = dict(source.get("params") or {})
        voxel = (check_voxel_size("source.voxel_size_m", voxel) if voxel is not None
                 else check_voxel_size("synth.default_voxel_size_m", synth.default_voxel_size_m))
        synth.resolve_parameters(params)  # validate before any work

        def line(cube_size: int) -> Callable[[int, int], np.ndarray]:
            def fresh(n_cubes: int, seed: int) -> np.ndarray:
                return np.stack([synth.generate(params, cube_size, voxel_size_m=voxel, seed=int(seed) + k)
                                 for k in range(int(n_cubes))])

            return fresh

        return {L: line(L) for L in sizes}, voxel
    voxel = check_voxel_size("source.voxel_size_m", voxel, hint="the voxel edge of the file; it is never guessed")
    if not source.get("path"):
        raise ConfigError("source.path", source.get("path"), "a file path")
    values = source.get("phase_values")
    if values is not None and (len(values) != N_PHASES or len(set(values)) != N_PHASES):
        raise ConfigError("source.phase_values", values, "three distinct raw values: [pore, AM, CBD]")
    labels = None if values is None else {v: i for i, v in enumerate(values)}
    vol = load_volume(source["path"], labels)
    return {L: SubcubeSampler(vol, L) for L in sizes}, float(voxel)


def command_cube_sources(cfg: Any, cube_sizes: Sequence[int]
                         ) -> tuple[dict[int, Callable[[int, int], np.ndarray]], float]:
    """The cube sources of a ``characterise`` / ``convergence`` command config.

    Resolves ``cfg.source``, instantiates ``cfg.synth`` when ``source.kind`` is ``synthetic``, and
    calls :func:`cube_sources_from_config`.

    Args:
        cfg: command config (OmegaConf) with ``source`` and ``synth``.
        cube_sizes: cube sides L [voxels].

    Returns:
        ``({L: source}, voxel_size_m)``.

    Raises:
        ConfigError: as :func:`cube_sources_from_config`.
    """
    from hydra.utils import instantiate
    from omegaconf import OmegaConf

    source = OmegaConf.to_container(cfg.source, resolve=True)
    synth = instantiate(cfg.synth) if source.get("kind") == "synthetic" else None
    return cube_sources_from_config(source, cube_sizes, synth)


def metrics_to_dict(m: MicrostructureMetrics) -> dict[str, Any]:
    """JSON-ready dictionary of a result (per-cube values included)."""
    return {
        "status": m.status,
        "reason": m.reason,
        "stop_reason": m.stop_reason,
        "n_cubes": m.n_cubes,
        "cube_size_voxels": m.cube_size_voxels,
        "voxel_size_m": m.voxel_size_m,
        "bulk_conductivity_S_m": dict(m.bulk_conductivity_S_m),
        "metrics": {
            k: {"mean": e.mean, "std": e.std, "ci95_half_width": e.ci95_half_width,
                "relative_ci95": e.relative_ci95, "values": e.values.tolist(), "estimator": e.estimator,
                **({"weights": np.asarray(e.weights, float).tolist()} if e.weights is not None else {})}
            for k, e in m.estimates.items()
        },
    }
