"""Fidelity reference: the synthetic line, voxel and cube size come from the training dataset's provenance."""

from __future__ import annotations

import json
import logging

import pytest

from microdesign.errors import ConfigError
from microdesign.generator.reference import synthetic_reference

FALLBACK = {"_target_": "microdesign.synth.SyntheticLine", "particle_radius_mean_m": 3.5e-6,
            "particle_flattening": 0.5, "default_voxel_size_m": 3.98e-7}
PROV = {"kind": "synthetic", "generator": "microdesign.synth.line.SyntheticLine",
        "line_parameters": {"particle_radius_mean_m": 2.0e-6, "particle_flattening": 0.3,
                            "default_voxel_size_m": 3.98e-7}}


def test_settings_come_from_the_provenance_not_the_config(caplog):
    with caplog.at_level(logging.WARNING):
        ref = synthetic_reference(PROV, dataset_voxel_size_m=8e-7, dataset_shape=(24, 24, 24), fallback=FALLBACK,
                                  origin="d.h5")
    assert ref.settings == PROV["line_parameters"]
    assert ref.voxel_size_m == 8e-7 and ref.size_voxels == 24
    assert set(ref.sources.values()) == {"provenance"}
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    line = ref.line()
    assert line.particle_flattening == 0.3 and line.particle_radius_mean_m == 2.0e-6
    # an override that agrees with the provenance is accepted
    same = synthetic_reference(PROV, dataset_voxel_size_m=8e-7, dataset_shape=(24, 24, 24), fallback=FALLBACK,
                               overrides={"particle_flattening": 0.3}, size_voxels=24, voxel_size_m=8e-7)
    assert same.settings == ref.settings


def test_missing_provenance_falls_back_to_config_with_a_warning(caplog):
    partial = {**PROV, "line_parameters": {"particle_flattening": 0.3}}
    with caplog.at_level(logging.WARNING):
        ref = synthetic_reference(partial, dataset_voxel_size_m=8e-7, dataset_shape=(24, 24, 24), fallback=FALLBACK)
    assert ref.settings["particle_flattening"] == 0.3 and ref.sources["particle_flattening"] == "provenance"
    assert ref.settings["particle_radius_mean_m"] == 3.5e-6 and ref.sources["particle_radius_mean_m"] == "config"
    assert "particle_radius_mean_m" in caplog.text and "config" in ref.describe()
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        ref = synthetic_reference({"kind": "synthetic"}, dataset_voxel_size_m=8e-7, dataset_shape=(24, 24, 24),
                                  fallback=FALLBACK)
    assert ref.settings["particle_flattening"] == 0.5 and "no line_parameters" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        ref = synthetic_reference(None, fallback=FALLBACK, voxel_size_m=3.98e-7)
    assert ref.size_voxels == 64 and ref.settings["particle_flattening"] == 0.5
    assert "no training dataset" in caplog.text


