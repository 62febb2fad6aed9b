"""Import a user's segmented micrographs or volumes, with their process parameters, into a dataset.

Inputs (see ``docs/dataset_format.md`` for a worked example with the real NMC images):

* images: 3D TIFF stacks (``Z x Y x X``, one page per slice) or 2D TIFF/PNG images, all the same
  shape; a TIFF of shape ``1 x H x W`` is a 2D image;
* a label table, CSV or YAML, with one row per image file (matched by file name) and one column
  per process parameter; units in CSV headers as ``name [unit]`` or in YAML ``parameter_units``;
  an optional per-file ``voxel_size_m`` column / a table-level ``voxel_size_m``;
* a grey-value -> phase table (e.g. ``{0: pore, 85: active_material, 170: cbd}``);
* the voxel (pixel) size [m]: it is never guessed from the file (TIFF resolution tags are often
  absent or wrong: the public SEM image of docs/public_data.md has none).

Everything is checked before the output is written; a problem raises
:class:`microdesign.errors.ConfigError` whose message names the file and the problem: an unmapped
grey value, a shape that differs from the first image's, a missing label or label row, a missing
or inconsistent voxel size, an unreadable or colour image.
"""

from __future__ import annotations

import csv
import hashlib
import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from microdesign.errors import ConfigError, check_voxel_size
from microdesign.phases import PHASE_NAMES

logger = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".tif", ".tiff", ".png")
_PHASE_ALIASES = {
    "pore": 0, "pores": 0, "electrolyte": 0, "void": 0,
    "active_material": 1, "am": 1, "nmc": 1, "particle": 1, "particles": 1,
    "cbd": 2, "carbon_binder": 2, "carbon_binder_domain": 2, "binder": 2,
}
_FILE_COLUMNS = ("file", "filename", "image", "path")
_VOXEL_COLUMN = "voxel_size_m"
_CACHE_BYTES = 1 << 30  # keep decoded images between validation and writing up to 1 GiB
_HEADER_UNIT = re.compile(r"^\s*(?P<name>[^\[\]]+?)\s*\[(?P<unit>[^\[\]]*)\]\s*$")


@dataclass(frozen=True)
class LabelTable:
    """Process parameters per image file.

    Attributes:
        path: the table file.
        rows: file name -> {parameter name -> value or None where the cell is empty}.
        parameter_names: column order of the parameters.
        parameter_units: units found in the table (may be incomplete).
        voxel_sizes_m: file name -> voxel size [m] where the table gives one per file.
        voxel_size_m: table-level voxel size [m] (YAML), or None.
    """

    path: Path
    rows: dict[str, dict[str, float | None]]
    parameter_names: tuple[str, ...]
    parameter_units: dict[str, str]
    voxel_sizes_m: dict[str, float]
    voxel_size_m: float | None


def _number(value: Any, what: str, where: str) -> float | None:
    if value is None or (isinstance(value, str) and value.strip() == ""):
        return None
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise ConfigError(what, value, "a number", context=where) from None
    if not np.isfinite(out):
        raise ConfigError(what, value, "a finite number", context=where)
    return out


def read_label_table(path: str | Path) -> LabelTable:
    """Read a CSV or YAML label table (format: :func:`_read_label_table`).

    Raises:
        ConfigError: as :func:`_read_label_table`, and a file that is not readable text CSV or YAML
            (binary content, a YAML syntax error), naming ``labels``.
    """
    import yaml

    try:
        return _read_label_table(path)
    except (UnicodeDecodeError, csv.Error, yaml.YAMLError) as exc:
        raise ConfigError("labels", str(path), f"a readable CSV or YAML text table ({type(exc).__name__}: {exc})"
                          ) from None


