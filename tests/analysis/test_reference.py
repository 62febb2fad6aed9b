"""Reference evaluation: held-out designs, line volumes, resumable data file (microdesign.analysis.reference)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from microdesign.analysis.reference import LineVolumes, held_out_designs, load_reference, run_reference
from microdesign.config import compose
from microdesign.design import DesignSpace
from microdesign.errors import ConfigError


@pytest.fixture(scope="module")
def cfg():
    return compose("campaign", [])


def test_held_out_designs_hold_both_porosity_ends_and_are_reproducible(cfg):
    space = DesignSpace.from_config(cfg.design_space)
    designs, seed = held_out_designs(space, 8, 14)
    again, seed2 = held_out_designs(space, 8, 14)
    assert designs == again and seed == seed2
    eps = [d["porosity"] for d in designs]
    assert min(eps) <= 0.28 and max(eps) >= 0.45
    for d in designs:
        assert set(d) == set(space.names)
        for name in space.names:
            assert space[name].lower <= d[name] <= space[name].upper
    # a different seed gives other designs (held out from each other)
    assert held_out_designs(space, 8, 2024)[0] != designs


def test_held_out_designs_refuse_an_impossible_porosity_demand(cfg):
    space = DesignSpace.from_config(cfg.design_space)
    with pytest.raises(ConfigError):
        held_out_designs(space, 2, 0, low_porosity=0.2, max_tries=3)  # porosity >= 0.25 everywhere


def test_line_volumes_are_independent_cubes_at_the_requested_porosity():
    from microdesign.synth import SyntheticLine

    src = LineVolumes(SyntheticLine(), 0.398e-6)
    vols = src.sample({"am_weight_fraction": 0.93, "porosity": 0.4, "cbd_adhesion": 0.5}, 2, 24, seed=3)
    assert vols.shape == (2, 24, 24, 24) and vols.dtype == np.uint8
    assert not np.array_equal(vols[0], vols[1])
    assert abs(float((vols == 0).mean()) - 0.4) < 1e-3
    with pytest.raises(ConfigError, match="voxel_size_m = 0.398: expected a voxel edge in metres"):
        LineVolumes(SyntheticLine(), 0.398)  # micrometres given for metres: refused before any volume is drawn


@pytest.mark.slow
def test_run_reference_appends_each_design_and_resumes_without_recomputing(cfg, tmp_path, monkeypatch):
    out = tmp_path / "ref.json"
    data = run_reference(cfg, out, n_designs=8, n_cubes=2, size_voxels=24, powers_W=(10.0, 30.0), only=[5],
                         command="test")
    assert [d["index"] for d in data["designs"]] == [5]
    rec = json.loads(out.read_text())["designs"][0]
    assert rec["metrics"]["n_cubes"] == 2 and rec["metrics"]["cube_size_voxels"] == 24
    e10, e30 = (rec["powers"][p]["objective"]["raw_value"] for p in ("10", "30"))
    assert e30 < e10  # higher power, lower delivered energy (same structure, same cell)
    assert rec["powers"]["10"]["cell"]["Power [W]"] == pytest.approx(10.0)
    from importlib.metadata import version

    assert rec["versions"]["pybamm"] == version("pybamm") and rec["versions"]["torch"] == version("torch")

    from microdesign.characterise import Characteriser

    def boom(*a, **k):
        raise AssertionError("a finished design was characterised again")

    monkeypatch.setattr(Characteriser, "characterise", boom)
    again = run_reference(cfg, out, n_designs=8, n_cubes=2, size_voxels=24, powers_W=(10.0, 30.0), only=[5])
    assert again["designs"] == load_reference(out)["designs"] and len(again["designs"]) == 1
    with pytest.raises(ConfigError):  # other settings: refused, not mixed into the file
        run_reference(cfg, out, n_designs=8, n_cubes=3, size_voxels=24, powers_W=(10.0, 30.0), only=[5])


def test_shared_structure_shares_one_characterisation_unless_the_stop_depends_on_the_evaluator():
    """Evaluators of one design at several powers characterise once; an adaptive stop judged by each
    evaluator's own callable (the objective's CI) is characterised per evaluator, from the same cubes,
    and each result carries its own characterisation CPU time."""
    from microdesign.analysis.reference import SharedStructure

    class Gen:
        voxel_size_m = 4e-7

        def __init__(self):
            self.draws = 0

        def sample(self, params, n, size_voxels, seed):
            self.draws += 1
            return np.zeros((n, size_voxels, size_voxels, size_voxels), np.uint8)

    class Char:
        def __init__(self):
            self.runs = 0

        def characterise_adaptive(self, sample_cubes, voxel_size_m, seed=0, relative_ci=None, **kw):
            self.runs += 1
            sample_cubes(4, seed)
            sum(i * i for i in range(200_000 * self.runs))  # CPU work, more for the later run
            return ("metrics", self.runs)

    gen, char = Gen(), Char()
    shared = SharedStructure(gen, char)

    def cubes(n, s):  # the evaluator's cube source
        return shared.sample({"porosity": 0.4}, n, 8, s)

    first = shared.characterise_adaptive(cubes, 4e-7, seed=3, max_cubes=8)
    cpu_first = shared.characterise_cpu_s
    assert shared.characterise_adaptive(cubes, 4e-7, seed=3, max_cubes=8) is first
    assert char.runs == 1 and shared.characterise_cpu_s == cpu_first > 0
    judged = shared.characterise_adaptive(cubes, 4e-7, seed=3, max_cubes=8, relative_ci=lambda m: 0.1)
    assert judged == ("metrics", 2) and char.runs == 2
    assert gen.draws == 1  # the same cubes: generated once
    assert shared.characterise_cpu_s > cpu_first
    assert shared.cpu_s["characterise"] == pytest.approx(cpu_first + shared.characterise_cpu_s)


def test_the_generator_side_of_a_calibration_draws_the_same_designs_and_measures_the_metrics_alone(cfg, tmp_path):
    from microdesign.campaign.build import instantiate

    data = run_reference(cfg, tmp_path / "gen.json", n_designs=8, n_cubes=2, size_voxels=16, powers_W=(), only=[1],
                         structures="generator", command="test")
    (rec,) = data["designs"]
    assert rec["powers"] == {} and rec["metrics"]["n_cubes"] == 2 and rec["metrics"]["cube_size_voxels"] == 16
    assert rec["inputs"] == held_out_designs(DesignSpace.from_config(cfg.design_space), 8, 14)[0][1]
    generator = instantiate(cfg.generator, "generator")
    assert data["settings"]["structures"] == {"generator": generator.name,
                                              "weights_sha256": generator.metadata.weights_sha256,
                                              "labelling": generator.labelling}
    with pytest.raises(ConfigError, match="structures"):
        run_reference(cfg, tmp_path / "x.json", n_designs=8, n_cubes=2, size_voxels=16, powers_W=(), only=[1],
                      structures="both")
