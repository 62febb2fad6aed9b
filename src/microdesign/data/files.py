"""Checks and readers of the user files that commands read: a clear error before any work.

Every command that reads a user's file (a TIFF or ``.npy`` volume, an HDF5 dataset or campaign
file) goes through :func:`require_file` / :func:`read_array`, so that a missing,
empty, truncated or mislabelled file (a text file named ``.tif``, a TIFF named ``.h5``) is a
:class:`~microdesign.errors.ConfigError` naming the option, the file and what was expected, instead
of the reader library's own exception (``tifffile.TiffFileError``, ``OSError`` from HDF5, ``ValueError``
from NumPy).

The file kind is recognised by its signature (first bytes), not by its suffix: TIFF ``II*\\0`` /
``MM\\0*`` (BigTIFF ``II+\\0`` / ``MM\\0+``; TIFF 6.0 and BigTIFF specifications), HDF5
``\\x89HDF\\r\\n\\x1a\\n`` at offset 0 or a power-of-two user-block offset (``h5py.is_hdf5``; HDF5 file
format specification), NumPy ``\\x93NUMPY`` (NEP 1, the ``.npy`` format) and PNG
``\\x89PNG\\r\\n\\x1a\\n``.

Outputs: :func:`require_writable` checks an output path before any work; :func:`write_json` writes
standard JSON (RFC 8259: no ``Infinity``/``NaN``; a non-finite value is ``null``).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from microdesign.errors import ConfigError

_SIGNATURES = {
    "tiff": (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"),
    "npy": (b"\x93NUMPY",),
    "png": (b"\x89PNG\r\n\x1a\n",),
}
_DESCRIPTION = {"tiff": "a TIFF image", "hdf5": "an HDF5 file", "npy": "a NumPy .npy array", "png": "a PNG image"}


def file_kind(path: str | os.PathLike) -> str | None:
    """The kind of a file from its first bytes: ``"tiff"``, ``"hdf5"``, ``"npy"``, ``"png"``, or None
    (unknown or unreadable)."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(8)
    except OSError:
        return None
    for kind, signatures in _SIGNATURES.items():
        if head.startswith(signatures):
            return kind
    import h5py

    try:
        return "hdf5" if h5py.is_hdf5(str(path)) else None
    except OSError:
        return None


def require_file(path: Any, option: str, kinds: Sequence[str] = (), expected: str | None = None) -> Path:
    """``path`` is an existing, readable, non-empty file (of one of ``kinds`` when given).

    Args:
        path: the file as the user gave it (``~`` is expanded).
        option: the option that named it (``source.path``, ``input``, ``resume``), for the message.
        kinds: acceptable kinds (:func:`file_kind`); empty: any file.
        expected: what the message says was expected (default: from ``kinds``).

    Returns:
        The path.

    Raises:
        ConfigError: missing path, a directory, unreadable, empty, or a file of another kind.
    """
    want = expected or " or ".join(_DESCRIPTION[k] for k in kinds) or "a file"
    if path is None or str(path).strip() in ("", "???"):
        raise ConfigError(option, path, f"{want} (a path)")
    p = Path(str(path)).expanduser()
    if not p.exists():
        raise ConfigError(option, str(path), f"{want}; the file does not exist")
    if not p.is_file():
        raise ConfigError(option, str(path), f"{want}; this is not a regular file")
    if not os.access(p, os.R_OK):
        raise ConfigError(option, str(path), f"{want}; the file is not readable (permissions)")
    if p.stat().st_size == 0:
        raise ConfigError(option, str(path), f"{want}; the file is empty")
    if kinds:
        kind = file_kind(p)
        if kind not in kinds:
            found = _DESCRIPTION[kind] if kind else "of unknown format"
            raise ConfigError(option, str(path), f"{want}; the file is {found} (by its content)")
    return p


def require_writable(path: Any, option: str, directory: bool = False) -> Path:
    """An output path that can be written, checked before any work: a file path that is not a folder
    (or a folder path that is not a file), whose nearest existing folder accepts a new file (probed
    with a temporary file, removed at once; permission bits alone do not tell, e.g. for root).

    Args:
        path: the output (file or folder); missing folders above it are allowed (created later).
        option: the option that named it, for the message.
        directory: ``path`` is a folder to write into.

    Returns:
        The path.

    Raises:
        ConfigError: naming the option, the path and why it cannot be written.
    """
    import tempfile

    if path is None or str(path).strip() in ("", "???"):
        raise ConfigError(option, path, "an output path")
    p = Path(str(path)).expanduser()
    if directory and p.exists() and not p.is_dir():
        raise ConfigError(option, str(path), "a folder to write into; this is a file")
    if not directory and p.is_dir():
        raise ConfigError(option, str(path), "a file path; this is a folder")
    base = p if directory else p.parent
    while not base.exists() and base != base.parent:
        base = base.parent
    if not base.is_dir():
        raise ConfigError(option, str(path), f"a path whose folders can be created ({base} is a file)")
    try:
        fd, probe = tempfile.mkstemp(dir=base, prefix=".microdesign-write-probe-")
    except OSError as exc:
        raise ConfigError(option, str(path), f"a writable location ({base}: {exc.strerror or exc})") from None
    os.close(fd)
    os.unlink(probe)
    return p


def read_array(path: Any, option: str, kinds: Sequence[str] = ("tiff", "npy")) -> np.ndarray:
    """Read an image or volume (TIFF via tifffile, ``.npy`` via NumPy, PNG via Pillow) as an array.

    Args:
        path: the file.
        option: the option that named it, for the message.
        kinds: acceptable kinds.

    Returns:
        The array as stored (no squeezing or label mapping).

    Raises:
        ConfigError: as :func:`require_file`, or a file that cannot be decoded (truncated, corrupt,
            an object array).
    """
    p = require_file(path, option, kinds)
    kind = file_kind(p)
    try:
        if kind == "tiff":
            import tifffile

            return np.asarray(tifffile.imread(p))
        if kind == "npy":
            return np.asarray(np.load(p, allow_pickle=False))
        from PIL import Image

        with Image.open(p) as im:
            return np.asarray(im)
    except Exception as exc:  # noqa: BLE001 - any decoder failure of a user file is bad input
        raise ConfigError(option, str(path), f"a complete, readable {_DESCRIPTION[kind]} "
                          f"({type(exc).__name__}: {exc})") from None


def json_safe(obj: Any) -> Any:
    """``obj`` with every non-finite float (``inf``, ``nan``) replaced by None and NumPy values made
    plain, so that it serialises as standard JSON (RFC 8259 has no ``Infinity`` or ``NaN``; Python's
    ``json`` writes them by default). Mappings, lists, tuples and arrays are converted recursively."""
    import math

    if isinstance(obj, dict):
        return {str(k) if not isinstance(k, (str, int, float, bool)) and k is not None else k: json_safe(v)
                for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return json_safe(obj.tolist())
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, Path):
        return str(obj)
    return obj


def write_json(obj: Any, path: Any) -> Path:
    """Write ``obj`` as indented standard JSON (:func:`json_safe`: no ``Infinity``/``NaN``, they are
    ``null``), creating parent folders; returns the path."""
    import json

    p = Path(str(path))
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(json.dumps(json_safe(obj), indent=2, allow_nan=False))
    return p
