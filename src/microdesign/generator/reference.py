"""The reference a generator's fidelity is measured against: the line that built its training data.

A generator trained on a synthetic-line dataset must be compared with *that* line: the same line
settings (particle size, flattening, CBD lengths, ...), voxel size and cube size. ``build-dataset``
records them in the dataset's provenance (``line_parameters``, ``generator``, the ``voxel_size_m``
attribute and the sample shape; docs/dataset_format.md). :func:`synthetic_reference` rebuilds the
reference line from that record, so the comparison cannot drift from the training data when the
default line settings in ``conf/synth/`` change. The composed line config is only a fallback, per
setting, for a provenance that lacks it (logged as a warning); an explicit override that contradicts
the provenance is refused.

:func:`find_training_dataset` locates the training dataset of a generator: a path recorded in its
checkpoint (``training.dataset_path``) or the first candidate file whose content hash equals the
checkpoint's ``dataset_hash``; :func:`training_line_reference` puts the two together for a generator.
"""

from __future__ import annotations

import importlib
import inspect
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from microdesign.errors import ConfigError, check_voxel_size

logger = logging.getLogger(__name__)

#: cube edge used when neither the provenance nor the config gives one (the training cube of the
#: shipped dataset, ``conf/dataset/default.yaml``).
DEFAULT_SIZE_VOXELS = 64


@dataclass(frozen=True)
class SyntheticReference:
    """A synthetic line rebuilt as it was when it made a training dataset.

    Attributes:
        target: import path of the line class (``"microdesign.synth.line.SyntheticLine"``).
        settings: its constructor keyword arguments.
        voxel_size_m: voxel edge [m] of the reference cubes.
        size_voxels: cube edge ``L`` [voxels].
        sources: setting name (and ``"voxel_size_m"``, ``"size_voxels"``) -> where the value came
            from: ``"provenance"``, ``"override"`` (explicit, absent from the provenance) or ``"config"``
            (fallback, warned).
        origin: the dataset the provenance was read from (``""``: none, everything from config).
    """

    target: str
    settings: dict[str, Any]
    voxel_size_m: float
    size_voxels: int
    sources: dict[str, str] = field(default_factory=dict)
    origin: str = ""

    def line(self) -> Any:
        """A new instance of the line (:class:`microdesign.synth.SyntheticLine`)."""
        return _line_class(self.target)(**self.settings)

    def describe(self) -> str:
        """One line for reports: class, settings, voxel and cube size, where they came from."""
        fallback = sorted(k for k, s in self.sources.items() if s == "config")
        where = f"provenance of {self.origin}" if self.origin else "config (no training dataset)"
        extra = f"; from config (absent from the provenance): {fallback}" if fallback and self.origin else ""
        return (f"synthetic line {self.target} {self.settings}, voxel {self.voxel_size_m:.4g} m, "
                f"{self.size_voxels}^3 cubes, from the {where}{extra}")


def _line_class(target: str) -> type:
    module, _, name = str(target).rpartition(".")
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError, ValueError) as exc:
        raise ConfigError("reference line", target, "an importable synthetic-line class") from exc


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, (int, float, np.number)) and isinstance(b, (int, float, np.number)) \
            and not isinstance(a, bool) and not isinstance(b, bool):
        return bool(np.isclose(float(a), float(b), rtol=1e-9, atol=0.0))
    return a == b


