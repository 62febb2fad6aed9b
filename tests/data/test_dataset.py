"""Dataset format (microdesign.data.dataset): round-trip, attributes, laziness, resume, hashing."""

from __future__ import annotations

import json
import pickle

import h5py
import numpy as np
import pytest

from microdesign.data import DatasetWriter, MicrostructureDataset, Sample, write_dataset
from microdesign.data.dataset import FORMAT_NAME, SCHEMA_VERSION
from microdesign.errors import ConfigError
from microdesign.phases import PHASE_NAMES

UNITS = {"am_weight_fraction": "1", "porosity": "1", "cbd_adhesion": "1"}


def _volumes(n=3, shape=(12, 10, 8), seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 3, size=(n, *shape), dtype=np.uint8)


def _labels(n=3):
    return [{"am_weight_fraction": 0.9 + 0.01 * i, "porosity": 0.3 + 0.05 * i, "cbd_adhesion": 0.5} for i in range(n)]


def test_round_trip_3d_with_attributes(tmp_path):
    vols = _volumes()
    prov = {"kind": "test", "source": "made in test", "seed": 7}
    path = write_dataset(tmp_path / "d.h5", vols, _labels(), UNITS, 0.398e-6, prov, seeds=[1, 2, 3],
                         sources=["a", "b", "c"])
    with MicrostructureDataset(path) as ds:
        assert len(ds) == 3
        assert ds.ndim == 3
        assert ds.sample_shape == (12, 10, 8)
        assert ds.parameter_names == ("am_weight_fraction", "porosity", "cbd_adhesion")
        assert ds.parameter_units == UNITS
        assert ds.voxel_size_m == pytest.approx(0.398e-6, rel=0, abs=0)
        assert ds.phase_names == PHASE_NAMES
        assert ds.schema_version == SCHEMA_VERSION
        assert ds.provenance == prov
        for i in range(3):
            s = ds[i]
            assert isinstance(s, Sample)
            assert s.index == i
            assert s.image.dtype == np.uint8
            np.testing.assert_array_equal(s.image, vols[i])
            assert s.labels == pytest.approx(_labels()[i])
        np.testing.assert_allclose(ds.labels_array(), [[r[k] for k in UNITS] for r in _labels()])
        assert ds.labels_array().shape == (3, 3)
        np.testing.assert_array_equal(ds.seeds(), [1, 2, 3])
        assert ds.sources() == ["a", "b", "c"]
        assert ds[-1].index == 2
        with pytest.raises(IndexError):
            ds[3]
        np.testing.assert_allclose(ds.phase_fractions(0), np.bincount(vols[0].ravel(), minlength=3) / vols[0].size)
    with h5py.File(path, "r") as f:
        assert f.attrs["format"] == FORMAT_NAME
        assert json.loads(f.attrs["phase_labels"]) == [0, 1, 2]
        assert f["images"].chunks == (1, 12, 10, 8)  # one sample per chunk: lazy reads touch one chunk
        assert f["images"].compression == "gzip"


def test_round_trip_2d_and_array_labels(tmp_path):
    imgs = _volumes(n=2, shape=(9, 7))
    labels = np.array([[0.9, 0.3], [0.95, 0.4]])
    path = write_dataset(tmp_path / "d2.h5", imgs, labels, {"am_weight_fraction": "1", "porosity": "1"}, 1e-7,
                         parameter_names=["am_weight_fraction", "porosity"])
    ds = MicrostructureDataset(path)
    assert ds.ndim == 2 and ds[1].image.shape == (9, 7)
    np.testing.assert_array_equal(ds[1].image, imgs[1])
    assert ds[1].labels == {"am_weight_fraction": 0.95, "porosity": 0.4}


def test_reads_lazily_one_sample(tmp_path, monkeypatch):
    """__getitem__ reads the requested sample only, never the whole image array."""
    path = write_dataset(tmp_path / "d.h5", _volumes(n=4), _labels(4), UNITS, 1e-6)
    ds = MicrostructureDataset(path)
    requested = []
    original = h5py.Dataset.__getitem__

    def spy(self, key):
        if self.name == "/images":
            requested.append(key)
        return original(self, key)

    monkeypatch.setattr(h5py.Dataset, "__getitem__", spy)
    ds[2]
    assert requested == [2]


def test_pickle_reopens_handle(tmp_path):
    vols = _volumes()
    path = write_dataset(tmp_path / "d.h5", vols, _labels(), UNITS, 1e-6)
    ds = MicrostructureDataset(path)
    ds[0]
    clone = pickle.loads(pickle.dumps(ds))
    np.testing.assert_array_equal(clone[1].image, vols[1])


