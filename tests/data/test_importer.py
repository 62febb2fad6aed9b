"""Import of user images (TIFF stacks, PNG/TIFF 2D) + label tables, its rejections, TIFF export."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile
from PIL import Image

from microdesign.cli import main
from microdesign.config import compose
from microdesign.data import MicrostructureDataset, write_dataset
from microdesign.data.importer import import_images, read_label_table
from microdesign.data.tiff import export_tiff
from microdesign.errors import ConfigError

GREY = {0: "pore", 128: "active_material", 255: "cbd"}


def _labels3(rng, shape):
    return rng.integers(0, 3, size=shape).astype(np.uint8)


@pytest.fixture
def tiff_set(tmp_path):
    """Two 3D TIFF stacks with grey values 0/128/255 and a CSV with units in the header."""
    rng = np.random.default_rng(0)
    lut = np.array([0, 128, 255], np.uint8)
    truth = [_labels3(rng, (6, 8, 10)) for _ in range(2)]
    for i, t in enumerate(truth):
        tifffile.imwrite(tmp_path / f"stack_{i}.tif", lut[t])
    (tmp_path / "labels.csv").write_text(
        "file,am_weight_fraction [1],porosity [1],cbd_adhesion [1]\n"
        "stack_0.tif,0.90,0.35,0.2\n"
        "stack_1.tif,0.95,0.30,0.8\n"
    )
    return tmp_path, truth


def test_import_tiff_stacks_with_csv(tiff_set, tmp_path):
    folder, truth = tiff_set
    out = import_images(folder / "stack_*.tif", folder / "labels.csv", GREY, tmp_path / "out.h5", voxel_size_m=0.5e-6)
    with MicrostructureDataset(out) as ds:
        assert len(ds) == 2 and ds.ndim == 3 and ds.sample_shape == (6, 8, 10)
        assert ds.voxel_size_m == pytest.approx(0.5e-6)
        assert ds.parameter_units == {"am_weight_fraction": "1", "porosity": "1", "cbd_adhesion": "1"}
        for i in range(2):
            np.testing.assert_array_equal(ds[i].image, truth[i])
        assert ds[1].labels == {"am_weight_fraction": 0.95, "porosity": 0.30, "cbd_adhesion": 0.8}
        assert ds.sources() == ["stack_0.tif", "stack_1.tif"]
        assert ds.provenance["kind"] == "imported"
        assert len(ds.provenance["files"][0]["sha256"]) == 64


def test_import_through_plane_axis(tiff_set, tmp_path):
    folder, truth = tiff_set
    out = import_images([folder / "stack_0.tif"], folder / "labels.csv", GREY, tmp_path / "o.h5", voxel_size_m=1e-6,
                        through_plane_axis=2)
    with MicrostructureDataset(out) as ds:
        np.testing.assert_array_equal(ds[0].image, np.moveaxis(truth[0], 2, 0))


def test_import_png_with_yaml(tmp_path):
    rng = np.random.default_rng(1)
    truth = [_labels3(rng, (12, 9)) for _ in range(3)]
    for i, t in enumerate(truth):
        Image.fromarray((t * 100).astype(np.uint8)).save(tmp_path / f"sem_{i}.png")
    (tmp_path / "labels.yaml").write_text(
        "parameter_units: {porosity: '1', particle_radius_mean_m: m}\n"
        "voxel_size_m: 2.0e-8\n"
        "samples:\n"
        "  sem_0.png: {porosity: 0.3, particle_radius_mean_m: 4.0e-6}\n"
        "  sem_1.png: {porosity: 0.4, particle_radius_mean_m: 5.0e-6}\n"
        "  sem_2.png: {porosity: 0.5, particle_radius_mean_m: 6.0e-6}\n"
    )
    # the porosity labels are arbitrary numbers here (a format test): not checked against the images
    out = import_images(tmp_path, tmp_path / "labels.yaml", {0: "pore", 100: "am", 200: "cbd"}, tmp_path / "o.h5",
                        porosity_tolerance=None)
    with MicrostructureDataset(out) as ds:
        assert ds.ndim == 2 and len(ds) == 3
        assert ds.voxel_size_m == pytest.approx(2e-8)
        assert ds.parameter_units["particle_radius_mean_m"] == "m"
        np.testing.assert_array_equal(ds[2].image, truth[2])
        np.testing.assert_allclose(ds.labels_array()[:, 0], [0.3, 0.4, 0.5])


# ---- rejections: each names the file and the problem --------------------------------------------
def test_rejects_unmapped_grey_value(tiff_set, tmp_path):
    folder, _ = tiff_set
    with pytest.raises(ConfigError) as err:
        import_images(folder / "stack_*.tif", folder / "labels.csv", {0: "pore", 128: "active_material"},
                      tmp_path / "o.h5", voxel_size_m=1e-6)
    msg = str(err.value)
    assert "stack_0.tif" in msg and "unmapped: 255" in msg
    assert not (tmp_path / "o.h5").exists()


def test_rejects_inconsistent_sizes(tiff_set, tmp_path):
    folder, _ = tiff_set
    tifffile.imwrite(folder / "stack_1.tif", np.zeros((6, 8, 9), np.uint8))
    with pytest.raises(ConfigError) as err:
        import_images(folder / "stack_*.tif", folder / "labels.csv", GREY, tmp_path / "o.h5", voxel_size_m=1e-6)
    msg = str(err.value)
    assert "stack_1.tif" in msg and "(6, 8, 9)" in msg and "(6, 8, 10)" in msg and "inconsistent sizes" in msg


def test_rejects_missing_label_row_and_value(tiff_set, tmp_path):
    folder, _ = tiff_set
    tifffile.imwrite(folder / "stack_2.tif", np.zeros((6, 8, 10), np.uint8))
    with pytest.raises(ConfigError) as err:
        import_images(folder / "stack_*.tif", folder / "labels.csv", GREY, tmp_path / "o.h5", voxel_size_m=1e-6)
    assert "stack_2.tif" in str(err.value) and "missing label row" in str(err.value)
    (folder / "labels.csv").write_text(
        "file,am_weight_fraction [1],porosity [1],cbd_adhesion [1]\n"
        "stack_0.tif,0.90,,0.2\nstack_1.tif,0.95,0.30,0.8\nstack_2.tif,0.9,0.3,0.1\n"
    )
    with pytest.raises(ConfigError) as err:
        import_images(folder / "stack_*.tif", folder / "labels.csv", GREY, tmp_path / "o.h5", voxel_size_m=1e-6)
    msg = str(err.value)
    assert "stack_0.tif" in msg and "'porosity'" in msg and "missing label" in msg


def test_rejects_missing_voxel_size(tiff_set, tmp_path):
    folder, _ = tiff_set
    with pytest.raises(ConfigError) as err:
        import_images(folder / "stack_*.tif", folder / "labels.csv", GREY, tmp_path / "o.h5")
    msg = str(err.value)
    assert "stack_0.tif" in msg and "voxel_size_m" in msg and "never guessed" in msg


def test_rejects_missing_unit_non_number_and_colour(tmp_path):
    Image.fromarray(np.zeros((4, 4), np.uint8)).save(tmp_path / "a.png")
    (tmp_path / "l.csv").write_text("file,porosity\na.png,0.3\n")
    with pytest.raises(ConfigError, match="missing \\['porosity'\\]"):
        import_images([tmp_path / "a.png"], tmp_path / "l.csv", GREY, tmp_path / "o.h5", voxel_size_m=1e-6)
    (tmp_path / "l.csv").write_text("file,porosity [1]\na.png,high\n")
    with pytest.raises(ConfigError, match="a.png"):
        read_label_table(tmp_path / "l.csv")
    rgb = np.zeros((4, 4, 3), np.uint8)
    rgb[0, 0] = (255, 0, 0)
    Image.fromarray(rgb).save(tmp_path / "c.png")
    (tmp_path / "l.csv").write_text("file,porosity [1]\nc.png,0.3\n")
    with pytest.raises(ConfigError, match="c.png.*colour"):
        import_images([tmp_path / "c.png"], tmp_path / "l.csv", {0: "pore", 255: "am"}, tmp_path / "o.h5",
                      voxel_size_m=1e-6)


def test_rejects_bad_grey_table(tiff_set, tmp_path):
    folder, _ = tiff_set
    with pytest.raises(ConfigError, match="grey_to_phase"):
        import_images(folder / "stack_*.tif", folder / "labels.csv", {0: "water"}, tmp_path / "o.h5", voxel_size_m=1e-6)


# ---- export ---------------------------------------------------------------------------------
@pytest.mark.parametrize("shape", [(5, 7, 9), (11, 13)])
def test_export_tiff_round_trip(tmp_path, shape):
    rng = np.random.default_rng(2)
    vols = rng.integers(0, 3, size=(2, *shape), dtype=np.uint8)
    labels = [{"porosity": 0.3}, {"porosity": 0.4}]
    ds_path = write_dataset(tmp_path / "d.h5", vols, labels, {"porosity": "1"}, 0.4e-6)
    tif = export_tiff(ds_path, 1, tmp_path / "s.tif", grey_values=[0, 127, 255])
    with tifffile.TiffFile(tif) as t:
        arr = t.series[0].asarray()
        meta = t.imagej_metadata
        assert len(t.pages) == (shape[0] if len(shape) == 3 else 1)
    np.testing.assert_array_equal(arr, np.array([0, 127, 255], np.uint8)[vols[1]])
    assert '"porosity": 0.4' in meta["Info"]
    if len(shape) == 3:
        assert meta["spacing"] == pytest.approx(0.4)
    (tmp_path / "l.csv").write_text("file,porosity [1]\ns.tif,0.4\n")
    back = import_images([tif], tmp_path / "l.csv", {0: "pore", 127: "am", 255: "cbd"}, tmp_path / "back.h5",
                         voxel_size_m=0.4e-6)
    with MicrostructureDataset(back) as b:
        np.testing.assert_array_equal(b[0].image, vols[1])
    with pytest.raises(ConfigError, match="index"):
        export_tiff(ds_path, 5, tmp_path / "x.tif")
    with pytest.raises(ConfigError, match="grey_values"):
        export_tiff(ds_path, 0, tmp_path / "y.tif", grey_values=[0, 1])


def test_commands_and_configs(tiff_set, tmp_path):
    folder, truth = tiff_set
    for name in ("import_data", "export_tiff"):
        assert compose(name) is not None
    out = tmp_path / "cli.h5"
    rc = main(["import-data", f"images={folder}/stack_*.tif", f"labels={folder}/labels.csv", "voxel_size_m=1e-6",
               "grey_to_phase={0:pore,128:active_material,255:cbd}", f"output={out}"])
    assert rc == 0
    assert main(["import-data", f"images={folder}/stack_*.tif", f"labels={folder}/labels.csv",
                 f"output={tmp_path / 'bad.h5'}", "voxel_size_m=1e-6"]) == 2  # 128, 255 unmapped by default table
    tif = tmp_path / "e.tif"
    assert main(["export-tiff", f"input={out}", "index=1", f"output={tif}"]) == 0
    np.testing.assert_array_equal(tifffile.imread(tif), truth[1])


# ---- the real images (the shared_data fixture) -------------------------------------------------
def test_import_real_nrel_volume(tmp_path, shared_data):
    (tmp_path / "nrel.yaml").write_text(
        "parameter_units: {am_weight_fraction: '1', porosity: '1', cbd_adhesion: '1'}\n"
        "samples:\n  nrel_nmc1_cal_cbd_bridge.tif: {am_weight_fraction: 0.928, porosity: 0.4005, cbd_adhesion: 1.0}\n"
    )
    out = import_images(shared_data / "nrel_nmc1_cal_cbd_bridge.tif", tmp_path / "nrel.yaml",
                        {0: "pore", 1: "active_material", 2: "cbd"}, tmp_path / "nrel.h5", voxel_size_m=0.398e-6)
    with MicrostructureDataset(out) as ds:
        assert ds.sample_shape == (251, 301, 301)
        np.testing.assert_allclose(ds.phase_fractions(0), [0.4005, 0.4995, 0.1000], atol=6e-4)  # README values
        assert ds.provenance["files"][0]["sha256"].startswith("0197a8da")


def test_real_sem_and_generated_need_their_tables(tmp_path, shared_data):
    (tmp_path / "l.csv").write_text(
        "file,porosity [1]\nsem_nmc_cathode_2d.tif,0.144\ngenerated_nmc_256.tiff,0.45\n"
    )
    sem = shared_data / "sem_nmc_cathode_2d.tif"
    with pytest.raises(ConfigError, match="sem_nmc_cathode_2d.tif.*never guessed"):
        import_images([sem], tmp_path / "l.csv", {0.0: "pore", 1.0: "am", 2.0: "cbd"}, tmp_path / "s.h5")
    out = import_images([sem], tmp_path / "l.csv", {0.0: "pore", 1.0: "am", 2.0: "cbd"}, tmp_path / "s.h5",
                        voxel_size_m=1e-7)
    with MicrostructureDataset(out) as ds:
        assert ds.ndim == 2 and ds.sample_shape == (628, 758)
        np.testing.assert_allclose(ds.phase_fractions(0), [0.144, 0.583, 0.274], atol=1e-3)
    with pytest.raises(ConfigError, match="generated_nmc_256.tiff.*unmapped: 85"):
        import_images([shared_data / "generated_nmc_256.tiff"], tmp_path / "l.csv", {0: "pore", 1: "am", 2: "cbd"},
                      tmp_path / "g.h5", voxel_size_m=0.39e-6)


def test_labels_are_checked_against_their_physical_range_and_the_image(tmp_path, caplog):
    """A porosity of 1.5, a single-phase image and a porosity label the image contradicts are refused
    before the output exists; a small disagreement is a warning; porosity_tolerance=None warns only."""
    rng = np.random.default_rng(1)
    img = (rng.random((8, 10, 12)) < 0.4).astype(np.uint8)  # 40 % pore (label 1 -> AM elsewhere)
    img = np.where(img == 1, 0, 1).astype(np.uint8)
    img[rng.random(img.shape) < 0.1] = 2
    tifffile.imwrite(tmp_path / "a.tif", img)
    tifffile.imwrite(tmp_path / "flat.tif", np.ones((8, 10, 12), np.uint8))
    measured = float((img == 0).mean())
    out = tmp_path / "o.h5"
    grey = {0: "pore", 1: "am", 2: "cbd"}

    def run(file, porosity, **kw):
        (tmp_path / "l.csv").write_text(f"file,porosity [1]\n{file},{porosity}\n")
        return import_images(tmp_path / file, tmp_path / "l.csv", grey, out, voxel_size_m=1e-6, overwrite=True, **kw)

    with pytest.raises(ConfigError, match=r"label 'porosity'.*1\.5.*\(0, 1\)"):
        run("a.tif", 1.5)
    with pytest.raises(ConfigError, match="at least two phases; it is all active_material"):
        run("flat.tif", 0.4)
    with pytest.raises(ConfigError, match=r"label 'porosity'.*pore fraction"):
        run("a.tif", measured + 0.2)
    assert not out.exists()
    with caplog.at_level("WARNING"):
        run("a.tif", measured + 0.05)
    assert "differs from the image's pore fraction" in caplog.text
    out.unlink()
    run("a.tif", measured + 0.2, porosity_tolerance=None)
    assert out.exists()
    run("a.tif", measured)  # agreeing labels import silently


def test_import_data_command_refuses_an_unphysical_label(tmp_path, capsys):
    tifffile.imwrite(tmp_path / "a.tif", np.random.default_rng(0).integers(0, 3, (6, 6, 6), dtype=np.uint8))
    (tmp_path / "l.csv").write_text("file,porosity [1]\na.tif,1.5\n")
    assert main(["import-data", f"images={tmp_path / 'a.tif'}", f"labels={tmp_path / 'l.csv'}", "voxel_size_m=1e-6",
                 f"output={tmp_path / 'o.h5'}"]) == 2
    assert "porosity" in capsys.readouterr().err and not (tmp_path / "o.h5").exists()
