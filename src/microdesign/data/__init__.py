"""Microstructure data: the HDF5 dataset format, lazy reading, import of user images, TIFF export.

See ``docs/dataset_format.md``.
"""

from microdesign.data.dataset import (
    FORMAT_NAME,
    SCHEMA_VERSION,
    DatasetWriter,
    MicrostructureDataset,
    Sample,
    write_dataset,
)

__all__ = ["FORMAT_NAME", "SCHEMA_VERSION", "DatasetWriter", "MicrostructureDataset", "Sample", "write_dataset"]
