"""Conditional 3D microstructure generator trained against 2D slices (docs/generator.md).

Public interface:

* :class:`Generator` - load a checkpoint (``Generator.from_checkpoint("name-or-path")``) and
  ``sample(params, n, size_voxels, seed) -> n x L x L x L`` uint8 labels (0 pore, 1 AM, 2 CBD).
* :func:`train` (a :class:`Trainer` run) with :class:`TrainSettings` and :class:`TrainingData` - train or
  resume a generator.
* :func:`load_checkpoint` / :func:`save_checkpoint` / :class:`CheckpointMetadata` - the checkpoint
  format of ``models/<name>/``.

Heavy dependencies (torch) are imported lazily by the functions that need them.
"""

from microdesign.generator.checkpoint import (
    CheckpointError,
    CheckpointMetadata,
    load_checkpoint,
    save_checkpoint,
)
from microdesign.generator.data import TrainingData, load_training_data
from microdesign.generator.sampler import Generator, OutOfTrainingBoundsWarning
from microdesign.generator.training import Trainer, TrainResult, TrainSettings, train

GeneratorSampler = Generator

__all__ = [
    "CheckpointError",
    "CheckpointMetadata",
    "Generator",
    "GeneratorSampler",
    "OutOfTrainingBoundsWarning",
    "TrainResult",
    "TrainSettings",
    "Trainer",
    "TrainingData",
    "load_checkpoint",
    "load_training_data",
    "save_checkpoint",
    "train",
]
