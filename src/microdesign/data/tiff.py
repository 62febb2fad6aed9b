"""Export dataset samples to (multi-page) TIFF for other tools (ImageJ/Fiji, TauFactor, PoreSpy).

A 3D sample becomes an ImageJ hyperstack with one page per slice along axis 0 (through-plane); a
2D sample a single page. The voxel size is written as ImageJ ``spacing`` and X/Y resolution in
micrometres; the labels, phase names and source go into the ImageJ ``Info`` text as JSON.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from microdesign.errors import ConfigError

logger = logging.getLogger(__name__)


def export_tiff(
    dataset: str | Path,
    index: int,
    output: str | Path,
    grey_values: Sequence[int] | None = None,
    overwrite: bool = False,
) -> Path:
    """Write sample ``index`` of a dataset file as a TIFF.

    Args:
        dataset: dataset file (:class:`microdesign.data.MicrostructureDataset`).
        index: sample index (negative counts from the end).
        output: TIFF file to write (``.tif``/``.tiff``).
        grey_values: grey value per phase label (e.g. ``[0, 127, 255]`` to view the phases in an
            image viewer); default: the labels themselves (0, 1, 2).
        overwrite: replace an existing file.

    Returns:
        The output path.

    Raises:
        ConfigError: a missing, empty, truncated or foreign dataset file (named ``input``), bad
            suffix, existing output, index out of range, grey_values of the wrong length or
            outside 0-255.
    """
    import tifffile

    from microdesign.data.dataset import MicrostructureDataset
    from microdesign.data.files import require_file, require_writable

    output = Path(output)
    if output.suffix.lower() not in (".tif", ".tiff"):
        raise ConfigError("output", str(output), "a .tif or .tiff file")
    if output.exists() and not overwrite:
        raise ConfigError("output", str(output), "a path that does not exist yet (or overwrite=true)")
    require_file(dataset, "input", ("hdf5",), "a microdesign dataset (.h5)")
    require_writable(output, "output")
    with MicrostructureDataset(dataset, option="input") as ds:
        n = len(ds)
        if not -n <= int(index) < n:
            raise ConfigError("index", index, f"a sample index in [{-n}, {n - 1}] ({dataset})")
        try:
            sample = ds[int(index)]
        except (OSError, KeyError, RuntimeError) as exc:  # h5py on a truncated or corrupt file
            raise ConfigError("input", str(dataset), f"a complete microdesign dataset ({type(exc).__name__}: {exc})"
                              ) from None
        image = sample.image
        if grey_values is not None:
            lut = np.asarray(list(grey_values))
            if lut.size != len(ds.phase_names) or lut.min() < 0 or lut.max() > 255:
                raise ConfigError("grey_values", list(grey_values),
                                  f"{len(ds.phase_names)} values in 0-255, one per phase {list(ds.phase_names)}")
            image = lut.astype(np.uint8)[image]
        info = {
            "dataset": str(dataset),
            "index": sample.index,
            "labels": sample.labels,
            "parameter_units": ds.parameter_units,
            "phase_names": list(ds.phase_names),
            "grey_values": list(map(int, grey_values)) if grey_values is not None else list(range(len(ds.phase_names))),
            "voxel_size_m": ds.voxel_size_m,
            "schema_version": ds.schema_version,
        }
        um = ds.voxel_size_m * 1e6
    output.parent.mkdir(parents=True, exist_ok=True)
    metadata = {"unit": "um", "Info": json.dumps(info)}
    if image.ndim == 3:
        metadata["axes"] = "ZYX"
        metadata["spacing"] = um
    else:
        metadata["axes"] = "YX"
    tifffile.imwrite(output, np.ascontiguousarray(image), imagej=True, resolution=(1.0 / um, 1.0 / um),
                     metadata=metadata)
    logger.info("wrote sample %d (%s) to %s", sample.index, image.shape, output)
    return output
