"""Export one sample of a dataset as a (multi-page) TIFF with its voxel size and labels.

Example::

    microdesign export-tiff input=data/synth_default.h5 index=3 output=sample3.tif grey_values=[0,127,255]
"""

from __future__ import annotations

NAME = "export-tiff"
HELP = "Export a dataset sample to a multi-page TIFF (ImageJ metadata: voxel size, labels)"
CONFIG_NAME = "export_tiff"


def run(cfg) -> int:
    from microdesign.data.tiff import export_tiff

    grey = cfg.grey_values
    export_tiff(cfg.input, int(cfg.index), cfg.output, grey_values=None if grey is None else [int(g) for g in grey],
                overwrite=bool(cfg.overwrite))
    return 0
