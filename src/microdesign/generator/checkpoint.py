"""Generator checkpoints: weights plus validated metadata, one folder per model (``models/<name>/``).

Layout of a checkpoint folder::

    models/<name>/
        metadata.json    # CheckpointMetadata (names, units, bounds, phases, voxel size, hashes, settings)
        generator.pt     # state_dict of ConditionalGenerator3D (torch.save, loaded with weights_only)

``metadata.json`` stores the SHA-256 of ``generator.pt``: a truncated or edited weights file is
rejected on load, as is metadata that is incomplete, inconsistent, or describes other phases.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from microdesign.errors import ConfigError, check_voxel_size
from microdesign.phases import PHASE_NAMES

logger = logging.getLogger(__name__)

FORMAT_VERSION = 1
METADATA_FILE = "metadata.json"
WEIGHTS_FILE = "generator.pt"
#: the labellings a generator samples with (``phase_fractions`` of :class:`microdesign.generator.Generator`)
LABELLINGS = ("argmax", "design")


class CheckpointError(ConfigError):
    """A generator checkpoint is missing, corrupted, or does not match what was asked for."""

    def __init__(self, path: Path | str, problem: str, expected: str):
        super().__init__("checkpoint", str(path), expected, context=None)
        self.problem = problem
        self.args = (f"generator checkpoint {str(path)!r}: {problem}; expected {expected}",)

    def __str__(self) -> str:  # ConfigError formats from args
        return self.args[0]


def sha256_file(path: Path) -> str:
    """Hex SHA-256 of a file."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


