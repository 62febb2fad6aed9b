"""Small labelled structures with known answers, for tests, examples and benchmarks.

Not microstructure models (that is :mod:`microdesign.synth` and the generator): these are oracles.
All volumes are ``uint8`` with 0 pore, 1 AM, 2 CBD; axis 0 is through-plane.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from microdesign.phases import ACTIVE_MATERIAL, CBD, PORE


def straight_channels(L: int = 16, width: int = 4, spacing: int = 8, cbd_width: int = 0) -> np.ndarray:
    """Square pore channels of side ``width`` along axis 0 in an AM matrix, optional CBD channels.

    Channel ``k`` occupies ``[o, o + width)`` in axes 1 and 2 for offsets ``o = spacing/2 - width/2 +
    k * spacing``; with ``cbd_width > 0`` a square CBD channel of that side sits between pore
    channels (offset by ``spacing/2`` in both axes). Every channel touches only AM.

    Returns:
        ``L x L x L`` uint8 volume. Exact values: tortuosity factor 1 along axis 0, porosity =
        pore columns / L^2, AM-pore faces = 4 * width * L per channel (see the tests).
    """
    v = np.full((L, L, L), ACTIVE_MATERIAL, dtype=np.uint8)
    starts = np.arange(spacing // 2 - width // 2, L - width + 1, spacing)
    for a in starts:
        for b in starts:
            v[:, a:a + width, b:b + width] = PORE
    if cbd_width:
        cstarts = [s + spacing // 2 + width // 2 - cbd_width // 2 for s in starts]
        cstarts = [s for s in cstarts if s + cbd_width <= L]
        for a in cstarts:
            for b in cstarts:
                v[:, a:a + cbd_width, b:b + cbd_width] = CBD
    return v


def random_three_phase(shape: int | tuple[int, int, int], porosity: float = 0.4, cbd_fraction: float = 0.1,
                       correlation_voxels: float = 2.0, seed: int = 0) -> np.ndarray:
    """Thresholded Gaussian random field: pore below the ``porosity`` quantile, CBD in the next band.

    Args:
        shape: cube side or 3-tuple.
        porosity, cbd_fraction: target phase fractions (met to within one voxel).
        correlation_voxels: Gaussian smoothing sigma [voxels].
        seed: RNG seed.

    Returns:
        uint8 volume with 0 pore, 1 AM, 2 CBD; statistically isotropic and homogeneous.
    """
    shape = (shape,) * 3 if isinstance(shape, int) else tuple(shape)
    rng = np.random.default_rng(seed)
    f = ndimage.gaussian_filter(rng.standard_normal(shape), correlation_voxels, mode="wrap")
    q1, q2 = np.quantile(f, [porosity, porosity + cbd_fraction])
    v = np.full(shape, ACTIVE_MATERIAL, dtype=np.uint8)
    v[f < q2] = CBD
    v[f < q1] = PORE
    return v


def ball(L: int, radius: float) -> np.ndarray:
    """An AM ball of ``radius`` voxels centred in an ``L^3`` pore cube (true area ``4 pi r^2``)."""
    c = (L - 1) / 2
    i = np.arange(L) - c
    r2 = i[:, None, None] ** 2 + i[None, :, None] ** 2 + i[None, None, :] ** 2
    return np.where(r2 <= radius**2, ACTIVE_MATERIAL, PORE).astype(np.uint8)