def test_content_hash_tracks_data_not_provenance(tmp_path):
    vols = _volumes()
    a = write_dataset(tmp_path / "a.h5", vols, _labels(), UNITS, 1e-6, {"run": 1})
    b = write_dataset(tmp_path / "b.h5", vols, _labels(), UNITS, 1e-6, {"run": 2})
    h = MicrostructureDataset(a).content_hash()
    assert len(h) == 64
    assert h == MicrostructureDataset(b).content_hash()
    vols2 = vols.copy()
    vols2[1, 3, 3, 3] = (vols2[1, 3, 3, 3] + 1) % 3
    c = write_dataset(tmp_path / "c.h5", vols2, _labels(), UNITS, 1e-6)
    assert MicrostructureDataset(c).content_hash() != h
    lab = _labels()
    lab[2]["porosity"] += 1e-9
    d = write_dataset(tmp_path / "d.h5", vols, lab, UNITS, 1e-6)
    assert MicrostructureDataset(d).content_hash() != h
    e = write_dataset(tmp_path / "e.h5", vols, _labels(), UNITS, 2e-6)
    assert MicrostructureDataset(e).content_hash() != h


def test_writer_resume_and_uncommitted_row(tmp_path):
    path = tmp_path / "w.h5"
    vols = _volumes(n=4)
    prov = {"build_key": "k1"}
    with DatasetWriter(path, vols.shape[1:], list(UNITS), UNITS, 1e-6, prov) as w:
        w.append(vols[0], _labels(4)[0], seed=10)
        w.append(vols[1], _labels(4)[1], seed=11)
    # simulate a crash mid-write: a row resized and filled but n_samples not committed
    with h5py.File(path, "r+") as f:
        f["images"].resize(3, axis=0)
        f["images"][2] = 1
    with MicrostructureDataset(path) as ds:
        assert len(ds) == 2
    with DatasetWriter(path, vols.shape[1:], list(UNITS), UNITS, 1e-6, prov) as w:
        assert len(w) == 2
        w.append(vols[2], _labels(4)[2], seed=12)
    with MicrostructureDataset(path) as ds:
        assert len(ds) == 3
        np.testing.assert_array_equal(ds[2].image, vols[2])
        np.testing.assert_array_equal(ds.seeds(), [10, 11, 12])
    with pytest.raises(ConfigError, match="build_key"):
        DatasetWriter(path, vols.shape[1:], list(UNITS), UNITS, 1e-6, {"build_key": "other"})
    with pytest.raises(ConfigError, match="sample shape"):
        DatasetWriter(path, (5, 5, 5), list(UNITS), UNITS, 1e-6, prov)
    with pytest.raises(ConfigError, match="does not exist"):
        DatasetWriter(path, vols.shape[1:], list(UNITS), UNITS, 1e-6, prov, resume=False)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"voxel_size_m": None}, "voxel_size_m"),
        ({"voxel_size_m": 0.4}, "voxel_size_m"),
        ({"parameter_units": {"porosity": "1"}}, "parameter_units"),
    ],
)
def test_writer_rejects_bad_header(tmp_path, kwargs, match):
    args = dict(voxel_size_m=1e-6, parameter_units=UNITS)
    args.update(kwargs)
    with pytest.raises(ConfigError, match=match):
        DatasetWriter(tmp_path / "x.h5", (4, 4, 4), list(UNITS), args["parameter_units"], args["voxel_size_m"])


def test_append_rejects_bad_samples(tmp_path):
    with DatasetWriter(tmp_path / "x.h5", (4, 4, 4), list(UNITS), UNITS, 1e-6) as w:
        lab = _labels(1)[0]
        with pytest.raises(ConfigError, match="shape"):
            w.append(np.zeros((4, 4, 5), np.uint8), lab)
        with pytest.raises(ConfigError, match="dtype"):
            w.append(np.zeros((4, 4, 4), np.int32), lab)
        with pytest.raises(ConfigError, match="max label 3"):
            w.append(np.full((4, 4, 4), 3, np.uint8), lab)
        with pytest.raises(ConfigError, match="cbd_adhesion"):
            w.append(np.zeros((4, 4, 4), np.uint8), {"am_weight_fraction": 0.9, "porosity": 0.3})
        with pytest.raises(ConfigError, match="finite"):
            w.append(np.zeros((4, 4, 4), np.uint8), {**lab, "porosity": float("nan")})
        assert len(w) == 0


def test_reader_rejects_foreign_file(tmp_path):
    path = tmp_path / "foreign.h5"
    with h5py.File(path, "w") as f:
        f["x"] = np.zeros(3)
    with pytest.raises(ConfigError, match="format"):
        MicrostructureDataset(path)
    with pytest.raises(FileNotFoundError):
        MicrostructureDataset(tmp_path / "missing.h5")
