"""Bad input on every command: a clear message naming the option, exit code 2, before any work.

Each case runs ``microdesign.cli.main(argv)`` in-process (no subprocess) and asserts the exit
code 2, that stderr names the option, and that no traceback escapes. Files are tiny and made in
``tmp_path``; campaign cases use the analytic stages (``experiment=analytic``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from microdesign.cli import main

CAMPAIGN = ["experiment=analytic", "campaign.progress=false", "campaign.validation.top_k=0",
            "campaign.budget.max_evaluations=2", "optimiser=sobol"]


@pytest.fixture(scope="module")
def campaign_file(tmp_path_factory) -> Path:
    """A finished two-trial analytic campaign file."""
    path = tmp_path_factory.mktemp("campaign") / "c.h5"
    assert main(["campaign", *CAMPAIGN, f"output={path}"]) == 0
    return path


def _files(root: Path, campaign: Path) -> dict[str, Path]:
    """Bad input files: empty, truncated, text disguised as TIFF/HDF5, a missing path, a campaign
    file with flipped bytes or cut short."""
    import h5py
    import tifffile

    files = {"missing": root / "missing.h5", "missing_tif": root / "missing.tif", "campaign": campaign}
    data = bytearray(campaign.read_bytes())
    for i in range(len(data) // 3, len(data), len(data) // 7):
        data[i] ^= 0x5A
    (root / "flipped.h5").write_bytes(bytes(data))
    files["flipped.h5"] = root / "flipped.h5"
    (root / "truncated_campaign.h5").write_bytes(campaign.read_bytes()[: len(data) // 2])
    files["truncated_campaign.h5"] = root / "truncated_campaign.h5"
    for name in ("empty.tif", "empty.h5", "empty.npy"):
        (root / name).write_bytes(b"")
        files[name] = root / name
    for name in ("text.tif", "text.h5", "text.npy"):
        (root / name).write_text("not an image\n")
        files[name] = root / name
    good = root / "good.tif"
    tifffile.imwrite(good, np.random.default_rng(0).integers(0, 3, (24, 24, 24), dtype=np.uint8))
    data = good.read_bytes()
    (root / "truncated.tif").write_bytes(data[: len(data) // 3])
    files["truncated.tif"] = root / "truncated.tif"
    h5 = root / "plain.h5"  # a valid HDF5 file that is not a microdesign dataset / campaign
    with h5py.File(h5, "w") as f:
        f["x"] = np.zeros(3)
    files["plain.h5"] = h5
    (root / "truncated.h5").write_bytes(h5.read_bytes()[:700])
    files["truncated.h5"] = root / "truncated.h5"
    (root / "labels.csv").write_bytes(b"file,porosity [1]\n\xff\xfe\x00binary")
    files["text_npy_bin"] = root / "labels.csv"
    (root / "labels.yaml").write_text("samples: [unclosed\n  - {file: a")
    files["bad_yaml"] = root / "labels.yaml"
    (root / "good.csv").write_text("file,porosity [1]\none_phase.tif,0.4\n")
    files["good_csv"] = root / "good.csv"
    one = root / "one_phase.tif"
    tifffile.imwrite(one, np.zeros((24, 24, 24), np.uint8))
    files["one_phase.tif"] = one
    return files


# (id, argv with {name} placeholders for _files entries and {tmp} for tmp_path, the option the message names)
CASES = [
    # wrong types and unknown keys (cli.check_overrides)
    ("campaign-budget-type", ["campaign", *CAMPAIGN, "campaign.budget.max_evaluations=ten", "output={tmp}/c.h5"],
     "campaign.budget.max_evaluations"),
    ("campaign-unknown-plus-key", ["campaign", *CAMPAIGN, "+campaign.budget.max_evals=5", "output={tmp}/c.h5"],
     "max_evaluations"),
    ("campaign-bool-type", ["campaign", *CAMPAIGN, "campaign.adaptive=maybe", "output={tmp}/c.h5"], "campaign.adaptive"),
    ("campaign-float-for-int", ["campaign", *CAMPAIGN, "campaign.n_cubes=2.5", "output={tmp}/c.h5"], "campaign.n_cubes"),
    ("process-type", ["process", "process.inputs.line_load_N_mm=abc"], "process.inputs.line_load_N_mm"),
    ("sample-unknown-plus-param", ["sample", "+params.porosty=0.3", "output={tmp}/s.h5"], "porosity"),
    ("sample-unknown-param", ["sample", "+params.particle_radius_m=1e-6", "output={tmp}/s.h5"],
     "params.particle_radius_m"),
    ("sample-unknown-target-arg", ["sample", "+generator.devic=cpu", "output={tmp}/s.h5"], "device"),
    ("sample-n-type", ["sample", "n=two", "output={tmp}/s.h5"], "n"),
    ("cell-type", ["cell", "ragone.n=many"], "ragone.n"),
    ("sample-too-large-for-memory", ["sample", "size_voxels=100000", "output={tmp}/s.h5"], "size_voxels"),
    # an invalid design space or cell setting: refused before the first trial, also with the analytic stages
    ("campaign-negative-mass-loading", ["campaign", *CAMPAIGN, "design_space.parameters.mass_loading_mg_cm2.lower=-5",
                                        "output={tmp}/c.h5"], "mass_loading_mg_cm2.lower"),
    ("campaign-fixed-below-bound", ["campaign", *CAMPAIGN, "design_space.parameters.mass_loading_mg_cm2.fixed=5",
                                    "output={tmp}/c.h5"], "fixed"),
    ("campaign-porosity-above-one", ["campaign", *CAMPAIGN, "design_space.parameters.porosity.upper=1.2",
                                     "output={tmp}/c.h5"], "porosity.upper"),
    ("campaign-porosity-zero", ["campaign", *CAMPAIGN, "design_space.parameters.porosity.lower=0",
                                "output={tmp}/c.h5"], "porosity.lower"),
    ("campaign-negative-power", ["campaign", *CAMPAIGN, "cell.power_W=-3", "output={tmp}/c.h5"], "cell.power_W"),
    ("campaign-zero-power", ["campaign", *CAMPAIGN, "cell.power_W=0", "output={tmp}/c.h5"], "cell.power_W"),
    ("campaign-on-resume-running", ["campaign", *CAMPAIGN, "campaign.on_resume_running=sometimes",
                                    "output={tmp}/c.h5"], "campaign.on_resume_running"),
    ("campaign-existing-output", ["campaign", *CAMPAIGN, "output={text_h5}"], "output"),
    ("campaign-negative-target-ci", ["campaign", *CAMPAIGN, "campaign.adaptive=true", "campaign.target_relative_ci=-1",
                                     "output={tmp}/c.h5"], "campaign.target_relative_ci"),
    ("campaign-max-cubes-one", ["campaign", *CAMPAIGN, "campaign.adaptive=true", "campaign.max_cubes=1",
                                "output={tmp}/c.h5"], "campaign.max_cubes"),
    ("campaign-output-not-hdf5", ["campaign", *CAMPAIGN, "output={tmp}/c.txt"], "output"),
    ("campaign-stub-voxel-size", ["campaign", *CAMPAIGN, "generator.voxel_size_m=-1", "output={tmp}/c.h5"],
     "generator.voxel_size_m"),
    ("campaign-negative-seed", ["campaign", *CAMPAIGN, "seed=-1", "output={tmp}/c.h5"], "seed"),
    # options of the other commands
    ("characterise-negative-seed", ["characterise", "source.kind=synthetic", "seed=-1", "output=null"], "seed"),
    ("characterise-synthetic-voxel-size", ["characterise", "source.kind=synthetic", "source.voxel_size_m=0.4",
                                           "output=null"], "source.voxel_size_m"),
    ("build-dataset-negative-seed", ["build-dataset", "seed=-1", "output={tmp}/b.h5"], "seed"),
    ("process-negative-seed", ["process", "monte_carlo_samples=10", "seed=-1"], "seed"),
    ("process-monte-carlo-negative", ["process", "monte_carlo_samples=-5"], "monte_carlo_samples"),
    ("process-monte-carlo-one", ["process", "monte_carlo_samples=1"], "monte_carlo_samples"),
    ("convergence-sizes-not-a-list", ["convergence", "source.kind=synthetic", "cube_sizes=abc",
                                      "output_dir={tmp}/cv"], "cube_sizes"),
    ("cell-tortuosity-below-one", ["cell", "mode=one", "design.tortuosity_factor=0.5"], "design.tortuosity_factor"),
    ("report-dpi", ["report", "{campaign}", "dpi=0", "out_dir={tmp}/r"], "dpi"),
    ("fidelity-n-points", ["fidelity", "n_points=0", "output_dir={tmp}/f"], "n_points"),
    ("fidelity-n-seeds", ["fidelity", "n_seeds=0", "output_dir={tmp}/f"], "n_seeds"),
    ("fidelity-missing-reference", ["fidelity", "reference.kind=volume", "reference.path={missing_tif}",
                                    "output_dir={tmp}/f"], "reference.path"),
    # outputs that cannot be written: refused before any work (data.files.require_writable)
    *[(f"unwritable-{argv[0]}", argv, option) for argv, option in [
        (["sample", "output={text_tif}/s.h5"], "output"),
        (["characterise", "source.kind=synthetic", "output={text_tif}/x.json"], "output"),
        (["export-tiff", "input={missing}", "output={text_tif}/o.tif"], "input"),
        (["cell", "mode=one", "output={text_tif}/o.csv"], "output"),
        (["fidelity", "output_dir={text_tif}/f"], "output_dir"),
        (["train-generator", "dataset.path={missing}", "out_dir={text_tif}", "progress=false"], "out_dir"),
        (["convergence", "source.kind=synthetic", "output_dir={text_tif}"], "output_dir"),
        (["build-dataset", "output={text_tif}/b.h5"], "output"),
        (["campaign", *CAMPAIGN, "output={text_tif}/c.h5"], "output"),
        (["report", "{campaign}", "out_dir={text_tif}"], "out_dir"),
    ]],
    ("build-dataset-resume-foreign-file", ["build-dataset", "output={text_h5}"], "output"),
    ("import-data-binary-labels", ["import-data", "images={one_phase_tif}", "labels={text_npy_bin}",
                                   "voxel_size_m=1e-6", "output={tmp}/i.h5"], "labels"),
    ("import-data-yaml-syntax", ["import-data", "images={one_phase_tif}", "labels={bad_yaml}",
                                 "voxel_size_m=1e-6", "output={tmp}/i.h5"], "labels"),
    ("import-data-existing-output", ["import-data", "images={one_phase_tif}", "labels={good_csv}",
                                     "voxel_size_m=1e-6", "output={text_h5}"], "output"),  # before reading images
    ("import-data-single-phase", ["import-data", "images={one_phase_tif}", "labels={good_csv}",
                                  "voxel_size_m=1e-6", "output={tmp}/i.h5"], "image"),
    # user files: missing, empty, not the expected kind, truncated (data.files)
    *[(f"characterise-{f}", ["characterise", "source.path={%s}" % f.replace(".", "_"), "source.voxel_size_m=4e-7",
                             "n_cubes=2", "cube_size=8", "output=null"], "source.path")
      for f in ("missing_tif", "empty.tif", "text.tif", "truncated.tif", "empty.npy", "text.npy")],
    *[(f"train-generator-{f}", ["train-generator", "dataset.path={%s}" % f.replace(".", "_"), "out_dir={tmp}/g",
                                "progress=false"], "dataset.path")
      for f in ("missing", "empty.h5", "text.h5", "plain.h5", "truncated.h5")],
    *[(f"train-generator-{f}", ["train-generator", "dataset.path={%s}" % f.replace(".", "_"), "out_dir={tmp}/g",
                                "dataset.voxel_size_m=4e-7", "dataset.label_map={0:0,1:1,2:2}", "progress=false"],
       "dataset.path") for f in ("missing_tif", "empty.tif", "text.tif", "truncated.tif")],
    ("train-generator-one-phase", ["train-generator", "dataset.path={one_phase_tif}", "out_dir={tmp}/g",
                                   "dataset.voxel_size_m=4e-7", "dataset.label_map={0:0,1:1,2:2}", "progress=false"],
     "images"),
    *[(f"export-tiff-{f}", ["export-tiff", "input={%s}" % f.replace(".", "_"), "output={tmp}/o.tif"], "input")
      for f in ("missing", "empty.h5", "text.h5", "plain.h5", "truncated.h5", "text.tif")],
    *[(f"report-{f}", ["report", "{%s}" % f.replace(".", "_")], "file")
      for f in ("missing", "empty.h5", "text.h5", "plain.h5", "truncated.h5", "flipped.h5", "truncated_campaign.h5")],
    *[(f"campaign-resume-{f}", ["campaign", "resume={%s}" % f.replace(".", "_")], "resume")
      for f in ("missing", "empty.h5", "text.h5", "plain.h5", "truncated.h5", "flipped.h5", "truncated_campaign.h5")],
]


def _argv(template: list[str], files: dict[str, Path], tmp: Path) -> list[str]:
    import re

    names = {"tmp": str(tmp), **{k.replace(".", "_"): str(v) for k, v in files.items()}, "campaign": str(files["campaign"])}
    return [re.sub(r"\{(\w+)\}", lambda m: names.get(m.group(1), m.group(0)), a) for a in template]


@pytest.mark.parametrize("argv, option", [pytest.param(a, o, id=i) for i, a, o in CASES])
def test_bad_input_is_a_named_error(argv, option, tmp_path, capsys, campaign_file):
    files = _files(tmp_path, campaign_file)
    before = {p.name for p in tmp_path.iterdir()}
    capsys.readouterr()
    rc = main(_argv(argv, files, tmp_path))
    err = capsys.readouterr().err
    assert rc == 2, err
    assert "Traceback" not in err
    assert option in err, err
    left = {p.name for p in tmp_path.iterdir()} - before
    assert not left, f"files left behind: {left}"
