"""2D fidelity metrics (generator.fidelity_2d): analytical images, the estimator against brute force, validation."""

from __future__ import annotations

import math

import numpy as np
import pytest

from microdesign.errors import ConfigError
from microdesign.generator import fidelity_2d as f2
from microdesign.phases import ACTIVE_MATERIAL, CBD, PORE

DX = 1e-7


def test_half_plane_interface_length_per_area():
    H, W = 40, 60
    img = np.full((H, W), PORE, np.uint8)
    img[:, : W // 2] = ACTIVE_MATERIAL
    assert f2.interface_edge_counts(img) == {"am_pore": H, "am_cbd": 0, "pore_cbd": 0}
    raw = f2.interface_length_per_area(img, DX, isotropic_correction=False)
    assert raw["am_pore"] == pytest.approx(1 / (W * DX))  # length H dx over area H W dx^2
    corrected = f2.interface_length_per_area(img, DX)
    assert corrected["am_pore"] == pytest.approx(math.pi / 4 / (W * DX))  # grid-aligned: low by pi/4
    # the same line at 45 degrees: edge count ~ sqrt(2) x length, corrected estimate high by pi / (2 sqrt 2)
    n = 400
    diag = np.where(np.add.outer(np.arange(n), np.arange(n)) < n, ACTIVE_MATERIAL, PORE).astype(np.uint8)
    est = f2.interface_length_per_area(diag, DX)["am_pore"] * n * n * DX * DX
    assert est / (n * math.sqrt(2) * DX) == pytest.approx(math.pi / (2 * math.sqrt(2)), rel=0.01)


def test_three_phase_stripes_assign_each_pair():
    img = np.zeros((10, 30), np.uint8)
    img[:, 10:20], img[:, 20:] = ACTIVE_MATERIAL, CBD
    assert f2.interface_edge_counts(img) == {"am_pore": 10, "am_cbd": 10, "pore_cbd": 0}
    img2 = img[:, ::-1].T.copy()  # CBD | AM | pore, transposed: horizontal interfaces
    assert f2.interface_edge_counts(img2) == {"am_pore": 10, "am_cbd": 10, "pore_cbd": 0}
    img3 = np.where(img == ACTIVE_MATERIAL, PORE, img).astype(np.uint8)
    assert f2.interface_edge_counts(img3) == {"am_pore": 0, "am_cbd": 0, "pore_cbd": 10}
    stack = np.stack([img, img3])  # a stack pools counts and areas
    assert f2.interface_length_per_area(stack, DX)["pore_cbd"] == pytest.approx(
        f2.interface_length_per_area(img3, DX)["pore_cbd"] / 2)


@pytest.mark.parametrize("radius", [20.0, 45.0])
def test_disc_perimeter_within_the_crofton_bias(radius):
    n = int(2 * radius + 20)
    y, x = np.mgrid[:n, :n] - (n - 1) / 2
    img = np.where(x * x + y * y <= radius * radius, ACTIVE_MATERIAL, PORE).astype(np.uint8)
    per = f2.interface_length_per_area(img, DX)["am_pore"] * n * n * DX  # perimeter [pixels]
    assert per == pytest.approx(2 * math.pi * radius, rel=0.02)
    raw = f2.interface_length_per_area(img, DX, isotropic_correction=False)["am_pore"] * n * n * DX
    assert raw == pytest.approx(8 * radius, rel=0.02)  # edge count of a digital disc: its bounding square's perimeter


def _brute_s2(img, phase, r_max):
    H, W = img.shape
    ind = img == phase
    num, den = np.zeros(r_max + 1), np.zeros(r_max + 1)
    for dy in range(-r_max, r_max + 1):
        for dx in range(-r_max, r_max + 1):
            r = int(np.rint(math.hypot(dy, dx)))
            if r > r_max:
                continue
            a = ind[max(0, -dy):H - max(0, dy), max(0, -dx):W - max(0, dx)]
            b = ind[max(0, dy):H - max(0, -dy) or None, max(0, dx):W - max(0, -dx) or None]
            num[r] += np.sum(a & b)
            den[r] += a.size
    return num / den


def test_s2_equals_the_brute_force_non_periodic_estimator():
    rng = np.random.default_rng(3)
    img = rng.integers(0, 3, size=(13, 17)).astype(np.uint8)
    for phase in (PORE, ACTIVE_MATERIAL, CBD):
        r, s2 = f2.two_point_correlation(img, phase, 6)
        assert np.array_equal(r, np.arange(7))
        assert np.allclose(s2, _brute_s2(img, phase, 6), rtol=0, atol=1e-12)
    stack = rng.integers(0, 3, size=(3, 13, 17)).astype(np.uint8)  # a stack pools pair counts
    _, s2 = f2.two_point_correlation(stack, CBD, 6)
    num = sum(_brute_s2(im, CBD, 6) for im in stack) / 3  # equal-size images: equal pair numbers
    assert np.allclose(s2, num, atol=1e-12)


def test_s2_limits_on_a_random_and_a_striped_image():
    rng = np.random.default_rng(0)
    p = 0.3
    img = (rng.random((256, 256)) < p).astype(np.uint8)  # independent pixels: S2(0) = p, S2(r >= 1) = p^2
    r, s2 = f2.two_point_correlation(img, 1, 20)
    assert s2[0] == pytest.approx(img.mean())
    assert np.allclose(s2[1:], p * p, atol=0.006)
    stripes = np.tile(np.repeat(np.array([0, 1], np.uint8), 4), (64, 8))  # period 8 along x, fraction 1/2
    _, s2s = f2.two_point_correlation(stripes, 1, 16)
    assert s2s[0] == 0.5
    assert np.mean(s2s[1:]) == pytest.approx(0.25, abs=0.03)  # oscillates about phi^2 (period 8)


def test_correlation_length_of_an_exponential_s2():
    phi, a = 0.4, 5.3
    r = np.arange(0, 40, dtype=float)
    s2 = phi * phi + (phi - phi * phi) * np.exp(-r / a)
    assert f2.correlation_length(r, s2) == pytest.approx(a, rel=0.01)
    assert math.isnan(f2.correlation_length(r[:3], s2[:3]))  # does not fall to 1/e within r
    assert math.isnan(f2.correlation_length(r, np.zeros_like(r)))  # absent phase


def test_compare_identical_statistics_pass_and_wrong_fractions_fail():
    rng = np.random.default_rng(1)
    p = np.array([0.2, 0.5, 0.3])
    img = rng.choice(3, size=(96, 96), p=p).astype(np.uint8)
    vols = rng.choice(3, size=(2, 24, 24, 24), p=p).astype(np.uint8)
    rep = f2.compare_to_micrograph(vols, img, DX, r_max=6, n_windows=4)
    by = {c.metric: c for c in rep.comparisons}
    assert len(rep.comparisons) == 12 and rep.s2_generated.shape == (3, 7)
    for k in ("pore fraction", "active_material fraction", "cbd fraction",
              "interface length per area AM-pore [m-1]", "interface length per area AM-CBD [m-1]",
              "S2 max abs difference active_material"):
        assert by[k].passed, (k, by[k].difference)
    # independent pixels: interface edges per pixel edge = 2 p_a p_b on both sides
    expect = 2 * p[1] * p[0] * 2 * (23 / 24) * (math.pi / 4) / DX
    assert by["interface length per area AM-pore [m-1]"].generated_value == pytest.approx(expect, rel=0.03)
    assert set(rep.per_axis) == {0, 1, 2}
    d = rep.to_dict()
    assert d["s2"]["r_px"] == list(range(7)) and "pore" in d["s2"]["generated_by_axis"]["2"]
    md = f2.report_markdown(rep, "t")
    assert "of 12 comparisons within target" in md and "axis 2" in md

    wrong = rng.choice(3, size=(2, 24, 24, 24), p=[0.3, 0.4, 0.3]).astype(np.uint8)
    rep2 = f2.compare_to_micrograph(wrong, img, DX, r_max=6, n_windows=0)
    by2 = {c.metric: c for c in rep2.comparisons}
    assert not by2["pore fraction"].passed and by2["pore fraction"].difference == pytest.approx(0.1, abs=0.02)


def test_slices_along_all_axes_see_anisotropy():
    vol = np.zeros((16, 16, 16), np.uint8)
    vol[:, :, 8:] = ACTIVE_MATERIAL  # one plane normal to axis 2
    img = np.zeros((32, 32), np.uint8)
    img[:, 16:] = ACTIVE_MATERIAL
    rep = f2.compare_to_micrograph(vol, img, DX, r_max=4, n_windows=0)
    key = "interface length per area AM-pore [m-1]"
    # slices normal to axes 0 and 1 cut the plane (a line of 16 edges each); normal to axis 2 they do not
    assert rep.per_axis[2][key] == 0
    assert rep.per_axis[0][key] == rep.per_axis[1][key] == pytest.approx(math.pi / 4 / (16 * DX))


def test_input_validation():
    img = np.zeros((32, 32), np.uint8)
    img[:, 16:] = 1
    vol = np.zeros((1, 16, 16, 16), np.uint8)
    with pytest.raises(ConfigError, match="image"):
        f2.compare_to_micrograph(vol, np.zeros((2, 32, 32), np.uint8), DX)
    with pytest.raises(ConfigError, match="phase labels"):
        f2.phase_fractions(np.full((4, 4), 3, np.uint8))
    with pytest.raises(ConfigError, match="integer phase labels"):
        f2.phase_fractions(np.zeros((4, 4), np.float32))
    with pytest.raises(ConfigError, match="r_max"):
        f2.two_point_correlation(img, 1, 17)
    with pytest.raises(ConfigError, match="r_max"):
        f2.compare_to_micrograph(vol, img, DX, r_max=9)
    with pytest.raises(ConfigError, match="voxel_size_m"):
        f2.interface_length_per_area(img, -1.0)
    with pytest.raises(ConfigError, match="volumes"):
        f2.compare_to_micrograph(np.zeros((1, 16, 16, 8), np.uint8), img, DX)
    with pytest.raises(ConfigError, match="both sides"):
        f2.compare_to_micrograph(np.zeros((1, 40, 40, 40), np.uint8), img, DX)
    with pytest.raises(ConfigError, match="volumes"):
        f2.compare_to_micrograph(np.full((1, 16, 16, 16), 4, np.uint8), img, DX)
    with pytest.raises(ConfigError, match="phase"):
        f2.two_point_correlation(img, 5, 4)
    with pytest.raises(ConfigError, match="slice_stride"):
        f2.compare_to_micrograph(vol, img, DX, slice_stride=0)
    with pytest.raises(ConfigError, match="slice_stride"):
        f2.compare_to_micrograph(vol, img, DX, slice_stride=1.5)
    with pytest.raises(ConfigError, match="n_windows"):
        f2.compare_to_micrograph(vol, img, DX, n_windows=2.5)

    class NotToBeSampled:
        voxel_size_m = DX

        def sample(self, *args, **kwargs):
            raise AssertionError("sampled before the inputs were checked")

    with pytest.raises(ConfigError, match="n_cubes"):
        f2.evaluate_generator(NotToBeSampled(), img, 1.5, 16)
    with pytest.raises(ConfigError, match="size_voxels"):
        f2.evaluate_generator(NotToBeSampled(), img, 2, 2)
    with pytest.raises(ConfigError, match="r, s2"):
        f2.correlation_length(np.arange(3.0), np.arange(4.0))


def test_real_sem_image_statistics(shared_data):
    from microdesign.generator.data import load_training_data

    image = load_training_data(shared_data / "sem_nmc_cathode_2d.tif", voxel_size_m=1.35e-7,
                               label_map={0: 0, 1: 1, 2: 2}).images[0]
    assert image.shape == (628, 758)
    st = f2.image_statistics(image, 1.35e-7, 64)
    assert np.allclose(st.fractions, [0.1437, 0.5825, 0.2738], atol=5e-4)  # docs/public_data.md
    assert np.allclose(st.s2[:, 0], st.fractions)
    # the values quoted in docs/generator.md ("Training from one 2D micrograph")
    assert st.correlation_length_px[ACTIVE_MATERIAL] == pytest.approx(34.7, abs=0.1)
    assert st.interface_length_per_area["am_pore"] == pytest.approx(1.161e5, rel=1e-3)
