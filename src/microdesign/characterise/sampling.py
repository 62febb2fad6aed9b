"""Seeded sampling of ``n x L x L x L`` cubes from larger labelled volumes.

A *cube source* is any callable ``sample_cubes(n_cubes, seed) -> np.ndarray`` of shape
``n_cubes x L x L x L`` (uint8 labels); :meth:`Characteriser.characterise_adaptive` draws cubes from
one in batches. :class:`SubcubeSampler` is the source for an existing (e.g. imaged) volume; a
generator wraps its own sampling of fresh volumes in the same signature.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from microdesign.errors import ConfigError

def sample_subcubes(volumes: np.ndarray | Sequence[np.ndarray], cube_size: int, n_cubes: int,
                    seed: int) -> np.ndarray:
    """Draw ``n_cubes`` axis-aligned sub-cubes of side ``cube_size`` at uniform random positions.

    Axis 0 of every cube stays axis 0 of its parent (the through-plane direction is kept).

    Args:
        volumes: one labelled volume ``X x Y x Z`` or several (``m x X x Y x Z`` or a list); each
            cube picks its parent volume uniformly at random.
        cube_size: cube side L [voxels]; must fit in every parent.
        n_cubes: number of cubes (>= 1).
        seed: seed of ``numpy.random.default_rng``.

    Returns:
        ``n_cubes x L x L x L`` array, dtype of the parent.

    Raises:
        ConfigError: ``cube_size`` or ``n_cubes`` invalid, or a parent smaller than the cube.
    """
    vols = [volumes] if isinstance(volumes, np.ndarray) and volumes.ndim == 3 else list(volumes)
    if not vols or any(np.ndim(v) != 3 for v in vols):
        raise ConfigError("volumes", [np.shape(v) for v in vols], "one or more 3D volumes X x Y x Z")
    if not isinstance(n_cubes, (int, np.integer)) or n_cubes < 1:
        raise ConfigError("n_cubes", n_cubes, "an integer >= 1")
    if not isinstance(cube_size, (int, np.integer)) or cube_size < 2:
        raise ConfigError("cube_size", cube_size, "an integer >= 2")
    small = [v.shape for v in vols if min(v.shape) < cube_size]
    if small:
        raise ConfigError("cube_size", cube_size, f"<= the smallest side of every volume (got shapes {small})")
    rng = np.random.default_rng(seed)
    out = np.empty((n_cubes, cube_size, cube_size, cube_size), dtype=vols[0].dtype)
    for k in range(n_cubes):
        v = vols[int(rng.integers(len(vols)))]
        i, j, l = (int(rng.integers(0, s - cube_size + 1)) for s in v.shape)
        out[k] = v[i:i + cube_size, j:j + cube_size, l:l + cube_size]
    return out


class SubcubeSampler:
    """Cube source over fixed volumes: ``SubcubeSampler(volume, L)(n, seed) -> n x L x L x L``.

    Args:
        volumes: one labelled volume ``X x Y x Z`` or several.
        cube_size: cube side L [voxels].
    """

    def __init__(self, volumes: np.ndarray | Sequence[np.ndarray], cube_size: int):
        self.volumes = volumes
        self.cube_size = int(cube_size)
        sample_subcubes(volumes, self.cube_size, 1, 0)  # validate now, before any expensive work

    def __call__(self, n_cubes: int, seed: int) -> np.ndarray:
        return sample_subcubes(self.volumes, self.cube_size, n_cubes, seed)
