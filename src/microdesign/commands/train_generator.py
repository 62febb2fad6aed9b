"""Train a conditional slice-trained 3D generator on labelled volumes or micrographs.

Reads an HDF5 ``microdesign-dataset`` (conditioned on its parameter labels) or one segmented TIFF
(single class: give ``dataset.voxel_size_m`` and ``dataset.label_map``); ``dataset.parameters``
chooses the dataset parameters to condition on (``[]``: single class, e.g. one imported micrograph);
``dataset.downsample=k`` coarse-grains the images k-fold by majority vote first (voxel size x k).
Writes ``out_dir/state.pt`` (resume), ``out_dir/losses.csv`` and the checkpoint ``out_dir/model/``
(and ``export_dir`` if set).
Re-running the same command resumes after an interruption.

Examples::

    microdesign train-generator dataset.path=data/synth_default.h5 name=my_model export_dir=models/my_model
    microdesign train-generator generator_training=large generator_training.device=cuda
    microdesign train-generator generator_training.train_size=48 init_from=runs/generator/synth3p_small out_dir=runs/generator/synth3p_48
    microdesign train-generator generator_training.critic=volume name=synth3p_vol  # one 3D critic (3D data only)
    microdesign train-generator name=sem_nmc_2d dataset.path=<data>/sem_nmc_cathode_2d.tif \
        dataset.voxel_size_m=1.35e-7 '+dataset.label_map={0:0,1:1,2:2}' dataset.downsample=4 \
        generator_training.window_padding=reflect
"""

from __future__ import annotations

NAME = "train-generator"
HELP = "train (or resume) a conditional 3D generator from volumes or 2D micrographs (SliceGAN, WGAN-GP)"
CONFIG_NAME = "train_generator"


def run(cfg) -> int:
    import logging

    from omegaconf import OmegaConf

    from microdesign.generator import TrainSettings, load_training_data, train

    from microdesign.data.files import require_writable

    log = logging.getLogger(__name__)
    require_writable(cfg.out_dir, "out_dir", directory=True)
    if cfg.export_dir:
        require_writable(cfg.export_dir, "export_dir", directory=True)
    settings = TrainSettings.from_mapping(OmegaConf.to_container(cfg.generator_training, resolve=True))
    ds = OmegaConf.to_container(cfg.dataset, resolve=True)
    # label map: file value (number or numeric string) -> phase label or name (data.importer.parse_grey_table)
    data = load_training_data(ds["path"], voxel_size_m=ds.get("voxel_size_m"), label_map=ds.get("label_map") or None,
                              bounds=ds.get("bounds"), max_samples=ds.get("max_samples"),
                              parameters=ds.get("parameters"),
                              downsample=1 if ds.get("downsample") is None else ds["downsample"])
    log.info("training data: %s; parameters %s; bounds %s", data.description, list(data.parameter_names), data.bounds)
    result = train(data, settings, cfg.out_dir, cfg.name, export_dir=cfg.export_dir, resume=bool(cfg.resume),
                   progress=bool(cfg.progress), max_wall_s=cfg.max_wall_s, init_from=cfg.get("init_from"))
    log.info("%s: %d steps in %.0f s; checkpoint %s; loss log %s", result.status, result.steps_done, result.wall_s,
             result.model_dir, result.log_path)
    return 0 if result.status == "ok" else 1
