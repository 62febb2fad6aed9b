"""The HDF5 campaign file: one writer, every trial, crash-safe.

Layout (``format = "microdesign-campaign"``, ``format_version = 1``)::

    /                      attrs: format, format_version, package_version, created_unix, seed,
                                  config_yaml (the full resolved config), objective_name,
                                  objective_unit, direction
    /space                 attrs: names, units, lower, upper, fixed_names, fixed_values
    /trials/000017         attrs: index, batch, status, method, seed, reason, rerun_of,
                                  created_unix, started_unix, finished_unix, note, worker (Ray only)
        inputs             attrs: parameter name -> physical value
        timings            attrs: stage -> seconds
        objective          ObjectiveValue.to_attrs: status, value, raw_value, variance, reason;
                           sensitivities/ attrs; noise_left_out/ attrs: metric key -> why it is
                           missing from the noise
        metrics            MicrostructureMetrics.to_attrs: status, reason, voxel_size_m,
                           cube_size_voxels, n_cubes, stop_reason; bulk_conductivity_S_m/ attrs;
            <metric key>   dataset: per-cube values; attrs name, mean, std, ci95_half_width
        cell               CellResult.to_attrs: every field; extra/ attrs
        volume             dataset uint8 ``L x L x L`` (gzip), attrs voxel_size_m: one representative cube
    /validation/000017     the final re-evaluation of trial 17 with more cubes (same layout as a trial,
                           method "validation"; :mod:`microdesign.campaign.validation`)

Trial status: ``candidate`` (proposed) -> ``running`` -> ``completed`` | ``failed``; a trial found
``running`` on resume becomes ``abandoned``.

Crash safety: every write is a transaction on a copy — the file is copied to ``<file>.tmp``, the
copy is modified and closed, ``fsync``-ed, and atomically renamed over the file (POSIX ``rename``), then
the directory is ``fsync``-ed. A ``kill -9`` at any instant leaves either the old or the new complete
file (and at worst a stale ``.tmp``, ignored and overwritten). A single writer is enforced by an
``flock`` on ``<file>.lock`` beside the real file (a symlink is resolved first; the kernel releases
the lock when the writer dies).

Layering: this module knows no result type. A trial's ``objective``, ``metrics`` and ``cell`` are
written from their ``to_attrs()`` and read back by the ``from_attrs`` of the type registered for
the group (:func:`register_result_type`; the package registers its own types in
``microdesign/__init__.py``). ``to_attrs`` returns a plain tree: a number, string or bool is an
attribute, a ``dict`` a subgroup, a ``(values, attrs)`` pair a dataset with attributes (``/`` in its
name is stored as ``|``); ``from_attrs`` receives the same tree.

Integrity: the first 512 bytes are an HDF5 user block holding the SHA-256 of the rest of the file,
written with every transaction; readers compare it before h5py reads the file, so that a file with
changed or missing bytes is refused with a clear error (HDF5 may crash on corrupt metadata). Files
without the checksum (older versions) are read unchecked.
"""

from __future__ import annotations

import fcntl
import logging
import os
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

FORMAT = "microdesign-campaign"
FORMAT_VERSION = 1
STATUSES = ("candidate", "running", "completed", "failed", "abandoned")


@dataclass(frozen=True)
class TrialRecord:
    """Everything recorded about one trial.

    Attributes:
        index: trial number, 0-based, unique in the campaign.
        batch: proposal batch it belongs to.
        status: one of :data:`STATUSES`.
        method: how it was proposed (``"sobol"``, ``"qLogNEI"``, ``"qLogNEHVI"``, ``"qMFMES"`` /
            ``"qMFKG"`` (multi-fidelity), ``"rerun"``, or ``"sobol-fallback"`` where the model-based
            proposal failed; ``note`` says why);
            ``"validation"`` for a final re-evaluation (``/validation``).
        inputs: parameter name -> physical value (all parameters, fixed included); a multi-fidelity
            campaign adds ``fidelity``, the fidelity of the trial's level (docs/multi_fidelity.md).
        seed: seed of its generator / characterisation draws.
        reason: why it failed or was abandoned, else None.
        rerun_of: index of the abandoned trial this one repeats, else None.
        metrics: ``MicrostructureMetrics`` (None before characterisation).
        cell: ``CellResult`` (None before the cell stage).
        objective: ``ObjectiveValue`` (None before the objective).
            The three are written by their ``to_attrs`` and read back as the type registered for
            their group (:func:`register_result_type`).
        timings: stage -> wall time [s].
        volume: one representative cube ``L x L x L`` uint8 (None if none).
        voxel_size_m: voxel size of ``volume`` [m].
        created_unix, started_unix, finished_unix: wall-clock times [s since epoch] (0 if not yet).
        note: why its proposal fell back to Sobol (the proposer's exception), else None.
        worker: the Ray worker that evaluated it (``<node ip>:<pid>``, :mod:`microdesign.campaign.executor`);
            None for an in-process evaluation (``executor=local``).
    """

    index: int
    batch: int
    status: str
    method: str
    inputs: dict[str, float]
    seed: int
    reason: str | None = None
    rerun_of: int | None = None
    metrics: Any = None
    cell: Any = None
    objective: Any = None
    timings: dict[str, float] = field(default_factory=dict)
    volume: np.ndarray | None = None
    voxel_size_m: float = 0.0
    created_unix: float = 0.0
    started_unix: float = 0.0
    finished_unix: float = 0.0
    note: str | None = None
    worker: str | None = None

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"TrialRecord.status = {self.status!r}: expected one of {STATUSES}")

    @property
    def finished(self) -> bool:
        return self.status in ("completed", "failed")

    def with_(self, **changes: Any) -> TrialRecord:
        return replace(self, **changes)


