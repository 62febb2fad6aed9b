"""Generate a labelled training dataset with the synthetic line over a Sobol or factorial design.

Example::

    microdesign build-dataset output=data/synth_default.h5 dataset.doe.n_points=128

Rerunning an interrupted build with the same settings resumes after the last committed entry.
"""

from __future__ import annotations

NAME = "build-dataset"
HELP = "Build a labelled synthetic training dataset (Sobol/factorial DOE, resumable, HDF5)"
CONFIG_NAME = "build_dataset"


def run(cfg) -> int:
    import logging
    from pathlib import Path

    from hydra.utils import instantiate
    from omegaconf import OmegaConf

    from microdesign.synth.build import build_dataset, design_from_config

    from microdesign.data.files import require_file, require_writable

    log = logging.getLogger(__name__)
    require_writable(cfg.output, "output")
    if bool(cfg.resume) and Path(str(cfg.output)).exists():
        require_file(cfg.output, "output", ("hdf5",), "a microdesign dataset to resume (HDF5), or a new path")
    line = instantiate(cfg.synth)
    design = design_from_config(cfg.design_space, cfg.dataset, seed=int(cfg.seed))
    voxel = cfg.dataset.voxel_size_m
    voxel = float(line.default_voxel_size_m if voxel is None else voxel)
    shape = cfg.dataset.shape
    shape = int(shape) if isinstance(shape, int) else [int(s) for s in shape]
    log.info("build-dataset: %d DOE points x %d replicates of %s at %.4g m -> %s", design.points.shape[0],
             int(cfg.dataset.replicates), shape, voxel, cfg.output)
    build_dataset(
        line,
        cfg.output,
        design,
        shape,
        voxel,
        replicates=int(cfg.dataset.replicates),
        seed=int(cfg.seed),
        provenance={"command": "microdesign build-dataset", "config": OmegaConf.to_container(cfg, resolve=True)},
        progress=bool(cfg.progress),
        resume=bool(cfg.resume),
    )
    return 0
