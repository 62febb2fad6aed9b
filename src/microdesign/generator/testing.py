"""Small training data and settings for tests and examples of generator training.

Not microstructure models: a network trained on these learns nothing of use, in about a second per step
on one CPU thread. Volumes are ``uint8`` with 0 pore, 1 AM (:mod:`microdesign.phases`).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from microdesign.phases import ACTIVE_MATERIAL, PORE

#: :class:`microdesign.generator.TrainSettings` keywords of a tiny network and batches that train on 16^3
#: cubes (generator widths 8/8/4, critic widths 8/16, one CPU thread, no checkpoint before step 1000).
TINY_TRAIN_SETTINGS = dict(batch_size=4, slices_per_axis=4, critic_iters=1, train_size=16, latent_channels=4,
                           widths=(8, 8, 4), critic_widths=(8, 16), device="cpu", lr_generator=2e-3,
                           lr_critic=2e-3, beta1=0.5, threads=1, checkpoint_every=1000, log_every=5,
                           bn_calibration_batches=4)


def smooth_two_phase(pore_fraction: float, seed: int, size: int = 24) -> np.ndarray:
    """Smooth random two-phase cube: white noise blurred by a Gaussian (sigma 2 voxels, periodic), its
    lowest ``pore_fraction`` quantile pore, the rest AM.

    Returns:
        ``size x size x size`` uint8 volume whose pore fraction is ``pore_fraction`` to within one voxel's
        share (the quantile interpolates between two voxels' values).
    """
    field = ndimage.gaussian_filter(np.random.default_rng(seed).random((size,) * 3), 2, mode="wrap")
    return np.where(field < np.quantile(field, pore_fraction), PORE, ACTIVE_MATERIAL).astype(np.uint8)