def _read_label_table(path: str | Path) -> LabelTable:
    """Read a CSV or YAML label table.

    CSV: a header row with a file column (``file``/``filename``/``image``/``path``), parameter
    columns (``porosity`` or ``porosity [1]``) and optionally ``voxel_size_m``; one row per file.
    YAML: ``samples`` as a mapping file -> {name: value} or a list of mappings with a ``file`` key;
    optional ``parameter_units`` and ``voxel_size_m``.

    Raises:
        ConfigError: missing file, unknown suffix, no file column, duplicate rows, non-numbers.
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError("labels", str(path), "an existing CSV or YAML label table")
    suffix = path.suffix.lower()
    units: dict[str, str] = {}
    voxel_sizes: dict[str, float] = {}
    table_voxel: float | None = None
    raw_rows: list[dict[str, Any]] = []
    if suffix == ".csv":
        with path.open(newline="") as fh:
            reader = csv.DictReader(fh)
            if not reader.fieldnames:
                raise ConfigError("labels", str(path), "a CSV with a header row")
            header = {}
            for col in reader.fieldnames:
                m = _HEADER_UNIT.match(col)
                name = m.group("name").strip() if m else col.strip()
                if m:
                    units[name] = m.group("unit").strip()
                header[col] = name
            for row in reader:
                raw_rows.append({header[k]: v for k, v in row.items() if k is not None})
        columns = list(header.values())
    elif suffix in (".yaml", ".yml"):
        import yaml

        with path.open() as fh:
            doc = yaml.safe_load(fh) or {}
        if not isinstance(doc, dict) or "samples" not in doc:
            raise ConfigError("labels", str(path), "a YAML mapping with a 'samples' entry")
        units.update({str(k): str(v) for k, v in (doc.get("parameter_units") or {}).items()})
        table_voxel = _number(doc.get(_VOXEL_COLUMN), _VOXEL_COLUMN, str(path))
        samples = doc["samples"]
        if isinstance(samples, dict):
            raw_rows = [{"file": k, **(v or {})} for k, v in samples.items()]
        elif isinstance(samples, list):
            raw_rows = [dict(r) for r in samples]
        else:
            raise ConfigError("samples", type(samples).__name__, "a mapping file -> labels or a list", str(path))
        columns = []
        for r in raw_rows:
            columns += [k for k in r if k not in columns]
    else:
        raise ConfigError("labels", str(path), "a .csv, .yaml or .yml label table")
    file_col = next((c for c in _FILE_COLUMNS if c in columns), None)
    if file_col is None:
        raise ConfigError("labels", str(path), f"a file column named one of {list(_FILE_COLUMNS)}")
    names = tuple(c for c in columns if c not in (file_col, _VOXEL_COLUMN))
    rows: dict[str, dict[str, float | None]] = {}
    for i, r in enumerate(raw_rows):
        fname = str(r.get(file_col) or "").strip()
        where = f"{path}, row {i + 1}"
        if not fname:
            raise ConfigError(file_col, r.get(file_col), "an image file name", context=where)
        key = Path(fname).name
        if key in rows:
            raise ConfigError(file_col, fname, "one row per image file (duplicate)", context=str(path))
        rows[key] = {n: _number(r.get(n), n, f"{where} ({key})") for n in names}
        vs = _number(r.get(_VOXEL_COLUMN), _VOXEL_COLUMN, f"{where} ({key})")
        if vs is not None:
            voxel_sizes[key] = vs
    return LabelTable(path, rows, names, units, voxel_sizes, table_voxel)


def _phase_label(value: Any, table_repr: str, parameter: str) -> int:
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool) and 0 <= int(value) < len(PHASE_NAMES):
        return int(value)
    key = str(value).strip().lower()
    if key in _PHASE_ALIASES:
        return _PHASE_ALIASES[key]
    if key.isdigit() and int(key) < len(PHASE_NAMES):
        return int(key)
    raise ConfigError(parameter, table_repr,
                      f"phase names {list(PHASE_NAMES)} (or labels 0-{len(PHASE_NAMES) - 1}); got {value!r}")


def parse_grey_table(grey_to_phase: Mapping[Any, Any], parameter: str = "grey_to_phase") -> tuple[np.ndarray, np.ndarray]:
    """Grey values (float64, sorted) and their phase labels (uint8) from a mapping.

    Keys may be numbers or numeric strings; values phase names (``pore``, ``active_material``,
    ``cbd`` and aliases) or labels 0/1/2. With :func:`map_grey_values` this is the one reader from
    grey values to phase labels (the importer and the ``characterise`` command's file sources).

    Args:
        grey_to_phase: grey value -> phase name or label.
        parameter: the option named in errors.

    Raises:
        ConfigError: empty table, a non-numeric grey value, an unknown phase.
    """
    if not grey_to_phase:
        raise ConfigError(parameter, grey_to_phase, "a mapping grey value -> phase, e.g. {0: pore, 1: active_material, 2: cbd}")
    shown = repr(dict(grey_to_phase))
    greys, labels = [], []
    for k, v in dict(grey_to_phase).items():
        try:
            g = float(k)
        except (TypeError, ValueError):
            raise ConfigError(parameter, shown, f"numeric grey values as keys; got {k!r}") from None
        greys.append(g)
        labels.append(_phase_label(v, shown, parameter))
    order = np.argsort(greys)
    return np.asarray(greys, dtype=np.float64)[order], np.asarray(labels, dtype=np.uint8)[order]


def read_image(path: str | Path) -> np.ndarray:
    """Raw grey values of a TIFF (2D or multi-page 3D) or PNG image; singleton axes dropped.

    Raises:
        ConfigError: missing/unreadable file, unknown suffix, a colour image, not 2D or 3D.
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError("images", str(path), "an existing image file")
    suffix = path.suffix.lower()
    try:
        if suffix in (".tif", ".tiff"):
            import tifffile

            with tifffile.TiffFile(path) as tif:
                series = tif.series[0]
                arr = np.asarray(series.asarray())
                axes = series.axes
            if "S" in axes:  # samples per pixel: a colour (RGB) image
                arr = np.moveaxis(arr, axes.index("S"), -1)
                if not all(np.array_equal(arr[..., 0], arr[..., c]) for c in range(1, arr.shape[-1])):
                    raise ConfigError("image", str(path), "a single-channel (greyscale) segmented image, not colour")
                arr = arr[..., 0]
        elif suffix == ".png":
            from PIL import Image

            with Image.open(path) as im:
                if im.mode in ("RGB", "RGBA", "P", "LA"):
                    rgb = np.asarray(im.convert("RGB"))
                    if not (np.array_equal(rgb[..., 0], rgb[..., 1]) and np.array_equal(rgb[..., 0], rgb[..., 2])):
                        raise ConfigError("image", str(path), "a single-channel (greyscale) segmented image, not colour")
                    arr = rgb[..., 0]
                else:
                    arr = np.asarray(im)
        else:
            raise ConfigError("images", str(path), f"a file ending in {list(IMAGE_SUFFIXES)}")
    except ConfigError:
        raise
    except Exception as exc:
        raise ConfigError("image", str(path), f"a readable image ({type(exc).__name__}: {exc})") from None
    squeezed = np.squeeze(arr)
    if squeezed.ndim not in (2, 3):
        raise ConfigError("image", str(path), f"a 2D or 3D image; got shape {arr.shape}")
    return squeezed


def map_grey_values(raw: np.ndarray, greys: np.ndarray, labels: np.ndarray, where: str,
                    parameter: str = "grey_to_phase") -> np.ndarray:
    """uint8 phase labels of ``raw`` through the table (exact match, 1e-6 tolerance for floats).

    Args:
        raw: image or volume of any numeric dtype.
        greys, labels: the table of :func:`parse_grey_table`.
        where: the file (or source) named in errors.
        parameter: the option named in errors.

    Returns:
        uint8 phase labels, the shape of ``raw``.

    Raises:
        ConfigError: a grey value not in the table (message names ``where`` and the values).
    """
    if raw.dtype.kind in "ub" or (raw.dtype.kind == "i" and raw.size and raw.min() >= 0):
        # integer images: presence by bincount and mapping by a lookup table (no sort)
        flat = raw.reshape(-1).astype(np.intp, copy=False)
        counts = np.bincount(flat)
        present = np.flatnonzero(counts)
        lut = np.full(counts.size, 255, dtype=np.uint8)
        bad = []
        for v in present:
            hit = np.flatnonzero(np.abs(greys - float(v)) <= 1e-6 * max(1.0, float(v)))
            if hit.size:
                lut[v] = labels[hit[0]]
            else:
                bad.append(int(v))
        if bad:
            shown = ", ".join(f"{b:g} ({counts[b]} voxels)" for b in bad[:10])
            raise ConfigError(parameter, [float(g) for g in greys],
                              f"an entry for every grey value in the image; unmapped: {shown}", context=where)
        return lut[raw]
    values, inverse = np.unique(raw, return_inverse=True)
    vals = values.astype(np.float64)
    pos = np.clip(np.searchsorted(greys, vals), 0, len(greys) - 1)
    pos_lo = np.clip(pos - 1, 0, len(greys) - 1)
    near = np.where(np.abs(greys[pos] - vals) <= np.abs(greys[pos_lo] - vals), pos, pos_lo)
    ok = np.abs(greys[near] - vals) <= 1e-6 * np.maximum(1.0, np.abs(vals))
    if not ok.all():
        bad = vals[~ok]
        counts = np.bincount(inverse.reshape(-1), minlength=values.size)[~ok]
        shown = ", ".join(f"{b:g} ({c} voxels)" for b, c in list(zip(bad, counts))[:10])
        raise ConfigError(parameter, [float(g) for g in greys],
                          f"an entry for every grey value in the image; unmapped: {shown}", context=where)
    return labels[near][inverse].reshape(raw.shape).astype(np.uint8)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def resolve_image_paths(images: str | Path | Sequence[str | Path], base: Path | None = None) -> list[Path]:
    """Image files from a list, a directory (its TIFF/PNG files) or a glob pattern, sorted.

    Raises:
        ConfigError: nothing matched.
    """
    if isinstance(images, (str, Path)):
        spec = Path(images)
        if base is not None and not spec.is_absolute():
            spec = base / spec
        if spec.is_dir():
            found = sorted(p for p in spec.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        elif any(ch in str(spec) for ch in "*?["):
            found = sorted(p for p in spec.parent.glob(spec.name) if p.suffix.lower() in IMAGE_SUFFIXES)
        else:
            found = [spec]
    else:
        found = [Path(p) if base is None or Path(p).is_absolute() else base / p for p in images]
    if not found:
        raise ConfigError("images", str(images), "at least one TIFF/PNG image (a list, a directory or a glob)")
    return found


#: Default largest difference between a porosity label and the image's measured pore fraction
#: (absolute): above it the label (or the grey table) is wrong; the NREL and GAN examples of
#: docs/dataset_format.md agree to 0.001.
POROSITY_TOLERANCE = 0.10
#: A difference above this is worth a warning (segmentation and sample-to-sample variation aside).
POROSITY_WARNING = 0.03


def check_labels_against_image(image: np.ndarray, labels: Mapping[str, float], where: str,
                               porosity_tolerance: float | None = POROSITY_TOLERANCE) -> None:
    """The image shows a microstructure and agrees with the labels it can be measured against.

    An image of a single phase is refused; a ``porosity`` label is compared with the image's pore
    fraction (label 0): a difference above ``porosity_tolerance`` is an error, above
    :data:`POROSITY_WARNING` a warning.

    Args:
        image: phase labels (0 pore, 1 AM, 2 CBD), any shape.
        labels: the image's parameter labels.
        where: the file, for messages.
        porosity_tolerance: absolute; None: no error (the warning stays).

    Raises:
        ConfigError: a single-phase image, or a porosity label that the image contradicts.
    """
    counts = np.bincount(image.reshape(-1), minlength=len(PHASE_NAMES))[: len(PHASE_NAMES)]
    present = [PHASE_NAMES[i] for i in np.flatnonzero(counts)]
    if len(present) < 2:
        raise ConfigError("image", where, f"a segmented microstructure with at least two phases; it is all "
                          f"{present[0] if present else 'empty'} (check grey_to_phase)")
    if "porosity" in labels:
        measured = float(counts[0] / counts.sum())
        diff = abs(float(labels["porosity"]) - measured)
        if porosity_tolerance is not None and diff > float(porosity_tolerance):
            raise ConfigError("label 'porosity'", labels["porosity"],
                              f"the image's pore fraction {measured:.4f} within {porosity_tolerance:g} "
                              "(check the label, grey_to_phase, or set porosity_tolerance)", context=where)
        if diff > POROSITY_WARNING:
            logger.warning("%s: porosity label %.4g differs from the image's pore fraction %.4f by %.3f",
                           where, labels["porosity"], measured, diff)


def import_images(
    images: str | Path | Sequence[str | Path],
    labels: str | Path,
    grey_to_phase: Mapping[Any, Any],
    output: str | Path,
    voxel_size_m: float | None = None,
    parameter_names: Sequence[str] | None = None,
    parameter_units: Mapping[str, str] | None = None,
    through_plane_axis: int = 0,
    provenance: Mapping[str, Any] | None = None,
    overwrite: bool = False,
    porosity_tolerance: float | None = POROSITY_TOLERANCE,
) -> Path:
    """Validate every image and label, then write them as one dataset.

    Args:
        images: files, a directory or a glob (TIFF/PNG).
        labels: CSV or YAML label table (one row per image file, matched by file name).
        grey_to_phase: grey value -> phase name/label.
        output: dataset file to write.
        voxel_size_m: voxel edge [m] for every image (else the table must give it).
        parameter_names: labels to import, in this order (default: every parameter column).
        parameter_units: units overriding/completing the table's (name -> unit).
        through_plane_axis: axis of the 3D stacks that is through-plane; moved to axis 0.
        provenance: extra provenance entries.
        overwrite: replace an existing output file.
        porosity_tolerance: largest accepted difference between a ``porosity`` label and the
            image's measured pore fraction (absolute); None: never an error. A difference above
            :data:`POROSITY_WARNING` is logged as a warning.

    Returns:
        The output path.

    Raises:
        ConfigError: naming the file and the problem (unmapped grey value, inconsistent size,
            missing label row or value, missing or inconsistent voxel size, missing unit).
    """
    from microdesign.data.dataset import DatasetWriter
    from microdesign.data.files import require_writable
    from microdesign.design.space import in_physical_range, physical_range, range_text

    if porosity_tolerance is not None and not 0 <= float(porosity_tolerance) <= 1:
        raise ConfigError("porosity_tolerance", porosity_tolerance, "an absolute difference in [0, 1] or null")
    table = read_label_table(labels)
    paths = resolve_image_paths(images)
    greys, phase_labels = parse_grey_table(grey_to_phase)
    names = tuple(parameter_names) if parameter_names is not None else table.parameter_names
    if not names:
        raise ConfigError("labels", str(table.path), "at least one process-parameter column")
    unknown = [n for n in names if n not in table.parameter_names]
    if unknown:
        raise ConfigError("parameter_names", list(names), f"columns of {table.path}; missing {unknown}")
    units = {**table.parameter_units, **dict(parameter_units or {})}
    missing_units = [n for n in names if n not in units]
    if missing_units:
        raise ConfigError("parameter_units", units, f"a unit for every parameter (CSV header 'name [unit]', YAML "
                          f"parameter_units or the parameter_units option); missing {missing_units}",
                          context=str(table.path))
    if through_plane_axis not in (0, 1, 2):
        raise ConfigError("through_plane_axis", through_plane_axis, "0, 1 or 2")

    # --- pass 1: labels and voxel sizes (cheap), before reading any image --------------------
    label_rows: list[dict[str, float]] = []
    voxel: float | None = None
    voxel_from = ""
    for p in paths:
        row = table.rows.get(p.name)
        if row is None:
            raise ConfigError("labels", str(table.path), f"a row for image file {p.name!r} (missing label row)",
                              context=str(p))
        values = {}
        for n in names:
            if row.get(n) is None:
                raise ConfigError(f"label {n!r}", None, f"a value for {p.name} in {table.path} (missing label)",
                                  context=str(p))
            values[n] = float(row[n])
            rng = physical_range(n)
            if rng is not None and not in_physical_range(values[n], rng):
                raise ConfigError(f"label {n!r}", values[n], f"a physical {n} in {range_text(rng)} "
                                  f"({table.path})", context=str(p))
        label_rows.append(values)
        vs = table.voxel_sizes_m.get(p.name, table.voxel_size_m)
        vs = voxel_size_m if vs is None else vs
        if voxel_size_m is not None and vs is not None and not np.isclose(vs, voxel_size_m, rtol=1e-9, atol=0):
            raise ConfigError("voxel_size_m", vs, f"the voxel_size_m option {voxel_size_m} (table and option disagree)",
                              context=str(p))
        if vs is None:
            raise ConfigError("voxel_size_m", None, "a voxel (pixel) size in metres for this image: give the "
                              "voxel_size_m option or a voxel_size_m column (it is never guessed from the file)",
                              context=str(p))
        vs = check_voxel_size("voxel_size_m", vs, context=str(p))
        if voxel is not None and not np.isclose(vs, voxel, rtol=1e-9, atol=0):
            raise ConfigError("voxel_size_m", vs, f"one voxel size per dataset; {voxel_from} has {voxel}",
                              context=str(p))
        voxel, voxel_from = vs, p.name

    if Path(output).exists() and not overwrite:
        raise ConfigError("output", str(output), "a path that does not exist yet (or overwrite=true)")
    require_writable(output, "output")

    # --- pass 2: images: read, check shape and grey values (one file in memory at a time) ----
    shape: tuple[int, ...] | None = None
    first = ""
    files_prov = []
    cache: list[np.ndarray | None] = []
    held = 0
    for p in paths:
        raw = read_image(p)
        if raw.ndim == 3 and through_plane_axis:
            raw = np.moveaxis(raw, through_plane_axis, 0)
        if shape is None:
            shape, first = raw.shape, p.name
        elif raw.shape != shape:
            raise ConfigError("image shape", raw.shape, f"the shape {shape} of {first} (all images of a dataset "
                              "must have one size; inconsistent sizes)", context=str(p))
        mapped = map_grey_values(raw, greys, phase_labels, str(p))
        check_labels_against_image(mapped, label_rows[len(cache)], str(p), porosity_tolerance)
        held += mapped.nbytes
        cache.append(mapped if held <= _CACHE_BYTES else None)  # avoid decoding twice when it fits
        files_prov.append({"file": p.name, "sha256": _sha256(p), "shape": list(raw.shape), "dtype": str(raw.dtype)})
    assert shape is not None

    output = Path(output)
    if output.exists():
        output.unlink()  # overwrite=true (checked before the images were read)
    prov = {
        "kind": "imported",
        "labels_table": str(table.path.resolve()),
        "grey_to_phase": {f"{g:g}": PHASE_NAMES[int(lab)] for g, lab in zip(greys, phase_labels)},
        "through_plane_axis": int(through_plane_axis),
        "files": files_prov,
    }
    prov.update(dict(provenance or {}))
    with DatasetWriter(output, shape, names, {n: units[n] for n in names}, float(voxel), prov, resume=False) as w:
        for p, values, mapped in zip(paths, label_rows, cache):
            if mapped is None:
                raw = read_image(p)
                if raw.ndim == 3 and through_plane_axis:
                    raw = np.moveaxis(raw, through_plane_axis, 0)
                mapped = map_grey_values(raw, greys, phase_labels, str(p))
            w.append(np.ascontiguousarray(mapped), values, source=p.name)
    logger.info("imported %d images of shape %s at %.4g m into %s", len(paths), shape, voxel, output)
    return output
