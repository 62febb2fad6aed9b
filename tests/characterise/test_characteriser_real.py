"""The real NREL NMC cathode volume (the ``shared_data`` fixture) characterises without error (small crops)."""

from __future__ import annotations

import numpy as np
import pytest

from microdesign.characterise import Characteriser, MgcgSolver, SubcubeSampler
from microdesign.characterise import metrics as M

NREL = "nrel_nmc1_cal_cbd_bridge.tif"
VOXEL_M = 0.398e-6  # the data folder's README.md (NREL NMC-1-cal series)


@pytest.fixture(scope="module")
def nrel(shared_data):
    if not (shared_data / NREL).is_file():
        pytest.skip(f"real NREL volume {NREL} is absent from the real-data folder")
    import tifffile

    v = tifffile.imread(shared_data / NREL)
    assert set(np.unique(v)) <= {0, 1, 2}  # README: 0 pore, 1 NMC, 2 CBD
    return v


def test_nrel_crops_characterise_with_plausible_values(nrel):
    cubes = SubcubeSampler(nrel, 40)(2, 5)
    m = Characteriser(MgcgSolver(threads=1)).characterise(cubes, VOXEL_M, seed=5)
    assert m.ok, m.reason
    assert m.n_cubes == 2 and m.cube_size_voxels == 40
    # README volume fractions: pore 0.40, NMC 0.50, CBD 0.10 (crops scatter around them)
    assert 0.25 < m[M.POROSITY].mean < 0.55
    assert 0.35 < m[M.AM_VOLUME_FRACTION].mean < 0.65
    assert 0.03 < m[M.CBD_VOLUME_FRACTION].mean < 0.2
    total = m[M.POROSITY].mean + m[M.AM_VOLUME_FRACTION].mean + m[M.CBD_VOLUME_FRACTION].mean
    assert total == pytest.approx(1.0)
    # equivalent-sphere radius ~3.9 um -> S_AM ~ 3 X_AM / r ~ 4e5 m-1, shared between pore and CBD contact
    assert 5e4 < m[M.SSA_AM_PORE].mean < 1e6
    assert 1e4 < m[M.SSA_AM_CBD].mean < 5e5
    assert 1.2 < m[M.TORTUOSITY_THROUGH_PLANE].mean < 15
    s = m[M.CONDUCTIVITY_SOLID].mean
    assert 0.0 < s < 760.0 * m[M.CBD_VOLUME_FRACTION].mean + 0.18  # below the parallel (Wiener) bound
    for e in m.estimates.values():
        assert np.all(np.isfinite(e.values))