@dataclass(frozen=True)
class CheckpointMetadata:
    """Everything a checkpoint must carry besides its weights (docs/generator.md, "Checkpoint format").

    Attributes:
        name: model name (folder name under ``models/``).
        parameter_names: conditioning parameters, in network channel order (may be empty).
        parameter_units: unit of each parameter (``"1"`` for dimensionless).
        training_bounds: ``name -> [lower, upper]`` in physical units; requests outside are refused.
        phases: phase names by label (must equal :data:`microdesign.phases.PHASE_NAMES`).
        voxel_size_m: edge of one voxel [m].
        dataset_hash: content hash of the training data.
        dataset_description: where the training data came from (path, kind).
        package_version: ``microdesign.__version__`` that trained the model.
        architecture: constructor arguments of :class:`ConditionalGenerator3D`.
        training: training settings and record (steps, batch sizes, learning rates, time, hardware).
        weights_sha256: SHA-256 of ``generator.pt``.
        format_version: checkpoint layout version.
        labelling_caveats: optional, labelling (``"argmax"`` or ``"design"``, the ``phase_fractions`` of
            :class:`microdesign.generator.Generator`) -> what its fidelity check found wrong with it; a
            generator sampled with that labelling logs it as a warning.
    """

    name: str
    parameter_names: tuple[str, ...]
    parameter_units: tuple[str, ...]
    training_bounds: dict[str, tuple[float, float]]
    phases: tuple[str, ...]
    voxel_size_m: float
    dataset_hash: str
    dataset_description: str
    package_version: str
    architecture: dict[str, Any]
    training: dict[str, Any] = field(default_factory=dict)
    weights_sha256: str = ""
    format_version: int = FORMAT_VERSION
    labelling_caveats: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> str:
        data = asdict(self)
        data["parameter_names"] = list(self.parameter_names)
        data["parameter_units"] = list(self.parameter_units)
        data["phases"] = list(self.phases)
        data["training_bounds"] = {k: [float(v[0]), float(v[1])] for k, v in self.training_bounds.items()}
        from microdesign.data.files import json_safe

        return json.dumps(json_safe(data), indent=2, sort_keys=False, allow_nan=False)  # standard JSON: inf/nan -> null

    @classmethod
    def from_dict(cls, data: dict[str, Any], path: Path | str) -> CheckpointMetadata:
        """Parse and validate a metadata dict.

        Raises:
            CheckpointError: a field is missing, of the wrong type, or inconsistent.
        """
        required = [f for f in cls.__dataclass_fields__ if f not in ("training", "weights_sha256", "labelling_caveats")]
        missing = [f for f in required if f not in data]
        if missing:
            raise CheckpointError(path, f"metadata lacks {missing}", f"all of {required}")
        if int(data["format_version"]) != FORMAT_VERSION:
            raise CheckpointError(path, f"format_version {data['format_version']}", f"{FORMAT_VERSION}")
        names = tuple(str(n) for n in data["parameter_names"])
        units = tuple(str(u) for u in data["parameter_units"])
        if len(units) != len(names):
            raise CheckpointError(path, f"{len(names)} parameter names but {len(units)} units",
                                  "one unit per parameter")
        if len(set(names)) != len(names):
            raise CheckpointError(path, f"duplicate parameter names {names}", "unique names")
        raw_bounds = data["training_bounds"]
        if not isinstance(raw_bounds, dict) or set(raw_bounds) != set(names):
            raise CheckpointError(path, f"training_bounds keys {sorted(raw_bounds) if isinstance(raw_bounds, dict) else raw_bounds}",
                                  f"exactly the parameter names {sorted(names)}")
        bounds: dict[str, tuple[float, float]] = {}
        for name in names:
            pair = raw_bounds[name]
            try:
                lo, hi = float(pair[0]), float(pair[1])
            except (TypeError, ValueError, IndexError) as exc:
                raise CheckpointError(path, f"training_bounds[{name!r}] = {pair!r}", "[lower, upper]") from exc
            if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
                raise CheckpointError(path, f"training_bounds[{name!r}] = {pair!r}", "finite lower < upper")
            bounds[name] = (lo, hi)
        phases = tuple(str(p) for p in data["phases"])
        if phases != PHASE_NAMES:
            raise CheckpointError(path, f"phases {phases}", f"the project's phases {PHASE_NAMES}")
        try:
            voxel = check_voxel_size("voxel_size_m", data["voxel_size_m"])
        except ConfigError as exc:
            raise CheckpointError(path, f"voxel_size_m = {data['voxel_size_m']!r}", exc.expected) from None
        arch = dict(data["architecture"])
        for key in ("n_params", "latent_channels", "widths", "n_phases"):
            if key not in arch:
                raise CheckpointError(path, f"architecture lacks {key!r}", "n_params, latent_channels, widths, n_phases")
        if int(arch["n_params"]) != len(names):
            raise CheckpointError(path, f"architecture n_params={arch['n_params']} but {len(names)} parameters",
                                  "one condition channel per parameter")
        if int(arch["n_phases"]) != len(PHASE_NAMES):
            raise CheckpointError(path, f"architecture n_phases={arch['n_phases']}", f"{len(PHASE_NAMES)}")
        arch["widths"] = tuple(int(w) for w in arch["widths"])
        caveats = data.get("labelling_caveats") or {}
        if not (isinstance(caveats, dict) and set(caveats) <= set(LABELLINGS)
                and all(isinstance(v, str) and v for v in caveats.values())):
            raise CheckpointError(path, f"labelling_caveats = {caveats!r}",
                                  f"an object from labellings {LABELLINGS} to non-empty texts")
        return cls(
            name=str(data["name"]), parameter_names=names, parameter_units=units, training_bounds=bounds,
            phases=phases, voxel_size_m=voxel, dataset_hash=str(data["dataset_hash"]),
            dataset_description=str(data["dataset_description"]), package_version=str(data["package_version"]),
            architecture=arch, training=dict(data.get("training") or {}),
            weights_sha256=str(data.get("weights_sha256", "")), format_version=FORMAT_VERSION,
            labelling_caveats=dict(caveats),
        )


