"""User-file checks (kind by signature, empty, truncated) and standard JSON output."""

from __future__ import annotations

import json

import numpy as np
import pytest
import tifffile

from microdesign.data.files import file_kind, json_safe, read_array, require_file, write_json
from microdesign.errors import ConfigError


def test_kind_is_read_from_the_content_not_the_suffix(tmp_path):
    import h5py

    tif, h5, npy = tmp_path / "a.h5", tmp_path / "b.tif", tmp_path / "c.dat"
    tifffile.imwrite(tif, np.zeros((4, 4), np.uint8))
    with h5py.File(h5, "w") as f:
        f["x"] = 1
    np.save(tmp_path / "c.npy", np.zeros(3))
    (tmp_path / "c.npy").rename(npy)
    assert (file_kind(tif), file_kind(h5), file_kind(npy)) == ("tiff", "hdf5", "npy")
    with pytest.raises(ConfigError, match=r"opt = .*a\.h5.*an HDF5 file; the file is a TIFF image"):
        require_file(tif, "opt", ("hdf5",))
    assert require_file(h5, "opt", ("hdf5",)) == h5


@pytest.mark.parametrize("content, problem", [(None, "does not exist"), (b"", "is empty"),
                                              (b"hello", "unknown format")])
def test_missing_empty_and_foreign_files_name_the_option(tmp_path, content, problem):
    path = tmp_path / "v.tif"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(ConfigError, match=f"source.path = .*{problem}"):
        read_array(path, "source.path")


def test_a_truncated_tiff_is_a_config_error(tmp_path):
    path = tmp_path / "v.tif"
    tifffile.imwrite(path, np.arange(8 * 32 * 32, dtype=np.uint16).reshape(8, 32, 32))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ConfigError, match="source.path.*complete, readable"):
        read_array(path, "source.path")


def test_json_output_is_standard_json(tmp_path):
    obj = {"ci": float("inf"), "x": [1.0, float("nan"), np.float32(2.5)], "a": np.array([np.inf, 3.0]),
           "n": np.int64(4), "nested": {"ok": True, "none": None}}
    assert json_safe(obj) == {"ci": None, "x": [1.0, None, 2.5], "a": [None, 3.0], "n": 4,
                              "nested": {"ok": True, "none": None}}
    path = write_json(obj, tmp_path / "sub" / "o.json")
    text = path.read_text()
    assert "Infinity" not in text and "NaN" not in text
    json.loads(text, parse_constant=lambda c: pytest.fail(f"non-standard constant {c}"))


def test_require_writable_refuses_folders_files_and_impossible_locations(tmp_path):
    from microdesign.data.files import require_writable

    (tmp_path / "f.txt").write_text("x")
    (tmp_path / "d").mkdir()
    assert require_writable(tmp_path / "new" / "deeper" / "o.h5", "output") == tmp_path / "new" / "deeper" / "o.h5"
    assert not (tmp_path / "new").exists()  # nothing made by the check
    assert list(tmp_path.iterdir()) and not [p for p in tmp_path.iterdir() if p.name.startswith(".microdesign")]
    with pytest.raises(ConfigError, match="output = .*a file path; this is a folder"):
        require_writable(tmp_path / "d", "output")
    with pytest.raises(ConfigError, match="out_dir = .*a folder to write into; this is a file"):
        require_writable(tmp_path / "f.txt", "out_dir", directory=True)
    with pytest.raises(ConfigError, match=r"output = .*f\.txt is a file"):
        require_writable(tmp_path / "f.txt" / "sub" / "o.json", "output")
