"""Synthetic line (microdesign.synth.SyntheticLine): phase fractions, determinism, physical trends."""

from __future__ import annotations

import numpy as np
import pytest
from hydra.utils import instantiate

from microdesign.config import compose
from microdesign.errors import ConfigError
from microdesign.phases import ACTIVE_MATERIAL, CBD, PORE
from microdesign.synth import SyntheticLine, phase_volume_fractions

# Coarse voxels keep test volumes small while holding many particles (r = 3.5 um = 3.5 voxels).
VOXEL = 1.0e-6


def _fractions(vol):
    c = np.bincount(vol.ravel(), minlength=3) / vol.size
    return {"pore": c[PORE], "active_material": c[ACTIVE_MATERIAL], "cbd": c[CBD]}


def test_formulation_volume_fractions_by_hand():
    # w_AM 0.90, carbon 0.05, PVDF 0.05 by weight, porosity 0.40 (docs/synthetic_line.md)
    v_am, v_c, v_b = 0.90 / 4.75, 0.05 / 1.9, 0.05 / 1.78
    x = phase_volume_fractions(0.90, 0.40)
    assert x["pore"] == pytest.approx(0.40)
    assert x["active_material"] == pytest.approx(0.60 * v_am / (v_am + v_c + v_b), rel=1e-3)
    assert x["cbd"] == pytest.approx(0.60 * (v_c + v_b) / (v_am + v_c + v_b), rel=1e-3)
    assert sum(x.values()) == pytest.approx(1.0)


@pytest.mark.parametrize(
    "params, shape",
    [
        ({"am_weight_fraction": 0.97, "porosity": 0.25, "cbd_adhesion": 1.0}, 32),
        ({"am_weight_fraction": 0.88, "porosity": 0.50, "cbd_adhesion": 0.0}, 32),
        ({"am_weight_fraction": 0.92, "porosity": 0.35, "cbd_adhesion": 0.5}, (20, 28, 36)),
        ({"am_weight_fraction": 0.92, "porosity": 0.35, "cbd_adhesion": 0.5}, (48, 40)),
    ],
)
def test_hits_phase_fractions(params, shape):
    line = SyntheticLine()
    vol = line.generate(params, shape, voxel_size_m=VOXEL, seed=3)
    expected_shape = (shape,) * 3 if isinstance(shape, int) else shape
    assert vol.shape == expected_shape and vol.dtype == np.uint8
    assert set(np.unique(vol)) <= {0, 1, 2}
    got = _fractions(vol)
    target = line.target_fractions(params)
    for phase in ("pore", "active_material", "cbd"):
        assert abs(got[phase] - target[phase]) < 0.01, (phase, got, target)


def test_default_voxel_size_and_particle_size_in_volume():
    line = SyntheticLine()
    assert line.default_voxel_size_m == pytest.approx(0.398e-6)
    vol, info = line.generate_with_info({"am_weight_fraction": 0.93, "porosity": 0.4, "cbd_adhesion": 0.5}, 40, seed=0)
    assert info.n_particles > 10
    assert abs(info.level_set_shift_voxels) < 3  # packing reached the target without large growth
    assert info.compression == pytest.approx((1 - 0.5) / (1 - 0.4))


def test_seeded_determinism():
    line = SyntheticLine()
    p = {"am_weight_fraction": 0.9, "porosity": 0.4, "cbd_adhesion": 0.3}
    a = line.generate(p, 24, voxel_size_m=VOXEL, seed=11)
    b = line.generate(p, 24, voxel_size_m=VOXEL, seed=11)
    c = line.generate(p, 24, voxel_size_m=VOXEL, seed=12)
    np.testing.assert_array_equal(a, b)
    assert np.mean(a != c) > 0.1


def _face_area(vol, a, b):
    n = 0
    for ax in range(3):
        x, y = np.moveaxis(vol, ax, 0)[:-1], np.moveaxis(vol, ax, 0)[1:]
        n += np.sum((x == a) & (y == b)) + np.sum((x == b) & (y == a))
    return n / vol.size


