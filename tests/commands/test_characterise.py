"""Characterisation configs compose and instantiate; the characterise / convergence commands run."""

from __future__ import annotations

import json

import numpy as np
import pytest
import tifffile
from hydra.utils import instantiate

from microdesign.characterise import Characteriser
from microdesign.characterise.io import load_volume
from microdesign.characterise.testing import random_three_phase
from microdesign.cli import main
from microdesign.config import compose, conf_dir
from microdesign.errors import ConfigError

OPTIONS = sorted(p.stem for p in (conf_dir() / "characterise").glob("*.yaml"))


def test_every_characterise_option_composes_and_instantiates():
    assert {"cpu", "gpu", "fast", "taufactor"} <= set(OPTIONS)
    for opt in OPTIONS:
        for root in ("characterise", "convergence"):
            cfg = compose(root, [f"characterise={opt}"])
            c = instantiate(cfg.characterise)
            assert isinstance(c, Characteriser)
            assert c.device in ("cpu", "cuda")
    assert instantiate(compose("characterise", ["characterise=taufactor"]).characterise).solver.name == "taufactor"
    assert instantiate(compose("characterise", []).characterise).solver.name == "mgcg"  # cpu default
    # the solver is a group of its own: any option can switch it
    fast_tf = instantiate(compose("characterise", ["characterise=fast", "characterise/solver=taufactor"]).characterise)
    assert fast_tf.solver.name == "taufactor" and fast_tf.adaptive.max_cubes == 8


@pytest.fixture()
def tiff_volume(tmp_path):
    v = random_three_phase(28, porosity=0.45, cbd_fraction=0.1, correlation_voxels=1.5, seed=2)
    raw = np.choose(v, [0, 85, 170]).astype(np.uint8)  # labels as in the TauFactor example file
    path = tmp_path / "vol.tif"
    tifffile.imwrite(path, raw)
    return path, v


def test_characterise_command_on_a_tiff_with_a_label_table(tiff_volume, tmp_path):
    path, v = tiff_volume
    out = tmp_path / "res.json"
    rc = main(["characterise", f"source.path={path}", "source.voxel_size_m=4e-7", "source.phase_values=[0,85,170]",
               "cube_size=14", "n_cubes=3", f"output={out}", "characterise=fast", "characterise.solver.threads=1"])
    assert rc == 0
    res = json.loads(out.read_text())
    assert res["status"] == "ok" and res["n_cubes"] == 3
    por = res["metrics"]["Porosity"]
    assert len(por["values"]) == 3 and 0.2 < por["mean"] < 0.7
    assert res["metrics"]["Pore tortuosity factor through-plane"]["mean"] >= 1.0


def test_characterise_command_rejects_unmapped_labels_and_missing_voxel_size(tiff_volume):
    path, _ = tiff_volume
    assert main(["characterise", f"source.path={path}", "source.voxel_size_m=4e-7", "output=null"]) == 2
    assert main(["characterise", f"source.path={path}", "source.phase_values=[0,85,170]", "output=null"]) == 2
    with pytest.raises(ConfigError, match="source.phase_values"):
        load_volume(path, {0: 0, 85: 1, 170: 7})  # a target label outside {0, 1, 2}


def test_convergence_command_writes_table_plot_and_conclusion(tiff_volume, tmp_path):
    path, _ = tiff_volume
    out = tmp_path / "conv"
    rc = main(["convergence", f"source.path={path}", "source.voxel_size_m=4e-7", "source.phase_values=[0,85,170]",
               "cube_sizes=[10,14]", "counts=[2,3]", "target_relative_ci=0.9", f"output_dir={out}",
               "characterise=fast", "characterise.solver.threads=1"])
    assert rc == 0
    rows = (out / "convergence.csv").read_text().splitlines()
    assert len(rows) == 1 + 2 * 2 * 7  # header + sizes x counts x metrics
    md = (out / "convergence.md").read_text()
    assert "smallest setting meeting the target" in md
    assert (out / "convergence.png").stat().st_size > 1000


def test_a_single_cube_shows_its_ci_as_not_available_and_writes_standard_json(tmp_path, capsys):
    out = tmp_path / "one.json"
    assert main(["characterise", "source.kind=synthetic", "cube_size=16", "n_cubes=1", "characterise=fast",
                 f"output={out}"]) == 0
    assert "n/a (one cube)" in capsys.readouterr().out and "inf" not in out.read_text().lower()
    metrics = json.loads(out.read_text(), parse_constant=lambda c: pytest.fail(f"non-standard JSON {c}"))["metrics"]
    assert all(m["ci95_half_width"] is None and m["relative_ci95"] is None for m in metrics.values())
    assert all(isinstance(m["mean"], float) for m in metrics.values())