@pytest.mark.parametrize("kwargs, match", [
    ({"overrides": {"particle_flattening": 0.5}}, r"reference\.synth\.particle_flattening = 0\.5.*0\.3.*provenance"),
    ({"voxel_size_m": 4e-7}, r"reference\.voxel_size_m.*8e-07"),
    ({"size_voxels": 32}, r"size_voxels = 32.*24"),
    ({"overrides": {"particle_flatening": 0.3}}, "settings of"),
])
def test_explicit_value_contradicting_the_provenance_is_refused(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        synthetic_reference(PROV, dataset_voxel_size_m=8e-7, dataset_shape=(24, 24, 24), fallback=FALLBACK,
                            origin="d.h5", **kwargs)


def test_non_synthetic_or_unreproducible_provenance_refused():
    with pytest.raises(ConfigError, match="reference.kind=volume"):
        synthetic_reference({"kind": "imported"}, fallback=FALLBACK)
    with pytest.raises(ConfigError, match="line changed"):
        synthetic_reference({**PROV, "line_parameters": {"old_setting": 1.0}}, fallback=FALLBACK)


def test_fidelity_command_reads_the_tiny_dataset_provenance(tmp_path):
    """build-dataset (dataset=tiny, a non-default line setting) -> train-generator -> fidelity uses that line."""
    from microdesign.cli import main
    from microdesign.data.dataset import MicrostructureDataset

    h5 = tmp_path / "tiny.h5"
    assert main(["build-dataset", "dataset=tiny", "synth.particle_flattening=0.3", "synth.particle_radius_mean_m=2.5e-6",
                 f"output={h5}", "progress=false"]) == 0
    with MicrostructureDataset(h5) as ds:
        assert ds.provenance["line_parameters"]["particle_flattening"] == 0.3
    model = tmp_path / "model"
    assert main(["train-generator", "generator_training=tiny", f"dataset.path={h5}", f"out_dir={tmp_path / 'run'}",
                 "name=tiny_fid", f"export_dir={model}", "progress=false"]) == 0
    meta = json.loads((model / "metadata.json").read_text())
    assert meta["training"]["dataset_path"] == str(h5.resolve())
    out = tmp_path / "fid"
    base = ["fidelity", f"generator.checkpoint={model}", "n_points=1", "n_seeds=2", f"output_dir={out}",
            "reference.dataset_candidates=[]"]
    assert main(base) == 0  # reference.dataset=auto: the path recorded in the checkpoint, hash-verified
    report = json.loads((out / "tiny_fid.json").read_text())
    assert report["size_voxels"] == 24
    # the shipped config's auto labelling, for a model of the line's parameters: each generated cube at the
    # design's fractions, as the line's volumes are (each within a voxel of the formulation's)
    assert report["phase_fractions"] == "design" and report["pore_neighbour_penalty"] == 2.0
    porosity = report["points"][0]["metrics"]["Porosity"]
    assert max(abs(g - r) for g, r in zip(porosity["generated"], porosity["reference"])) <= 2 / 24**3
    assert "'particle_flattening': 0.3" in report["reference"] and "2.5e-06" in report["reference"]
    assert f"provenance of {h5.resolve()}" in report["reference"]
    # explicit values that contradict the provenance: a clear error (exit code 2), before any work
    assert main(base + ["+reference.synth.particle_flattening=0.5"]) == 2
    assert main(base + ["size_voxels=32"]) == 2
    # the untrained tiny generator is at 0.398 um, the dataset at 0.8 um: refused
    assert main(["fidelity", "generator=tiny", f"reference.dataset={h5}", "n_points=1", "n_seeds=2",
                 f"output_dir={out}"]) == 2


def test_structure_statistics_on_analytical_cubes():
    """Known answers: a through-plane pore slab, an enclosed pore voxel, a CBD film across a pore channel."""
    import numpy as np

    from microdesign.generator.diagnostics import mean_chord_length, structure_statistics, summarise

    L = 12
    slab = np.ones((L, L, L), dtype=np.uint8)
    slab[:, : L // 3, :] = 0  # pore slab, 4 voxels thick along axis 1, spans axes 0 and 2
    s = structure_statistics(slab)
    assert s["spanning_pore_share"] == 1.0 and s["pore_clusters"] == 1 and s["enclosed_pore_share"] == 0
    assert s["pore_chord_axis0_vox"] == L and mean_chord_length(slab == 0, 1) == L // 3
    assert s["pore_chord_axes12_vox"] == (L // 3 + L) / 2
    assert s["isolated_voxels_pore_per_1e3"] == 0 and s["cbd_film_across_pore_per_1e3_pore"] == 0
    # AM slab 8 voxels thick along axis 1 (one face on the pore, one on the cube edge): distances 1..8
    assert s["am_clusters"] == 1 and s["am_thickness_mean_vox"] == np.mean(np.arange(1, 9))

    dot = np.ones((L, L, L), dtype=np.uint8)
    dot[5, 5, 5] = 0  # one enclosed, isolated pore voxel
    s = structure_statistics(dot)
    assert s["spanning_pore_share"] == 0 and s["enclosed_pore_share"] == 1 and s["isolated_voxels_pore_per_1e3"] == 1e3
    on_face = np.ones((L, L, L), dtype=np.uint8)
    on_face[0, 5, 5] = on_face[5, L - 1, 0] = 0  # isolated pore voxels on a face and on an edge
    assert structure_statistics(on_face)["isolated_voxels_pore_per_1e3"] == 1e3

    film = np.ones((L, L, L), dtype=np.uint8)
    film[:, 4:6, 4:6] = 0  # a 2 x 2 pore channel through-plane ...
    film[6, 4:6, 4:6] = 2  # ... closed by a one-voxel CBD film
    s = structure_statistics(film)
    assert s["cbd_film_across_pore_per_1e3_pore"] == 1e3 * 4 / (4 * (L - 1))
    assert s["spanning_pore_share"] == 0 and s["pore_clusters"] == 2
    table = summarise(np.stack([slab, slab]))
    assert table["porosity"] == (1 / 3, 0.0)
