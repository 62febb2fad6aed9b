"""Training data for the generator, held in memory: labelled 3D volumes or 2D micrographs.

:class:`TrainingData` is the small protocol the training loop needs. Build it from a
:class:`microdesign.data.dataset.MicrostructureDataset` file (``.h5``), from a segmented TIFF (a user's
single tomogram or micrograph; unconditioned), or directly from arrays (tests).
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from microdesign.errors import ConfigError, check_voxel_size
from microdesign.phases import N_PHASES, PHASE_NAMES

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainingData:
    """Labelled segmented images in memory.

    Attributes:
        images: list of uint8 arrays, all 3D (``L0 x L1 x L2``) or all 2D (``H x W``); labels 0/1/2.
        labels: ``n x d`` physical parameter values (d may be 0: unconditioned).
        parameter_names: ``d`` names.
        parameter_units: ``d`` units.
        voxel_size_m: voxel edge [m].
        bounds: ``name -> (lower, upper)``: the training bounds recorded in the checkpoint.
        content_hash: SHA-256 of the data (recorded in the checkpoint).
        description: where the data came from.
        source_path: absolute path of the file it was read from (``""`` for arrays); recorded in the
            checkpoint as ``training.dataset_path`` (the fidelity report finds the training data there).
    """

    images: list[np.ndarray]
    labels: np.ndarray
    parameter_names: tuple[str, ...]
    parameter_units: tuple[str, ...]
    voxel_size_m: float
    bounds: dict[str, tuple[float, float]] = field(default_factory=dict)
    content_hash: str = ""
    description: str = ""
    source_path: str = ""

    def __post_init__(self) -> None:
        if not self.images:
            raise ConfigError("images", 0, "at least one training image")
        ndims = {im.ndim for im in self.images}
        if len(ndims) != 1 or ndims.pop() not in (2, 3):
            raise ConfigError("images", sorted({im.ndim for im in self.images}), "all 2D or all 3D images")
        for i, im in enumerate(self.images):
            if im.dtype != np.uint8 or (im.size and int(im.max()) >= N_PHASES):
                raise ConfigError("images", f"dtype {im.dtype}, max {int(im.max())}", "uint8 labels 0/1/2")
            present = np.flatnonzero(np.bincount(im.reshape(-1), minlength=N_PHASES))
            if present.size < 2:
                raise ConfigError("images", f"image {i} {im.shape} is all {PHASE_NAMES[int(present[0])]}"
                                  if present.size else f"image {i} is empty",
                                  "segmented images showing at least two phases (one phase has no microstructure "
                                  "to learn; check the label map)")
        lab = np.asarray(self.labels, dtype=np.float64).reshape(len(self.images), len(self.parameter_names))
        object.__setattr__(self, "labels", lab)
        if not np.all(np.isfinite(lab)):
            raise ConfigError("labels", "non-finite", "finite parameter labels")
        if len(self.parameter_units) != len(self.parameter_names):
            raise ConfigError("parameter_units", self.parameter_units, "one unit per parameter")
        check_voxel_size("voxel_size_m", self.voxel_size_m)
        from microdesign.design.space import in_physical_range, physical_range, range_text

        bounds = dict(self.bounds)
        for j, name in enumerate(self.parameter_names):
            rng = physical_range(name)
            bad = [float(v) for v in lab[:, j] if rng is not None and not in_physical_range(float(v), rng)]
            if bad:
                raise ConfigError(f"labels[{name!r}]", bad[0], f"a physical {name} in {range_text(rng)} "
                                  f"({len(bad)} of {len(lab)} labels are not)")
            if name not in bounds:
                lo, hi = float(lab[:, j].min()), float(lab[:, j].max())
                if hi <= lo:
                    raise ConfigError(f"labels[{name!r}]", lo, "at least two distinct values to condition on "
                                      "(or give training bounds; to train a single-class model on these "
                                      "images, leave the parameters out: dataset.parameters=[])")
                bounds[name] = (lo, hi)
            lo, hi = bounds[name]
            if not lo < hi:
                raise ConfigError(f"bounds[{name!r}]", (lo, hi), "lower < upper")
            if lab[:, j].min() < lo - 1e-9 * (hi - lo) or lab[:, j].max() > hi + 1e-9 * (hi - lo):
                raise ConfigError(f"bounds[{name!r}]", (lo, hi), f"bounds that contain every label "
                                  f"[{lab[:, j].min()}, {lab[:, j].max()}]")
        object.__setattr__(self, "bounds", {k: (float(v[0]), float(v[1])) for k, v in bounds.items()
                                             if k in self.parameter_names})
        if not self.content_hash:
            object.__setattr__(self, "content_hash", hash_arrays(self.images, lab, self.parameter_names,
                                                                 self.voxel_size_m))

    @property
    def ndim(self) -> int:
        return self.images[0].ndim

    def normalised_labels(self) -> np.ndarray:
        """Labels mapped to [0, 1] by the bounds, ``n x d``."""
        lo = np.array([self.bounds[k][0] for k in self.parameter_names])
        hi = np.array([self.bounds[k][1] for k in self.parameter_names])
        return (self.labels - lo) / (hi - lo) if self.parameter_names else self.labels

    @classmethod
    def from_arrays(cls, images: Sequence[np.ndarray] | np.ndarray, labels: Sequence[Mapping[str, float]] | None = None,
                    parameter_units: Mapping[str, str] | None = None, voxel_size_m: float = 1e-6,
                    bounds: Mapping[str, Sequence[float]] | None = None, description: str = "arrays") -> TrainingData:
        """Build from arrays (``labels``: one ``name -> value`` mapping per image; None: unconditioned)."""
        imgs = [np.ascontiguousarray(im, dtype=np.uint8) for im in images]
        units = dict(parameter_units or {})
        names = tuple(units) if units else (tuple(labels[0]) if labels else ())
        lab = np.array([[float(row[k]) for k in names] for row in labels]) if labels else np.zeros((len(imgs), 0))
        return cls(imgs, lab, names, tuple(units.get(k, "1") for k in names), float(voxel_size_m),
                   {k: (float(v[0]), float(v[1])) for k, v in (bounds or {}).items()}, description=description)


def hash_arrays(images: Sequence[np.ndarray], labels: np.ndarray, names: Sequence[str], voxel_size_m: float) -> str:
    """SHA-256 of images, labels, names and voxel size (order-sensitive)."""
    h = hashlib.sha256()
    h.update(json.dumps({"names": list(names), "voxel_size_m": repr(float(voxel_size_m))}).encode())
    h.update(np.ascontiguousarray(labels, dtype="<f8").tobytes())
    for im in images:
        h.update(json.dumps(list(im.shape)).encode())
        h.update(np.ascontiguousarray(im, dtype=np.uint8).tobytes())
    return h.hexdigest()


def load_training_data(path: str | Path, *, voxel_size_m: float | None = None,
                       label_map: Mapping[int | float, int] | None = None,
                       bounds: Mapping[str, Sequence[float]] | None = None,
                       max_samples: int | None = None, option: str = "dataset.path",
                       parameters: Sequence[str] | None = None, downsample: int = 1) -> TrainingData:
    """Load training data from a dataset file (``.h5``/``.hdf5``) or a segmented TIFF.

    Args:
        path: file. HDF5: a ``microdesign-dataset`` (:class:`microdesign.data.dataset.MicrostructureDataset`);
            its parameter labels condition the generator. TIFF: one segmented 3D volume (or a 2D image,
            ``1 x H x W`` accepted), unconditioned (single class).
        voxel_size_m: voxel edge [m]; required for a TIFF (the file does not carry it), checked for HDF5.
        label_map: TIFF only: file value -> phase label (0 pore, 1 AM, 2 CBD) or phase name. Required;
            an unmapped value in the file is an error (:func:`microdesign.data.importer.map_grey_values`).
        bounds: training bounds per parameter (default: the dataset provenance's ``parameter_bounds`` /
            ``bounds`` if present, else the min and max of the labels).
        max_samples: read at most this many samples (HDF5).
        option: the option that names the file, for messages (``dataset.path``, ``reference.path``).
        parameters: HDF5 only: the dataset parameters to condition on, in this order (default: all of
            them). ``[]`` trains a single-class model on the images and ignores their labels, e.g. for
            one imported micrograph whose labels cannot span a conditioning range.
        downsample: coarse-grain every image by this integer factor with :func:`majority_downsample`
            (voxel size multiplied by it): for micrographs whose pixels are much finer than the
            structure a small network can learn (e.g. particles wider than the critics' view).

    Raises:
        ConfigError: a missing, empty, truncated or unreadable file or one of another kind
            (:mod:`microdesign.data.files`), unknown file type, missing voxel size or label map,
            unmapped labels, bad data, a training image of a single phase, a parameter the dataset
            does not have, ``parameters`` given for a TIFF or as one string, a bad ``downsample`` factor.
    """
    from microdesign.data.files import read_array, require_file

    path = Path(path).expanduser()
    suffix = path.suffix.lower()
    if isinstance(downsample, bool) or not float(downsample).is_integer() or int(downsample) < 1:
        raise ConfigError("downsample", downsample, "an integer coarse-graining factor >= 1")
    if isinstance(parameters, str):
        raise ConfigError("parameters", parameters, "a list of dataset parameter names ([] for single class)")
    k = int(downsample)
    if k > 1:
        data = load_training_data(path, voxel_size_m=voxel_size_m, label_map=label_map, bounds=bounds,
                                  max_samples=max_samples, option=option, parameters=parameters)
        images = [majority_downsample(im, k) for im in data.images]
        return TrainingData(images, data.labels, data.parameter_names, data.parameter_units,
                            data.voxel_size_m * k, data.bounds,
                            description=f"{data.description}, downsampled {k}x by majority vote "
                                        f"to {images[0].shape}", source_path=data.source_path)
    if suffix in (".h5", ".hdf5"):
        from microdesign.data.dataset import MicrostructureDataset

        require_file(path, option, ("hdf5",), "a microdesign dataset (HDF5)")
        with MicrostructureDataset(path, option=option) as ds:
            if tuple(ds.phase_names) != PHASE_NAMES:
                raise ConfigError("phase_names", ds.phase_names, f"{PHASE_NAMES} ({path})")
            if voxel_size_m is not None and not np.isclose(voxel_size_m, ds.voxel_size_m, rtol=1e-6):
                raise ConfigError("voxel_size_m", voxel_size_m, f"the dataset's {ds.voxel_size_m} ({path})")
            n = len(ds) if max_samples is None else min(len(ds), int(max_samples))
            try:
                images = [ds[i].image for i in range(n)]
                labels = ds.labels_array()[:n]
            except (OSError, KeyError, RuntimeError) as exc:  # h5py on a truncated or corrupt file
                raise ConfigError(option, str(path), f"a complete microdesign dataset ({type(exc).__name__}: {exc})"
                                  ) from None
            prov = ds.provenance
            names = tuple(ds.parameter_names)
            if parameters is not None:
                unknown = [p for p in parameters if p not in names]
                if unknown or len(set(parameters)) != len(parameters):
                    raise ConfigError("parameters", list(parameters),
                                      f"distinct parameters of {path.name}: {list(names)}")
                cols = [names.index(p) for p in parameters]
                names, labels = tuple(parameters), labels[:, cols]
            if bounds is None:
                bounds = prov.get("parameter_bounds") or prov.get("bounds")
                if isinstance(bounds, Mapping):
                    bounds = {k: _pair(v) for k, v in bounds.items() if k in names}
                else:
                    bounds = None
            bounds = {k: tuple(v) for k, v in (bounds or {}).items() if k in names}
            digest = ds.content_hash() if n == len(ds) else ""
            return TrainingData(images, labels, names, tuple(ds.parameter_units[k] for k in names), ds.voxel_size_m,
                                bounds, content_hash=digest,
                                description=f"{path.name} ({n} samples, {ds.sample_shape})",
                                source_path=str(path.resolve()))
    if suffix in (".tif", ".tiff"):
        if parameters:
            raise ConfigError("parameters", list(parameters), f"none for a TIFF ({path.name} carries no labels: "
                              "a model trained on it is single class)")
        require_file(path, option, ("tiff",), "a segmented TIFF image")
        if voxel_size_m is None:
            raise ConfigError("voxel_size_m", None, f"the voxel edge in metres of {path.name} (TIFF does not carry it)")
        if not label_map:
            raise ConfigError("label_map", label_map, f"a map file value -> phase label 0/1/2 for {path.name}")
        from microdesign.data.importer import map_grey_values, parse_grey_table

        greys, phase_labels = parse_grey_table(label_map, "label_map")  # the one grey -> phase reader
        raw = read_array(path, option, ("tiff",))
        raw = np.squeeze(raw) if raw.ndim == 3 and raw.shape[0] == 1 else raw
        out = map_grey_values(raw, greys, phase_labels, path.name, "label_map")
        return TrainingData([out], np.zeros((1, 0)), (), (), float(voxel_size_m), {},
                            description=f"{path.name} {raw.shape}", source_path=str(path.resolve()))
    raise ConfigError(option, str(path), "a .h5/.hdf5 microdesign dataset or a .tif/.tiff segmented image")


def majority_downsample(image: np.ndarray, factor: int) -> np.ndarray:
    """Coarse-grain a label image by an integer factor: each ``factor^d`` block becomes its most frequent label.

    Block majority (mode) vote; a tie goes to the lowest label (pore before AM before CBD), which biases
    the pore fraction up slightly where phases are mixed at the block scale. Trailing pixels that do
    not fill a block are dropped. The phase fractions stay close to the original's where structures
    are larger than a block; features thinner than a block (e.g. nano-pores in the carbon-binder
    domain) are lost.

    Args:
        image: 2D or 3D uint8 labels 0..2.
        factor: block edge [pixels], >= 1.

    Returns:
        uint8 labels, each side ``side // factor``.

    Raises:
        ConfigError: a factor that is not an integer, < 1 or larger than the image's smallest side, an
            image not 2D/3D.
    """
    im = np.asarray(image)
    if isinstance(factor, bool) or not float(factor).is_integer():
        raise ConfigError("downsample", factor, "an integer coarse-graining factor >= 1")
    k = int(factor)
    if im.ndim not in (2, 3):
        raise ConfigError("image", f"shape {im.shape}", "a 2D or 3D label image")
    if k < 1 or k > min(im.shape):
        raise ConfigError("downsample", factor, f"an integer factor in 1..{min(im.shape)} for an image {im.shape}")
    if k == 1:
        return im.astype(np.uint8, copy=True)
    out_shape = tuple(s // k for s in im.shape)
    crop = im[tuple(slice(0, n * k) for n in out_shape)]
    split = crop.reshape([v for n in out_shape for v in (n, k)])
    blocks = split.transpose([*range(0, 2 * im.ndim, 2), *range(1, 2 * im.ndim, 2)]).reshape(*out_shape, -1)
    counts = np.stack([(blocks == lab).sum(-1) for lab in range(N_PHASES)], axis=-1)
    return counts.argmax(-1).astype(np.uint8)


def _pair(v: object) -> tuple[float, float]:
    if isinstance(v, Mapping):
        return float(v.get("lower", v.get("lo"))), float(v.get("upper", v.get("hi")))
    seq = list(v)  # type: ignore[arg-type]
    return float(seq[0]), float(seq[1])
