"""build-dataset: design of experiments, resumable build, command line, config groups."""

from __future__ import annotations

import numpy as np
import pytest
from hydra.utils import instantiate

from microdesign.cli import main
from microdesign.config import compose
from microdesign.data import MicrostructureDataset
from microdesign.errors import ConfigError
from microdesign.synth import SyntheticLine
from microdesign.synth.build import build_dataset, design_from_config, design_of_experiments, entry_seed

UNITS = {"am_weight_fraction": "1", "porosity": "1", "cbd_adhesion": "1"}
BOUNDS = {"am_weight_fraction": (0.88, 0.97), "porosity": (0.25, 0.5), "cbd_adhesion": (0.0, 1.0)}


def test_sobol_design_within_bounds_and_balanced():
    d = design_of_experiments(BOUNDS, UNITS, "sobol", n_points=64, seed=1)
    assert d.points.shape == (64, 3)
    lo = np.array([b[0] for b in BOUNDS.values()])
    hi = np.array([b[1] for b in BOUNDS.values()])
    assert np.all(d.points >= lo) and np.all(d.points <= hi)
    # Sobol balance: each half of every axis holds exactly half of the 2^m points
    u = (d.points - lo) / (hi - lo)
    assert np.all((u < 0.5).sum(axis=0) == 32)
    again = design_of_experiments(BOUNDS, UNITS, "sobol", n_points=64, seed=1)
    np.testing.assert_array_equal(d.points, again.points)


def test_factorial_design_and_fixed_parameter():
    d = design_of_experiments({"porosity": (0.3, 0.5)}, UNITS, "factorial", levels=3,
                              fixed={"am_weight_fraction": 0.9})
    assert d.names == ("porosity", "am_weight_fraction")
    np.testing.assert_allclose(d.points, [[0.3, 0.9], [0.4, 0.9], [0.5, 0.9]])
    with pytest.raises(ConfigError, match="doe.method"):
        design_of_experiments(BOUNDS, UNITS, "latin")
    with pytest.raises(ConfigError, match="lower < upper"):
        design_of_experiments({"porosity": (0.5, 0.3)}, UNITS)


def test_entry_seeds_distinct_and_stable():
    seeds = {entry_seed(0, p, r) for p in range(50) for r in range(3)}
    assert len(seeds) == 150
    assert entry_seed(0, 3, 1) == entry_seed(0, 3, 1)


class _Interrupt(Exception):
    pass


class _CrashingLine(SyntheticLine):
    """Raises after a given number of volumes, like a build killed mid-way."""

    def __init__(self, crash_after, **kw):
        super().__init__(**kw)
        self._left = crash_after

    def generate(self, *a, **k):
        if self._left == 0:
            raise _Interrupt
        self._left -= 1
        return super().generate(*a, **k)


def test_interrupted_build_resumes_to_identical_dataset(tmp_path):
    design = design_of_experiments(BOUNDS, UNITS, "sobol", n_points=4, seed=0)
    kw = dict(shape=16, voxel_size_m=1e-6, replicates=2, seed=5, progress=False)
    full = build_dataset(SyntheticLine(), tmp_path / "full.h5", design, **kw)
    part = tmp_path / "part.h5"
    with pytest.raises(_Interrupt):
        build_dataset(_CrashingLine(3), part, design, **kw)
    with MicrostructureDataset(part) as ds:
        assert len(ds) == 3
    calls = []

    class _Counting(SyntheticLine):
        def generate(self, *a, **k):
            calls.append(1)
            return super().generate(*a, **k)

    build_dataset(_Counting(), part, design, **kw)
    assert len(calls) == 5  # only the missing entries were generated
    a, b = MicrostructureDataset(full), MicrostructureDataset(part)
    assert len(b) == 8
    assert a.content_hash() == b.content_hash()
    np.testing.assert_array_equal(a.seeds(), b.seeds())
    # replicates of one point share labels, differ in structure
    np.testing.assert_array_equal(a.labels_array()[0], a.labels_array()[1])
    assert np.any(a[0].image != a[1].image)
    a.close()
    b.close()
    # a different build (other seed) refuses to resume into this file
    with pytest.raises(ConfigError, match="build_key"):
        build_dataset(SyntheticLine(), part, design, **{**kw, "seed": 6})


def test_build_rejects_parameters_the_line_does_not_know(tmp_path):
    design = design_of_experiments({"colour": (0.0, 1.0)}, {"colour": "1"}, "sobol", n_points=2)
    with pytest.raises(ConfigError):
        build_dataset(SyntheticLine(), tmp_path / "x.h5", design, shape=8, voxel_size_m=1e-6, progress=False)
    assert not (tmp_path / "x.h5").exists()


@pytest.mark.parametrize("option", ["default", "tiny", "factorial"])
def test_dataset_config_options_compose(option):
    cfg = compose("build_dataset", [f"dataset={option}"])
    line = instantiate(cfg.synth)
    design = design_from_config(cfg.design_space, cfg.dataset, seed=0)
    assert design.names == ("am_weight_fraction", "porosity", "cbd_adhesion")
    assert design.points.shape[0] >= 4
    line.resolve_parameters(dict(zip(design.names, design.points[0])))


def test_command_builds_and_resumes(tmp_path):
    out = tmp_path / "cli.h5"
    args = ["build-dataset", "dataset=tiny", f"output={out}", "progress=false", "dataset.shape=[12,12,12]"]
    assert main(args) == 0
    with MicrostructureDataset(out) as ds:
        assert len(ds) == 8 and ds.sample_shape == (12, 12, 12)
        assert ds.voxel_size_m == pytest.approx(0.8e-6)
        assert ds.provenance["command"] == "microdesign build-dataset"
        assert ds.provenance["parameter_bounds"] == {"am_weight_fraction": [0.88, 0.97], "porosity": [0.25, 0.5],
                                                     "cbd_adhesion": [0.0, 1.0]}
        h = ds.content_hash()
        labels = ds.labels_array()
    assert main(args) == 0  # second run: nothing to do, same content
    with MicrostructureDataset(out) as ds:
        assert ds.content_hash() == h
    lo = np.array([0.88, 0.25, 0.0])
    hi = np.array([0.97, 0.5, 1.0])
    assert np.all(labels >= lo) and np.all(labels <= hi)