def synthetic_reference(provenance: Mapping[str, Any] | None, *, dataset_voxel_size_m: float | None = None,
                        dataset_shape: Sequence[int] | None = None, fallback: Mapping[str, Any] | None = None,
                        overrides: Mapping[str, Any] | None = None, voxel_size_m: float | None = None,
                        size_voxels: int | None = None, origin: str = "") -> SyntheticReference:
    """The reference line of a synthetic-line training dataset, from its provenance.

    Precedence, per setting: the provenance (``line_parameters``, the class in ``generator``, the
    dataset's voxel size and cubic sample edge); else an explicit override; else the ``fallback``
    config (a warning names each setting taken from it). An explicit override that differs from the
    provenance is an error, not a silent choice between the two.

    Args:
        provenance: the dataset's provenance dict (:attr:`MicrostructureDataset.provenance`), or None
            when there is no training dataset (everything from ``overrides``/``fallback``, warned).
        dataset_voxel_size_m: the dataset's ``voxel_size_m`` attribute [m].
        dataset_shape: the dataset's sample shape (a cube edge is taken from a cubic 3D shape).
        fallback: the composed line config (``conf/synth/*.yaml``, with ``_target_``).
        overrides: explicit line settings (``reference.synth`` on the command line); each must agree
            with the provenance where the provenance has it (relative 1e-9 for numbers).
        voxel_size_m: explicit voxel size [m] (None: the dataset's, else ``fallback``'s
            ``default_voxel_size_m``).
        size_voxels: explicit cube edge (None: the dataset's, else :data:`DEFAULT_SIZE_VOXELS`).
        origin: the dataset's path, for messages.

    Returns:
        :class:`SyntheticReference`.

    Raises:
        ConfigError: the provenance is of a non-synthetic dataset; it records settings the line class
            does not accept (the line changed since: the training data cannot be reproduced); an
            override contradicts the provenance; or an unknown setting name.
    """
    fallback = dict(fallback or {})
    overrides = dict(overrides or {})
    prov = dict(provenance or {})
    where = f"the provenance of {origin}" if origin else "the dataset provenance"
    kind = prov.get("kind")
    if provenance is not None and kind is not None and kind != "synthetic":
        raise ConfigError("reference.dataset", origin or kind, f"a synthetic-line dataset (provenance kind "
                          f"'synthetic', written by build-dataset), not kind {kind!r}; for real data use "
                          f"reference.kind=volume")
    recorded = prov.get("line_parameters")
    recorded = dict(recorded) if isinstance(recorded, Mapping) else None
    target = str(prov.get("generator") or fallback.get("_target_") or "microdesign.synth.SyntheticLine")
    accepted = set(inspect.signature(_line_class(target).__init__).parameters) - {"self"}
    sources: dict[str, str] = {}
    if provenance is not None and recorded is None:
        logger.warning("%s has no line_parameters: the synthetic-line settings come from the config "
                       "(conf/synth), which may differ from the line that built the training data", where)
    elif provenance is None:
        logger.warning("no training dataset for the fidelity reference: the synthetic-line settings, voxel size "
                       "and cube size come from the config (conf/synth), which may differ from the line that "
                       "built the generator's training data")
    recorded = recorded or {}
    unknown = sorted(set(recorded) - accepted)
    if unknown:
        raise ConfigError("reference.dataset", origin or "provenance", f"line settings that {target} accepts; "
                          f"{where} records {unknown} (the line changed since the dataset was built, so "
                          f"its training data cannot be reproduced)")
    bad = sorted(set(overrides) - accepted)
    if bad:
        raise ConfigError("reference.synth", bad, f"settings of {target}: {sorted(accepted)}")
    settings: dict[str, Any] = {}
    for key in sorted(accepted):
        if key in recorded:
            if key in overrides and not _same(overrides[key], recorded[key]):
                raise ConfigError(f"reference.synth.{key}", overrides[key],
                                  f"{recorded[key]!r}, the value in {where} (the line that built the training "
                                  f"data); drop the override or give another reference.dataset")
            settings[key], sources[key] = recorded[key], "provenance"
        elif key in overrides:
            settings[key], sources[key] = overrides[key], "override"
        elif key in fallback:
            settings[key], sources[key] = fallback[key], "config"
    missing = sorted(k for k, s in sources.items() if s == "config")
    if missing and recorded:
        logger.warning("%s lacks the line settings %s: taken from the config (conf/synth)", where, missing)

    prov_voxel = float(dataset_voxel_size_m) if provenance is not None and dataset_voxel_size_m else None
    if prov_voxel is not None:
        if voxel_size_m is not None and not np.isclose(float(voxel_size_m), prov_voxel, rtol=1e-6, atol=0):
            raise ConfigError("reference.voxel_size_m", voxel_size_m,
                              f"{prov_voxel}, the voxel size of {origin or 'the training dataset'}")
        vox, sources["voxel_size_m"] = prov_voxel, "provenance"
    elif voxel_size_m is not None:
        vox, sources["voxel_size_m"] = float(voxel_size_m), "override"
    else:
        vox = float(settings.get("default_voxel_size_m", fallback.get("default_voxel_size_m", 0.0)) or 0.0)
        sources["voxel_size_m"] = "config"
        if provenance is not None:
            logger.warning("%s has no voxel size: using the line's default %.4g m", where, vox)
    vox = check_voxel_size("reference.voxel_size_m", vox)

    shape = tuple(int(s) for s in dataset_shape) if dataset_shape is not None else ()
    prov_size = shape[0] if provenance is not None and len(shape) == 3 and len(set(shape)) == 1 else None
    if prov_size is not None:
        if size_voxels is not None and int(size_voxels) != prov_size:
            raise ConfigError("size_voxels", size_voxels, f"{prov_size}, the cube edge of the training volumes "
                              f"in {origin or 'the training dataset'} (or leave it unset)")
        size, sources["size_voxels"] = prov_size, "provenance"
    elif size_voxels is not None:
        size, sources["size_voxels"] = int(size_voxels), "override"
    else:
        size, sources["size_voxels"] = DEFAULT_SIZE_VOXELS, "config"
        if provenance is not None:
            logger.warning("%s has no cubic 3D sample shape (%s): reference cubes of %d^3", where, shape or None,
                           size)
    if size < 1:
        raise ConfigError("size_voxels", size, "a positive cube edge")
    return SyntheticReference(target, settings, vox, size, sources, origin)