class CampaignFileError(RuntimeError):
    """The file is not a campaign file, is locked by another writer, or is of an unknown version."""


def _fsync_path(path: Path, directory: bool = False) -> None:
    fd = os.open(path, os.O_RDONLY | (os.O_DIRECTORY if directory else 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


_MAX_TEXT = 4000  # characters of a stored text attribute (reasons, notes)


def _set_attrs(node: Any, values: dict[str, Any]) -> None:
    for k, v in values.items():
        if v is None:
            continue
        if isinstance(v, (bool, np.bool_)):
            node.attrs[k] = bool(v)
        elif isinstance(v, (int, np.integer)):
            node.attrs[k] = int(v)
        elif isinstance(v, (float, np.floating)):
            node.attrs[k] = float(v)
        elif isinstance(v, str):
            # exception texts can be long; an HDF5 attribute is limited to 64 KiB
            node.attrs[k] = v if len(v) <= _MAX_TEXT else v[:_MAX_TEXT] + " ... [truncated]"
        elif isinstance(v, dict):
            continue  # nested dicts are written as subgroups by the caller
        else:
            node.attrs[k] = np.asarray(v)


def _attrs(node: Any) -> dict[str, Any]:
    out = {}
    for k, v in node.attrs.items():
        if isinstance(v, bytes):
            v = v.decode()
        elif isinstance(v, np.generic):
            v = v.item()
        out[k] = v
    return out


#: Trial groups that hold a result object: group name -> its type, or ``"module:Class"`` imported on
#: first use (:func:`register_result_type`).
_RESULT_TYPES: dict[str, Any] = {}
RESULT_GROUPS = ("objective", "metrics", "cell")


def register_result_type(group: str, result_type: Any) -> None:
    """Read the trial group ``group`` back as ``result_type`` (a class with ``from_attrs(tree)``, or its
    ``"module:Class"`` path, imported when a file is first read).

    Raises:
        ValueError: ``group`` is not one of :data:`RESULT_GROUPS`.
    """
    if group not in RESULT_GROUPS:
        raise ValueError(f"result group {group!r}: expected one of {RESULT_GROUPS}")
    _RESULT_TYPES[group] = result_type


def _result_type(group: str) -> Any:
    import importlib

    rt = _RESULT_TYPES.get(group)
    if rt is None:
        raise CampaignFileError(f"no result type registered for the trial group {group!r} (register_result_type)")
    if isinstance(rt, str):
        module, _, name = rt.partition(":")
        rt = _RESULT_TYPES[group] = getattr(importlib.import_module(module), name)
    return rt


def _write_tree(node: Any, tree: dict[str, Any]) -> None:
    """Write a plain tree (module docstring) under the HDF5 group ``node``."""
    _set_attrs(node, {k: v for k, v in tree.items() if not isinstance(v, tuple)})
    for k, v in tree.items():
        if isinstance(v, dict):
            _write_tree(node.create_group(k), v)
        elif isinstance(v, tuple):
            data, attrs = v
            _set_attrs(node.create_dataset(_h5name(k), data=np.asarray(data, float)), attrs)


def _read_tree(node: Any) -> dict[str, Any]:
    """The plain tree of an HDF5 group: attributes, subgroups as dicts, datasets as ``(values, attrs)``."""
    import h5py

    out = _attrs(node)
    for k, child in node.items():
        out[k] = _read_tree(child) if isinstance(child, h5py.Group) else (np.asarray(child[()]), _attrs(child))
    return out


_USERBLOCK = 512  # HDF5 user block at the start of the file: holds the checksum of the rest
_SEAL = b"microdesign-campaign sha256 "


def _content_sha256(fh: Any) -> str:
    import hashlib

    h = hashlib.sha256()
    fh.seek(_USERBLOCK)
    for block in iter(lambda: fh.read(1 << 20), b""):
        h.update(block)
    return h.hexdigest()


def _seal(path: Path) -> None:
    """Write the SHA-256 of everything after the user block into the user block (HDF5 ignores it)."""
    with open(path, "r+b") as fh:
        digest = _content_sha256(fh).encode()
        fh.seek(0)
        fh.write((_SEAL + digest + b"\n").ljust(_USERBLOCK, b"\0"))


def _verify(fh: Any, path: Path) -> None:
    """Compare a sealed file's content with its checksum (files written before sealing pass unchecked).

    Raises:
        CampaignFileError: flipped, missing or extra bytes (before h5py reads them: HDF5 can crash
            on corrupt metadata instead of raising).
    """
    fh.seek(0)
    head = fh.read(_USERBLOCK)
    if not head.startswith(_SEAL):
        return
    stored = head[len(_SEAL):].split(b"\n", 1)[0].decode("ascii", "replace")
    if stored != _content_sha256(fh):
        raise CampaignFileError(f"{path} is corrupt: its content does not match the SHA-256 written with it "
                                "(changed, missing or extra bytes)")


@contextmanager
def _open_verified(path: Path) -> Iterator[Any]:
    """The file read-only through one descriptor: verified, then opened by h5py on the same bytes (a
    writer's atomic rename meanwhile cannot mix two versions)."""
    import h5py

    with open(path, "rb") as fh:
        _verify(fh, path)
        fh.seek(0)
        with h5py.File(fh, "r") as f:
            yield f


def _lock_holder(lock: Path) -> int | None:
    """PID written into a lock file by its writer (None if unreadable)."""
    try:
        return int(lock.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def writer_pid(path: str | os.PathLike) -> int | None:
    """The live process that holds the writer lock of a campaign file (its PID; 0 if it wrote none),
    or None when no process does. A probe: it takes and releases the lock at once."""
    real = Path(os.path.realpath(path))
    lock = real.with_name(real.name + ".lock")
    try:
        fd = os.open(lock, os.O_RDONLY)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError:
        return _lock_holder(lock) or 0
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


def _s(x: Any) -> str:
    return x.decode() if isinstance(x, bytes) else str(x)


def _h5name(key: str) -> str:
    return key.replace("/", "|")


class CampaignStore:
    """Reader/writer of one campaign file.

    Args:
        path: the ``.h5`` file.
        writer: take the single-writer lock (required for every write method).

    Raises:
        CampaignFileError: ``writer=True`` and another live process holds the lock.
    """

    def __init__(self, path: str | os.PathLike, writer: bool = False):
        self.path = Path(path)
        # the lock, the transaction copy and the rename act on the file itself, not on a symlink to it
        self._real = Path(os.path.realpath(self.path))
        self._lock_fd: int | None = None
        if writer:
            self._acquire_lock()

    # ------------------------------------------------------------------ locking
    def _acquire_lock(self) -> None:
        self._real.parent.mkdir(parents=True, exist_ok=True)
        lock = self._real.with_name(self._real.name + ".lock")
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(fd)
            holder = _lock_holder(lock)
            raise CampaignFileError(f"{self.path} is being written by another process"
                                    f"{f' (pid {holder})' if holder else ''} (lock {lock})") from exc
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._lock_fd = fd

    def discard(self) -> bool:
        """Remove the file and its lock file if the file holds no trial (a campaign that failed at
        its start leaves nothing behind); the writer lock is held while removing. Returns whether it did."""
        import h5py

        if self._lock_fd is None:
            raise CampaignFileError(f"{self.path}: opened read-only; discarding needs writer=True")
        if self._real.exists():
            with h5py.File(self._real, "r") as f:
                if len(f.get("trials", ())) or "validation" in f:
                    return False
            self._real.unlink()
        self._real.with_name(self._real.name + ".lock").unlink(missing_ok=True)
        return True

    def close(self) -> None:
        """Release the writer lock."""
        if self._lock_fd is not None:
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
            os.close(self._lock_fd)
            self._lock_fd = None

    def __enter__(self) -> CampaignStore:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # ------------------------------------------------------------------ transactions
    @contextmanager
    def _transaction(self, create: bool = False) -> Iterator[Any]:
        import h5py

        if self._lock_fd is None:
            raise CampaignFileError(f"{self.path}: opened read-only; writes need writer=True")
        tmp = self._real.with_name(self._real.name + ".tmp")
        if create:
            f = h5py.File(tmp, "w", userblock_size=_USERBLOCK)
        else:
            shutil.copyfile(self._real, tmp)
            f = h5py.File(tmp, "r+")
        with f:
            sealed = f.userblock_size >= _USERBLOCK
            yield f
        if sealed:
            _seal(tmp)
        _fsync_path(tmp)
        os.replace(tmp, self._real)
        _fsync_path(self._real.parent, directory=True)

    # ------------------------------------------------------------------ writing
    def create(self, config_yaml: str, package_version: str, seed: int, space: dict[str, Any],
               objective: dict[str, str], attrs: dict[str, Any] | None = None) -> None:
        """Write a new campaign file (overwrites nothing: raises if it exists).

        Args:
            config_yaml: the full resolved config as YAML.
            package_version: ``microdesign.__version__``.
            seed: campaign seed.
            space: ``names``, ``units``, ``lower``, ``upper``, ``fixed`` (name -> value).
            objective: ``name``, ``unit``, ``direction``.
            attrs: further root attributes written in the same transaction (the generator's identity:
                a kill right after the file appears cannot leave it without them).

        Raises:
            FileExistsError: the file exists (resume it instead).
        """
        import h5py

        if self.path.exists():
            raise FileExistsError(f"{self.path} exists: resume it with resume={self.path} or choose another output")
        with self._transaction(create=True) as f:
            f.attrs.update({"format": FORMAT, "format_version": FORMAT_VERSION, "package_version": package_version,
                            "created_unix": time.time(), "seed": int(seed), "config_yaml": config_yaml,
                            "objective_name": objective["name"], "objective_unit": objective["unit"],
                            "direction": objective["direction"]})
            _set_attrs(f, dict(attrs or {}))
            s = f.create_group("space")
            sdt = h5py.string_dtype()
            s.attrs["names"] = np.array(space["names"], dtype=sdt)
            s.attrs["units"] = np.array(space.get("units", [""] * len(space["names"])), dtype=sdt)
            s.attrs["lower"] = np.asarray(space["lower"], float)
            s.attrs["upper"] = np.asarray(space["upper"], float)
            fixed = space.get("fixed", {})
            s.attrs["fixed_names"] = np.array(list(fixed), dtype=sdt)
            s.attrs["fixed_values"] = np.asarray(list(fixed.values()), float)
            f.create_group("trials")

    def write_trials(self, trials: list[TrialRecord]) -> None:
        """Write (or replace) trials in one transaction."""
        with self._transaction() as f:
            for t in trials:
                self._write_trial(f["trials"], t)

    def write_validations(self, records: list[TrialRecord]) -> None:
        """Write (or replace) final re-evaluations of trials, under ``/validation/<trial index>``, in one transaction."""
        with self._transaction() as f:
            group = f.require_group("validation")
            for t in records:
                self._write_trial(group, t)

    def set_attrs(self, **values: Any) -> None:
        """Set root attributes (e.g. ``finished_unix``, ``stop_reason``) in one transaction."""
        with self._transaction() as f:
            _set_attrs(f, values)

    @staticmethod
    def _write_trial(trials: Any, t: TrialRecord) -> None:
        name = f"{t.index:06d}"
        if name in trials:
            del trials[name]
        g = trials.create_group(name)
        _set_attrs(g, {"index": t.index, "batch": t.batch, "status": t.status, "method": t.method, "seed": t.seed,
                       "reason": t.reason or "", "rerun_of": -1 if t.rerun_of is None else t.rerun_of,
                       "created_unix": t.created_unix, "started_unix": t.started_unix,
                       "finished_unix": t.finished_unix, "note": t.note or "", "worker": t.worker})
        _set_attrs(g.create_group("inputs"), dict(t.inputs))
        _set_attrs(g.create_group("timings"), dict(t.timings))
        for group in RESULT_GROUPS:
            result = getattr(t, group)
            if result is not None:
                _write_tree(g.create_group(group), result.to_attrs())
        if t.volume is not None:
            ds = g.create_dataset("volume", data=np.asarray(t.volume, np.uint8), compression="gzip",
                                  compression_opts=4, shuffle=True)
            ds.attrs["voxel_size_m"] = float(t.voxel_size_m)

    # ------------------------------------------------------------------ reading
    def read_header(self) -> dict[str, Any]:
        """Root attributes and the design space (no trials).

        Raises:
            CampaignFileError: not a campaign file or an unknown format version.
        """
        with _open_verified(self.path) as f:
            return self._header(f)

    def _header(self, f: Any) -> dict[str, Any]:
        head = _attrs(f)
        if head.get("format") != FORMAT:
            raise CampaignFileError(f"{self.path} is not a microdesign campaign file (format={head.get('format')!r})")
        if int(head.get("format_version", -1)) > FORMAT_VERSION:
            raise CampaignFileError(f"{self.path}: format_version {head.get('format_version')} is newer than "
                                    f"this microdesign reads ({FORMAT_VERSION})")
        s = f["space"].attrs
        head["space"] = {
            "names": [_s(x) for x in s["names"]], "units": [_s(x) for x in s["units"]],
            "lower": np.asarray(s["lower"], float), "upper": np.asarray(s["upper"], float),
            "fixed": dict(zip([_s(x) for x in s["fixed_names"]], map(float, s["fixed_values"]))),
        }
        return head

    def load(self, volumes: bool = True) -> tuple[dict[str, Any], list[TrialRecord]]:
        """Header and every trial in index order.

        Args:
            volumes: also read the representative volumes.

        Raises:
            CampaignFileError: not a campaign file.
        """
        with _open_verified(self.path) as f:
            head = self._header(f)
            trials = [self._read_trial(f["trials"][k], volumes) for k in sorted(f["trials"])]
        return head, trials

    def load_validations(self, volumes: bool = False) -> list[TrialRecord]:
        """Final re-evaluations (``method = "validation"``) in trial-index order; empty if there are none."""
        with _open_verified(self.path) as f:
            if "validation" not in f:
                return []
            return [self._read_trial(f["validation"][k], volumes) for k in sorted(f["validation"])]

    @staticmethod
    def _read_trial(g: Any, volumes: bool) -> TrialRecord:
        a = _attrs(g)
        results = {group: _result_type(group).from_attrs(_read_tree(g[group])) if group in g else None
                   for group in RESULT_GROUPS}
        vol = None
        vsize = 0.0
        if "volume" in g:
            vsize = float(g["volume"].attrs.get("voxel_size_m", 0.0))
            if volumes:
                vol = np.asarray(g["volume"][()], np.uint8)
        rerun = int(a.get("rerun_of", -1))
        return TrialRecord(index=int(a["index"]), batch=int(a["batch"]), status=a["status"], method=a["method"],
                           inputs={k: float(v) for k, v in _attrs(g["inputs"]).items()}, seed=int(a["seed"]),
                           reason=a.get("reason") or None, rerun_of=None if rerun < 0 else rerun,
                           metrics=results["metrics"], cell=results["cell"], objective=results["objective"],
                           timings={k: float(v) for k, v in _attrs(g["timings"]).items()}, volume=vol,
                           voxel_size_m=vsize, created_unix=a.get("created_unix", 0.0),
                           started_unix=a.get("started_unix", 0.0), finished_unix=a.get("finished_unix", 0.0),
                           note=a.get("note") or None, worker=a.get("worker") or None)


def load_campaign_file(path: str | os.PathLike, option: str, volumes: bool = False
                       ) -> tuple[dict[str, Any], list[TrialRecord], list[TrialRecord]]:
    """Read a campaign file that a user option names (``resume``, ``file``), checking it completely.

    Args:
        path: the file.
        option: the option that named it, for the message.
        volumes: also read the representative volumes.

    Returns:
        ``(header, trials, validations)`` as :meth:`CampaignStore.load` and
        :meth:`CampaignStore.load_validations`.

    Raises:
        ConfigError: a missing, empty or non-HDF5 file, not a campaign file, a newer format version,
            or a file whose content cannot be read (truncated, flipped bytes: h5py's ``OSError``,
            ``KeyError``, ``RuntimeError``, ``ValueError``).
    """
    from microdesign.data.files import require_file
    from microdesign.errors import ConfigError

    expected = "a microdesign campaign file"
    require_file(path, option, ("hdf5",), f"{expected} (HDF5)")
    store = CampaignStore(path)
    try:
        head, trials = store.load(volumes=volumes)
        return head, trials, store.load_validations(volumes=volumes)
    except CampaignFileError as exc:
        raise ConfigError(option, str(path), f"{expected} ({exc})") from None
    except ConfigError:
        raise
    except (OSError, KeyError, RuntimeError, ValueError, TypeError, AttributeError) as exc:
        raise ConfigError(option, str(path), f"{expected} that can be read: it is corrupt or incomplete "
                          f"({type(exc).__name__}: {exc})") from None