def resolve_checkpoint_dir(checkpoint: str | Path) -> Path:
    """A checkpoint folder: an existing path as given, else a name under :func:`microdesign.config.models_dir`.

    Raises:
        CheckpointError: no such folder.
    """
    path = Path(checkpoint).expanduser()
    if path.is_dir():
        return path
    if not path.is_absolute():
        from microdesign.config import models_dir

        try:
            candidate = models_dir() / path
        except FileNotFoundError:
            candidate = None
        if candidate is not None and candidate.is_dir():
            return candidate
    raise CheckpointError(checkpoint, "no such checkpoint folder",
                          "a folder with metadata.json and generator.pt, or a model name under models/")


def save_checkpoint(directory: str | Path, metadata: CheckpointMetadata, state_dict: dict) -> Path:
    """Write ``generator.pt`` then ``metadata.json`` (with the weights' SHA-256) into ``directory``.

    Both files are written to temporary names and renamed, so an interrupted save leaves the previous
    checkpoint intact.

    Returns:
        The checkpoint folder.
    """
    import torch

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    tmp_weights = directory / (WEIGHTS_FILE + ".tmp")
    torch.save({k: v.detach().cpu() for k, v in state_dict.items()}, tmp_weights)
    digest = sha256_file(tmp_weights)
    meta = CheckpointMetadata(**{**asdict(metadata), "weights_sha256": digest})
    tmp_meta = directory / (METADATA_FILE + ".tmp")
    tmp_meta.write_text(meta.to_json())
    tmp_weights.replace(directory / WEIGHTS_FILE)
    tmp_meta.replace(directory / METADATA_FILE)
    return directory


def load_metadata(checkpoint: str | Path) -> CheckpointMetadata:
    """Read and validate a checkpoint's ``metadata.json`` only (no weights: cheap, for reports).

    Raises:
        CheckpointError: no such folder, a missing, unreadable or incomplete metadata file.
    """
    directory = resolve_checkpoint_dir(checkpoint)
    meta_path = directory / METADATA_FILE
    if not meta_path.is_file():
        raise CheckpointError(directory, f"missing {METADATA_FILE}", f"{METADATA_FILE} and {WEIGHTS_FILE}")
    try:
        data = json.loads(meta_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CheckpointError(directory, f"{METADATA_FILE} is not valid JSON ({exc})", "a JSON object") from exc
    if not isinstance(data, dict):
        raise CheckpointError(directory, f"{METADATA_FILE} holds {type(data).__name__}", "a JSON object")
    return CheckpointMetadata.from_dict(data, directory)


def load_checkpoint(checkpoint: str | Path) -> tuple[CheckpointMetadata, dict, Path]:
    """Read and validate a checkpoint folder.

    Returns:
        ``(metadata, state_dict, folder)``.

    Raises:
        CheckpointError: missing files, unreadable or incomplete metadata, weights whose SHA-256 does
            not match the metadata (corruption), or weights that cannot be read.
    """
    import torch

    directory = resolve_checkpoint_dir(checkpoint)
    weights_path = directory / WEIGHTS_FILE
    for p in (directory / METADATA_FILE, weights_path):
        if not p.is_file():
            raise CheckpointError(directory, f"missing {p.name}", f"{METADATA_FILE} and {WEIGHTS_FILE}")
    meta = load_metadata(directory)
    digest = sha256_file(weights_path)
    if meta.weights_sha256 and digest != meta.weights_sha256:
        raise CheckpointError(directory, f"{WEIGHTS_FILE} SHA-256 {digest[:12]}… differs from the metadata's "
                              f"{meta.weights_sha256[:12]}… (corrupted or replaced weights)",
                              "the weights the metadata was written for")
    try:
        state = torch.load(weights_path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several types for bad pickles
        raise CheckpointError(directory, f"cannot read {WEIGHTS_FILE} ({exc})", "a torch state_dict") from exc
    if not isinstance(state, dict):
        raise CheckpointError(directory, f"{WEIGHTS_FILE} holds {type(state).__name__}", "a torch state_dict")
    return meta, state, directory
