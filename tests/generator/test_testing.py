"""Training fixtures: the smooth two-phase cube has the pore fraction asked for and is smooth."""

from __future__ import annotations

import numpy as np

from microdesign.generator import TrainSettings
from microdesign.generator.testing import TINY_TRAIN_SETTINGS, smooth_two_phase
from microdesign.phases import ACTIVE_MATERIAL, PORE


def test_smooth_two_phase_has_the_pore_fraction_and_is_correlated():
    for p, size in ((0.15, 24), (0.6, 16)):
        v = smooth_two_phase(p, seed=3, size=size)
        assert v.shape == (size,) * 3 and v.dtype == np.uint8
        assert set(np.unique(v)) == {PORE, ACTIVE_MATERIAL}
        assert abs((v == PORE).mean() - p) <= 1 / v.size
        # blurred noise: neighbours agree far more often than for independent voxels (2 p (1 - p) differ)
        differ = (v[1:] != v[:-1]).mean()
        assert differ < 0.5 * 2 * p * (1 - p)
    np.testing.assert_array_equal(smooth_two_phase(0.3, 1), smooth_two_phase(0.3, 1))
    assert TrainSettings(**TINY_TRAIN_SETTINGS).train_size == 16
