"""HDF5 dataset of labelled, segmented microstructures (schema ``microdesign-dataset`` 1.0).

One file holds ``n`` samples of the same shape: 3D volumes ``n x L0 x L1 x L2`` or 2D micrographs
``n x H x W`` (uint8 phase labels, :mod:`microdesign.phases`: 0 pore, 1 active material, 2 CBD),
each with its process-parameter labels. Layout (documented in ``docs/dataset_format.md``)::

    /                     attrs: format="microdesign-dataset", schema_version="1.0", ndim (2|3),
                                 voxel_size_m [m], phase_names (JSON list), phase_labels (JSON list),
                                 parameter_names (JSON list), parameter_units (JSON dict),
                                 provenance (JSON dict), n_samples (committed count),
                                 microdesign_version, created_utc
    /images               uint8  n x (sample shape), chunked one sample per chunk (or 64^3 tiles),
                                 gzip-compressed, growable along axis 0
    /labels               float64 n x d, column j = parameter_names[j]
    /seeds                int64  n, RNG seed of each sample (-1 where not generated)
    /source               str    n, where each sample came from (file name, DOE point)

Reading is lazy: :class:`MicrostructureDataset` opens the file and reads only the requested sample
(one chunk per sample), never the whole ``/images`` array. The count of committed samples is the
root attribute ``n_samples``, updated after a sample's data is written and flushed, so a build that
is killed mid-write leaves a readable file whose partial last row is ignored and overwritten on
resume.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from microdesign.errors import ConfigError, check_voxel_size
from microdesign.phases import N_PHASES, PHASE_NAMES

logger = logging.getLogger(__name__)

FORMAT_NAME = "microdesign-dataset"
SCHEMA_VERSION = "1.0"
_COMPRESSION = "gzip"
_COMPRESSION_LEVEL = 4
_MAX_CHUNK_EDGE = 128


@dataclass(frozen=True)
class Sample:
    """One labelled microstructure.

    Attributes:
        image: uint8 phase labels, ``L0 x L1 x L2`` (3D) or ``H x W`` (2D); axis 0 is through-plane.
        labels: process-parameter values keyed by parameter name (units in
            :attr:`MicrostructureDataset.parameter_units`).
        index: position of the sample in its dataset.
    """

    image: np.ndarray
    labels: dict[str, float] = field(hash=False)
    index: int


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON-serialisable: {type(value).__name__}")


def _json_attr(value: Any) -> str:
    from microdesign.data.files import json_safe

    return json.dumps(json_safe(value), sort_keys=True, default=_jsonable, allow_nan=False)  # inf/nan -> null


def _version() -> str:
    try:
        from microdesign import __version__

        return str(__version__)
    except Exception:  # pragma: no cover - package metadata missing
        return "unknown"


def _chunk_shape(sample_shape: tuple[int, ...]) -> tuple[int, ...]:
    return (1,) + tuple(min(s, _MAX_CHUNK_EDGE) for s in sample_shape)


def _validate_header(
    sample_shape: Sequence[int],
    parameter_names: Sequence[str],
    parameter_units: Mapping[str, str],
    voxel_size_m: float,
    phase_names: Sequence[str],
) -> None:
    require_shape = len(sample_shape) in (2, 3) and all(int(s) > 0 for s in sample_shape)
    if not require_shape:
        raise ConfigError("sample_shape", tuple(sample_shape), "2 or 3 positive sizes (H x W or L0 x L1 x L2)")
    check_voxel_size("voxel_size_m", voxel_size_m)
    if len(set(parameter_names)) != len(parameter_names):
        raise ConfigError("parameter_names", list(parameter_names), "unique names")
    missing = [n for n in parameter_names if n not in parameter_units]
    if missing:
        raise ConfigError("parameter_units", dict(parameter_units), f"a unit for every parameter; missing {missing}")
    if len(phase_names) < 1 or len(phase_names) > 255:
        raise ConfigError("phase_names", list(phase_names), "1 to 255 phase names")


class DatasetWriter:
    """Appendable writer of a dataset file; reopening an existing file resumes after its last sample.

    Use as a context manager::

        with DatasetWriter(path, (64, 64, 64), names, units, 0.398e-6, provenance) as w:
            for image, labels in ...:
                w.append(image, labels, seed=s)

    Args:
        path: HDF5 file to create, or to resume when it exists and ``resume`` is true.
        sample_shape: shape of every sample, ``(L0, L1, L2)`` or ``(H, W)``.
        parameter_names: label names, in column order of ``/labels``.
        parameter_units: unit per parameter name (e.g. ``{"porosity": "1"}``).
        voxel_size_m: voxel (pixel) edge length [m].
        provenance: free JSON-serialisable record of how the data was made (command, config, seed,
            source files, licence). ``provenance["build_key"]``, if given, must match on resume.
        phase_names: names of labels 0..k-1 (default pore, active_material, cbd).
        resume: reopen an existing compatible file and append after its committed samples; if false,
            an existing file is an error.

    Raises:
        ConfigError: invalid header values, an existing file without ``resume``, or an existing file
            whose shape, parameters, voxel size, phases or ``build_key`` differ.
    """

    def __init__(
        self,
        path: str | Path,
        sample_shape: Sequence[int],
        parameter_names: Sequence[str],
        parameter_units: Mapping[str, str],
        voxel_size_m: float,
        provenance: Mapping[str, Any] | None = None,
        phase_names: Sequence[str] = PHASE_NAMES,
        resume: bool = True,
    ) -> None:
        import h5py

        self.path = Path(path)
        self.sample_shape = tuple(int(s) for s in sample_shape)
        self.parameter_names = tuple(str(n) for n in parameter_names)
        self.voxel_size_m = float(voxel_size_m) if voxel_size_m is not None else voxel_size_m
        self.phase_names = tuple(phase_names)
        self.provenance = dict(provenance or {})
        _validate_header(self.sample_shape, self.parameter_names, parameter_units, self.voxel_size_m,
                         self.phase_names)
        self.parameter_units = {n: str(parameter_units[n]) for n in self.parameter_names}
        if self.path.exists():
            if not resume:
                raise ConfigError("path", str(self.path), "a path that does not exist yet (or resume=True)")
            from microdesign.data.files import require_file

            require_file(self.path, "path", ("hdf5",), "a microdesign dataset to resume (HDF5)")
            try:
                self._file = h5py.File(self.path, "r+")
            except OSError as exc:
                raise ConfigError("path", str(self.path), f"a readable microdesign dataset to resume ({exc})") from None
            self._check_compatible()
            n = int(self._file.attrs["n_samples"])
            logger.info("resuming %s after %d committed samples", self.path, n)
        else:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = h5py.File(self.path, "w")
            self._create()

    # -- file layout -------------------------------------------------------------------------
    def _create(self) -> None:
        import h5py

        f = self._file
        d = len(self.parameter_names)
        f.attrs["format"] = FORMAT_NAME
        f.attrs["schema_version"] = SCHEMA_VERSION
        f.attrs["ndim"] = len(self.sample_shape)
        f.attrs["voxel_size_m"] = self.voxel_size_m
        f.attrs["phase_names"] = _json_attr(list(self.phase_names))
        f.attrs["phase_labels"] = _json_attr(list(range(len(self.phase_names))))
        f.attrs["parameter_names"] = _json_attr(list(self.parameter_names))
        f.attrs["parameter_units"] = _json_attr(self.parameter_units)
        f.attrs["provenance"] = _json_attr(self.provenance)
        f.attrs["microdesign_version"] = _version()
        f.attrs["created_utc"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
        f.attrs["n_samples"] = 0
        f.create_dataset(
            "images",
            shape=(0,) + self.sample_shape,
            maxshape=(None,) + self.sample_shape,
            dtype=np.uint8,
            chunks=_chunk_shape(self.sample_shape),
            compression=_COMPRESSION,
            compression_opts=_COMPRESSION_LEVEL,
            shuffle=False,
        )
        f.create_dataset("labels", shape=(0, d), maxshape=(None, d), dtype=np.float64, chunks=(256, max(d, 1)))
        f.create_dataset("seeds", shape=(0,), maxshape=(None,), dtype=np.int64, chunks=(256,))
        f.create_dataset("source", shape=(0,), maxshape=(None,), dtype=h5py.string_dtype(), chunks=(256,))
        f.flush()

    def _check_compatible(self) -> None:
        f = self._file
        problems = []
        if f.attrs.get("format") != FORMAT_NAME:
            problems.append(f"format {f.attrs.get('format')!r} is not {FORMAT_NAME!r}")
        else:
            if tuple(f["images"].shape[1:]) != self.sample_shape:
                problems.append(f"sample shape {tuple(f['images'].shape[1:])} != {self.sample_shape}")
            if tuple(json.loads(f.attrs["parameter_names"])) != self.parameter_names:
                problems.append(f"parameters {json.loads(f.attrs['parameter_names'])} != {list(self.parameter_names)}")
            if not np.isclose(float(f.attrs["voxel_size_m"]), self.voxel_size_m, rtol=1e-9, atol=0):
                problems.append(f"voxel size {float(f.attrs['voxel_size_m'])} != {self.voxel_size_m}")
            if tuple(json.loads(f.attrs["phase_names"])) != self.phase_names:
                problems.append(f"phases {json.loads(f.attrs['phase_names'])} != {list(self.phase_names)}")
            old_key = json.loads(f.attrs["provenance"]).get("build_key")
            new_key = self.provenance.get("build_key")
            if old_key != new_key:
                problems.append(f"build_key {old_key!r} != {new_key!r} (different build settings)")
        if problems:
            self._file.close()
            raise ConfigError("path", str(self.path), "a compatible dataset to resume: " + "; ".join(problems))

    # -- writing -----------------------------------------------------------------------------
    def __len__(self) -> int:
        return int(self._file.attrs["n_samples"])

    def append(self, image: np.ndarray, labels: Mapping[str, float], seed: int = -1, source: str = "") -> int:
        """Write one sample and commit it; returns its index.

        Args:
            image: uint8 phase labels of shape ``sample_shape``, values < number of phases.
            labels: one finite value per parameter name.
            seed: RNG seed that generated the sample (-1 if none).
            source: where it came from (file name, DOE point).

        Raises:
            ConfigError: wrong shape/dtype, a label value outside the phases, a missing or
                non-finite label.
        """
        image = np.asarray(image)
        if image.shape != self.sample_shape:
            raise ConfigError("image.shape", image.shape, f"{self.sample_shape}", context=source or None)
        if image.dtype != np.uint8:
            raise ConfigError("image.dtype", str(image.dtype), "uint8 phase labels", context=source or None)
        if image.size and int(image.max()) >= len(self.phase_names):
            raise ConfigError("image", f"max label {int(image.max())}", f"labels < {len(self.phase_names)}",
                              context=source or None)
        row = np.empty(len(self.parameter_names), dtype=np.float64)
        for j, name in enumerate(self.parameter_names):
            if name not in labels:
                raise ConfigError(f"labels[{name!r}]", None, "a value for every parameter", context=source or None)
            row[j] = float(labels[name])
            if not np.isfinite(row[j]):
                raise ConfigError(f"labels[{name!r}]", row[j], "a finite number", context=source or None)
        f = self._file
        i = int(f.attrs["n_samples"])
        for key in ("images", "labels", "seeds", "source"):
            if f[key].shape[0] < i + 1:
                f[key].resize(i + 1, axis=0)
        f["images"][i] = image
        f["labels"][i] = row
        f["seeds"][i] = int(seed)
        f["source"][i] = str(source)
        f.flush()
        f.attrs["n_samples"] = i + 1  # commit only after the data is on disk
        f.flush()
        return i

    def set_provenance(self, **entries: Any) -> None:
        """Merge entries into the provenance record (e.g. timings at the end of a build)."""
        prov = json.loads(self._file.attrs["provenance"])
        prov.update(entries)
        self._file.attrs["provenance"] = _json_attr(prov)

    def close(self) -> None:
        """Trim uncommitted rows and close the file."""
        f = getattr(self, "_file", None)
        if f is None or not f.id.valid:
            return
        if f.mode != "r":
            n = int(f.attrs["n_samples"])
            for key in ("images", "labels", "seeds", "source"):
                if f[key].shape[0] != n:
                    f[key].resize(n, axis=0)
        f.close()

    def __enter__(self) -> DatasetWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def write_dataset(
    path: str | Path,
    images: Iterable[np.ndarray] | np.ndarray,
    labels: Sequence[Mapping[str, float]] | np.ndarray,
    parameter_units: Mapping[str, str],
    voxel_size_m: float,
    provenance: Mapping[str, Any] | None = None,
    parameter_names: Sequence[str] | None = None,
    phase_names: Sequence[str] = PHASE_NAMES,
    seeds: Sequence[int] | None = None,
    sources: Sequence[str] | None = None,
    overwrite: bool = False,
) -> Path:
    """Write a whole dataset in one call.

    Args:
        path: output HDF5 file.
        images: ``n x L0 x L1 x L2`` or ``n x H x W`` uint8 array, or an iterable of equal-shape arrays.
        labels: one mapping name -> value per sample, or an ``n x d`` array (then ``parameter_names``
            gives the column names).
        parameter_units: unit per parameter; its key order is the column order when
            ``parameter_names`` is not given and ``labels`` are mappings.
        voxel_size_m: voxel edge length [m].
        provenance: JSON-serialisable record of origin.
        parameter_names: column order (default: order of ``parameter_units``).
        phase_names: names of labels 0..k-1.
        seeds: per-sample seed (default -1).
        sources: per-sample origin string.
        overwrite: replace an existing file.

    Returns:
        The path written.

    Raises:
        ConfigError: see :class:`DatasetWriter`; also a count mismatch between images and labels.
    """
    path = Path(path)
    names = tuple(parameter_names) if parameter_names is not None else tuple(parameter_units)
    label_rows: list[Mapping[str, float]]
    if isinstance(labels, np.ndarray):
        arr = np.atleast_2d(np.asarray(labels, dtype=np.float64))
        if arr.shape[1] != len(names):
            raise ConfigError("labels", arr.shape, f"n x {len(names)} (one column per parameter {list(names)})")
        label_rows = [dict(zip(names, map(float, r))) for r in arr]
    else:
        label_rows = list(labels)
    image_list = list(images) if not isinstance(images, np.ndarray) else [images[i] for i in range(images.shape[0])]
    if len(image_list) != len(label_rows):
        raise ConfigError("labels", len(label_rows), f"one label row per image ({len(image_list)} images)")
    if not image_list:
        raise ConfigError("images", 0, "at least one image")
    if path.exists():
        if not overwrite:
            raise ConfigError("path", str(path), "a path that does not exist yet (or overwrite=True)")
        path.unlink()
    with DatasetWriter(path, np.shape(image_list[0]), names, parameter_units, voxel_size_m, provenance,
                       phase_names=phase_names, resume=False) as writer:
        for i, (img, lab) in enumerate(zip(image_list, label_rows)):
            writer.append(np.asarray(img), lab, seed=-1 if seeds is None else int(seeds[i]),
                          source="" if sources is None else str(sources[i]))
    return path


class MicrostructureDataset:
    """Lazy, read-only view of a dataset file (see module docstring for the layout).

    ``len(ds)`` samples; ``ds[i]`` reads sample ``i`` only (one chunk). Safe to pickle (for
    ``torch.utils.data.DataLoader`` workers): the HDF5 handle is reopened in each process.

    Args:
        path: dataset file written by :class:`DatasetWriter` / :func:`write_dataset`.
        option: the option that named the file, for messages (``input``, ``dataset.path``);
            None: the messages name the failing attribute (``format``, ``schema_version``).

    Raises:
        FileNotFoundError: no such file.
        ConfigError: not an HDF5 file, not a ``microdesign-dataset`` file, an unsupported schema
            version, or a header that cannot be read (a truncated or corrupt file).
    """

    def __init__(self, path: str | Path, option: str | None = None) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise FileNotFoundError(f"dataset file not found: {self.path}")
        self._file = None
        self._hash: str | None = None
        try:
            f = self._h5()
        except OSError as exc:
            raise ConfigError(option or "path", str(self.path),
                              f"a {FORMAT_NAME} HDF5 file that can be read ({exc})") from None
        fmt = f.attrs.get("format")
        if fmt != FORMAT_NAME:
            self.close()
            raise ConfigError(option or "format", str(self.path) if option else fmt,
                              f"a {FORMAT_NAME!r} file (its format attribute is {fmt!r})" if option
                              else f"{FORMAT_NAME!r} (file {self.path})")
        version = str(f.attrs.get("schema_version"))
        if version.split(".")[0] != SCHEMA_VERSION.split(".")[0]:
            self.close()
            raise ConfigError("schema_version", version, f"major version {SCHEMA_VERSION.split('.')[0]} ({self.path})")
        try:
            self._n = int(f.attrs["n_samples"])
            self._names = tuple(json.loads(f.attrs["parameter_names"]))
            self._units = dict(json.loads(f.attrs["parameter_units"]))
            self._phases = tuple(json.loads(f.attrs["phase_names"]))
            self._provenance = dict(json.loads(f.attrs["provenance"]))
            self._voxel = float(f.attrs["voxel_size_m"])
            self._ndim = int(f.attrs["ndim"])
            self._shape = tuple(int(s) for s in f["images"].shape[1:])
        except (KeyError, OSError, RuntimeError, ValueError) as exc:
            self.close()
            raise ConfigError(option or "path", str(self.path),
                              f"a complete {FORMAT_NAME} file (header unreadable: {type(exc).__name__}: {exc})") from None
        self._version = version

    def _h5(self):
        import h5py

        if self._file is None or not self._file.id.valid:
            self._file = h5py.File(self.path, "r")
        return self._file

    def close(self) -> None:
        """Close the HDF5 handle (reopened automatically on the next read)."""
        if self._file is not None and self._file.id.valid:
            self._file.close()
        self._file = None

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # pragma: no cover - interpreter shutdown
            pass

    def __enter__(self) -> MicrostructureDataset:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_file"] = None
        return state

    def __len__(self) -> int:
        return self._n

    def __getitem__(self, i: int) -> Sample:
        i = int(i)
        if i < 0:
            i += self._n
        if not 0 <= i < self._n:
            raise IndexError(f"sample {i} out of range for {self._n} samples in {self.path}")
        f = self._h5()
        image = f["images"][i]
        row = f["labels"][i]
        return Sample(image=image, labels={n: float(v) for n, v in zip(self._names, row)}, index=i)

    def __iter__(self) -> Iterator[Sample]:
        for i in range(self._n):
            yield self[i]

    def __repr__(self) -> str:
        return (f"MicrostructureDataset({str(self.path)!r}, n={self._n}, shape={self._shape}, "
                f"parameters={list(self._names)}, voxel_size_m={self._voxel:g})")

    # -- metadata ----------------------------------------------------------------------------
    @property
    def parameter_names(self) -> tuple[str, ...]:
        return self._names

    @property
    def parameter_units(self) -> dict[str, str]:
        return dict(self._units)

    @property
    def voxel_size_m(self) -> float:
        return self._voxel

    @property
    def phase_names(self) -> tuple[str, ...]:
        return self._phases

    @property
    def ndim(self) -> int:
        return self._ndim

    @property
    def sample_shape(self) -> tuple[int, ...]:
        return self._shape

    @property
    def schema_version(self) -> str:
        return self._version

    @property
    def provenance(self) -> dict[str, Any]:
        return dict(self._provenance)

    def labels_array(self) -> np.ndarray:
        """All labels, ``n x d`` float64, columns in :attr:`parameter_names` order."""
        return np.asarray(self._h5()["labels"][: self._n], dtype=np.float64).reshape(self._n, len(self._names))

    def seeds(self) -> np.ndarray:
        """Per-sample RNG seeds, shape ``n`` (-1 where not generated)."""
        return np.asarray(self._h5()["seeds"][: self._n], dtype=np.int64)

    def sources(self) -> list[str]:
        """Per-sample origin strings, length ``n``."""
        return [s.decode() if isinstance(s, bytes) else str(s) for s in self._h5()["source"][: self._n]]

    def content_hash(self) -> str:
        """SHA-256 (hex) of the data and labels: sample shape, voxel size, phase names, parameter
        names and units, the ``n x d`` labels and every image's bytes, read one sample at a time.

        Stable across re-writes, compression settings, provenance and creation time; changes when any
        voxel, label, name or the voxel size changes. Used by generator checkpoints.
        """
        if self._hash is None:
            h = hashlib.sha256()
            header = {
                "schema_major": self._version.split(".")[0],
                "shape": list(self._shape),
                "n": self._n,
                "voxel_size_m": repr(self._voxel),
                "phase_names": list(self._phases),
                "parameter_names": list(self._names),
                "parameter_units": {k: self._units.get(k) for k in self._names},
            }
            h.update(json.dumps(header, sort_keys=True).encode())
            h.update(np.ascontiguousarray(self.labels_array(), dtype="<f8").tobytes())
            images = self._h5()["images"]
            for i in range(self._n):
                h.update(np.ascontiguousarray(images[i], dtype=np.uint8).tobytes())
            self._hash = h.hexdigest()
        return self._hash

    def phase_fractions(self, i: int) -> np.ndarray:
        """Volume fraction of each phase in sample ``i``, shape ``k`` (k = number of phases)."""
        img = self[i].image
        return np.bincount(img.reshape(-1), minlength=max(len(self._phases), N_PHASES))[: len(self._phases)] / img.size