def test_more_adhesion_less_am_pore_surface():
    line = SyntheticLine()
    areas = []
    for adhesion in (0.0, 0.5, 1.0):
        vals = [
            _face_area(line.generate({"am_weight_fraction": 0.9, "porosity": 0.35, "cbd_adhesion": adhesion}, 32,
                                     voxel_size_m=VOXEL, seed=s), ACTIVE_MATERIAL, PORE)
            for s in (0, 1)
        ]
        areas.append(np.mean(vals))
    assert areas[0] > areas[1] > areas[2]
    assert areas[2] < 0.8 * areas[0]  # a clear effect, not noise


def test_lower_porosity_higher_pore_tortuosity():
    import taufactor as tau

    line = SyntheticLine()
    taus = []
    for porosity in (0.45, 0.30):
        vals = []
        for seed in (0, 1):
            vol = line.generate({"am_weight_fraction": 0.94, "porosity": porosity, "cbd_adhesion": 0.5}, 32,
                                voxel_size_m=VOXEL, seed=seed)
            solver = tau.Solver((vol == PORE).astype(np.uint8), device="cpu")
            solver.solve(verbose=False, conv_crit=1e-2, iter_limit=20000)
            vals.append(float(np.asarray(solver.tau).ravel()[0]))
        assert all(np.isfinite(vals)) and min(vals) >= 1.0
        taus.append(np.mean(vals))
    assert taus[1] > taus[0] * 1.1, taus


@pytest.mark.parametrize(
    "params, match",
    [
        ({"porosity": 0.3, "cbd_adhesion": 0.5}, "am_weight_fraction"),
        ({"am_weight_fraction": 0.9, "porosity": 1.2, "cbd_adhesion": 0.5}, "porosity"),
        ({"am_weight_fraction": 0.9, "porosity": 0.3, "cbd_adhesion": -0.1}, "cbd_adhesion"),
        ({"am_weight_fraction": 0.9, "porosity": 0.3, "cbd_adhesion": 0.1, "colour": 1.0}, "params"),
        ({"am_weight_fraction": 0.9, "porosity": 0.3, "cbd_adhesion": 0.1, "particle_radius_mean_m": 1e-7},
         "particle_radius_mean_m"),
    ],
)
def test_rejects_bad_parameters(params, match):
    with pytest.raises(ConfigError, match=match):
        SyntheticLine().generate(params, 16, voxel_size_m=VOXEL)


def test_rejects_bad_shape_and_config():
    p = {"am_weight_fraction": 0.9, "porosity": 0.3, "cbd_adhesion": 0.1}
    with pytest.raises(ConfigError, match="shape"):
        SyntheticLine().generate(p, (4, 4, 4, 4))
    with pytest.raises(ConfigError, match="voxel_size_m"):
        SyntheticLine().generate(p, 8, voxel_size_m=0.5)
    with pytest.raises(ConfigError, match="dry_porosity"):
        SyntheticLine(dry_porosity=1.5)


def test_config_composes_and_instantiates():
    cfg = compose("build_dataset")
    line = instantiate(cfg.synth)
    assert isinstance(line, SyntheticLine)
    assert line.particle_radius_mean_m == pytest.approx(3.5e-6)
    vol = line.generate({"am_weight_fraction": 0.95, "porosity": 0.4, "cbd_adhesion": 1.0}, 16, voxel_size_m=VOXEL)
    assert vol.shape == (16, 16, 16)


def test_distance_transform_is_the_same_with_or_without_edt(monkeypatch):
    """The synthetic line falls back to scipy's EDT where the optional compiled ``edt`` is missing."""
    import builtins

    pytest.importorskip("edt")  # the test extra installs it: without it both halves would be scipy's

    import numpy as np
    from scipy import ndimage

    from microdesign.synth.line import distance_to_background

    mask = np.random.default_rng(0).random((20, 17, 23)) > 0.3
    with_lib = distance_to_background(mask)
    real_import = builtins.__import__

    def no_edt(name, *a, **k):
        if name == "edt":
            raise ImportError("no edt here")
        return real_import(name, *a, **k)

    monkeypatch.setattr(builtins, "__import__", no_edt)
    without = distance_to_background(mask)
    assert without.dtype == np.float32 and np.array_equal(with_lib, without)
    assert np.array_equal(without, ndimage.distance_transform_edt(mask).astype(np.float32))
    assert without[~mask].max() == 0 and without[mask].min() >= 1