def find_training_dataset(dataset_hash: str, recorded_path: str | None = None,
                          candidates: Sequence[str | Path] = ()) -> Path | None:
    """The training dataset of a generator, identified by its content hash.

    Args:
        dataset_hash: the checkpoint's ``dataset_hash``
            (:meth:`microdesign.data.MicrostructureDataset.content_hash`).
        recorded_path: the path recorded in the checkpoint (``training.dataset_path``), tried first.
        candidates: further ``.h5`` files to try, in order.

    Returns:
        The first existing file whose content hash equals ``dataset_hash``, or None.
    """
    from microdesign.data.dataset import MicrostructureDataset

    tried = []
    for path in [recorded_path, *candidates]:
        if not path:
            continue
        p = Path(path).expanduser()
        if p in tried or not p.is_file() or p.suffix.lower() not in (".h5", ".hdf5"):
            continue
        tried.append(p)
        try:
            with MicrostructureDataset(p) as ds:
                if ds.content_hash() == dataset_hash:
                    return p
        except (OSError, ValueError, KeyError) as exc:
            logger.info("fidelity: %s is not a readable dataset (%s)", p, exc)
            continue
        logger.info("fidelity: %s is not the generator's training dataset (content hash differs)", p)
    return None


def training_line_reference(generator: Any, dataset: str | Path | None = "auto", candidates: Sequence[str | Path] = (),
                            fallback: Mapping[str, Any] | None = None, overrides: Mapping[str, Any] | None = None,
                            voxel_size_m: float | None = None, size_voxels: int | None = None) -> SyntheticReference:
    """The reference line of a generator: :func:`synthetic_reference` from its training dataset.

    Args:
        generator: a :class:`microdesign.generator.Generator`.
        dataset: the training dataset (``.h5``), or ``"auto"``/None: :func:`find_training_dataset` with
            the checkpoint's ``training.dataset_path`` and ``candidates``. An explicit file whose content
            hash is not the checkpoint's ``dataset_hash`` is used with a warning. No dataset found:
            everything from ``fallback`` (warned).
        candidates: files tried by ``"auto"``.
        fallback, overrides, voxel_size_m, size_voxels: see :func:`synthetic_reference`.

    Raises:
        ConfigError: see :func:`synthetic_reference`; a missing explicit ``dataset`` file; a reference
            voxel size that is not the generator's.
    """
    from microdesign.data.dataset import MicrostructureDataset

    meta = generator.metadata
    size = int(size_voxels) if size_voxels is not None else None
    vox = float(voxel_size_m) if voxel_size_m is not None else None
    verified = False
    if dataset in (None, "auto"):
        recorded = meta.training.get("dataset_path")
        dataset = find_training_dataset(meta.dataset_hash, recorded, list(candidates))
        verified = dataset is not None
        if dataset is None:
            logger.warning("the training dataset of generator %s (hash %s...) was not found (recorded path %s, "
                           "candidates %s); give reference.dataset=<file.h5>", meta.name, meta.dataset_hash[:8],
                           recorded, list(candidates))
    if dataset is None:
        ref = synthetic_reference(None, fallback=fallback, overrides=overrides,
                                  voxel_size_m=vox if vox is not None else generator.voxel_size_m, size_voxels=size)
    else:
        path = Path(str(dataset)).expanduser()
        if not path.is_file():
            raise ConfigError("reference.dataset", str(dataset), "an existing .h5 dataset file (build-dataset output)")
        with MicrostructureDataset(path) as ds:
            content_hash = None if verified else ds.content_hash()  # hashes the whole dataset: once
            if content_hash is not None and content_hash != meta.dataset_hash:
                logger.warning("%s is not the training dataset of generator %s (content hash %s... vs %s...)",
                               path, meta.name, content_hash[:8], meta.dataset_hash[:8])
            ref = synthetic_reference(ds.provenance, dataset_voxel_size_m=ds.voxel_size_m,
                                      dataset_shape=ds.sample_shape, fallback=fallback, overrides=overrides,
                                      voxel_size_m=vox, size_voxels=size, origin=str(path))
    if not np.isclose(ref.voxel_size_m, generator.voxel_size_m, rtol=1e-6, atol=0):
        raise ConfigError("reference.voxel_size_m", ref.voxel_size_m,
                          f"the voxel size {generator.voxel_size_m} m of generator {meta.name} (the reference "
                          f"must be at the generator's resolution; {ref.origin or 'the config'} has another)")
    logger.info("fidelity reference: %s", ref.describe())
    return ref
