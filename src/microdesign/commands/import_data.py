"""Import segmented TIFF/PNG images and a CSV/YAML table of process parameters into a dataset.

Example (docs/dataset_format.md)::

    microdesign import-data images=<data>/nrel_nmc1_cal_cbd_bridge.tif \\
        labels=nrel_labels.yaml voxel_size_m=0.398e-6 output=data/nrel.h5

Unmapped grey values, inconsistent sizes, missing labels, a missing voxel size, a label outside
its physical range, a single-phase image and a porosity label that the image's pore fraction
contradicts (``porosity_tolerance``) are rejected with a message naming the file and the problem,
before anything is written.
``<data>``: the folder of the public NMC data sets (docs/public_data.md).
"""

from __future__ import annotations

NAME = "import-data"
HELP = "Import segmented TIFF/PNG images + CSV/YAML process parameters into an HDF5 dataset"
CONFIG_NAME = "import_data"


def run(cfg) -> int:
    from omegaconf import OmegaConf

    from microdesign.data.importer import import_images

    c = OmegaConf.to_container(cfg, resolve=True)
    import_images(
        images=c["images"],
        labels=c["labels"],
        grey_to_phase=c["grey_to_phase"] or {0: "pore", 1: "active_material", 2: "cbd"},
        output=c["output"],
        voxel_size_m=c.get("voxel_size_m"),
        parameter_names=c.get("parameter_names"),
        parameter_units=c.get("parameter_units") or {},
        through_plane_axis=int(c.get("through_plane_axis", 0)),
        provenance={"command": "microdesign import-data", "description": c.get("description", ""), "config": c},
        overwrite=bool(c.get("overwrite", False)),
        porosity_tolerance=c.get("porosity_tolerance"),
    )
    return 0
