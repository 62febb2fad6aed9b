"""The torch voxel work of the GPU path (percolation, cluster labels, face counting, set-up) equals the host
path exactly.

Run on CPU tensors: the same torch code runs on CUDA in the GPU path.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from microdesign.characterise import Characteriser, MgcgSolver, TauFactorSolver
from microdesign.characterise import metrics as M
from microdesign.characterise.connectivity import (face_connected_clusters, face_connected_clusters_torch,
                                                   spanning_mask, spanning_masks, spanning_masks_torch)
from microdesign.characterise.surface import interface_face_counts, interface_face_counts_torch
from microdesign.characterise.testing import random_three_phase, straight_channels
from microdesign.errors import ConfigError
from microdesign.phases import ACTIVE_MATERIAL, CBD, PORE

DX = 0.4e-6


def _host(masks: np.ndarray, axis: int) -> np.ndarray:
    return np.stack([spanning_mask(m, axis) for m in masks])


# site percolation threshold of the simple cubic lattice (6-connectivity): p_c = 0.3116
@pytest.mark.parametrize("p", [0.2, 0.29, 0.31, 0.3116, 0.32, 0.35, 0.5, 0.8])
def test_torch_spanning_equals_scipy_on_uncorrelated_fields_near_the_threshold(p):
    rng = np.random.default_rng(int(p * 1e4))
    masks = rng.random((6, 20, 20, 20)) < p
    for axis in (0, 1, 2):
        expect = _host(masks, axis)
        got = spanning_masks_torch(torch.from_numpy(masks), axis).numpy()
        np.testing.assert_array_equal(got, expect)


@pytest.mark.parametrize("porosity", [0.12, 0.18, 0.25, 0.4])
def test_torch_spanning_equals_scipy_on_correlated_tortuous_fields(porosity):
    # correlated fields near their (lower) threshold give long winding clusters: many fill steps
    masks = np.stack([random_three_phase((24, 18, 21), porosity=porosity, correlation_voxels=1.5, seed=s) == PORE
                      for s in range(4)])
    for axis in (0, 1, 2):
        np.testing.assert_array_equal(spanning_masks_torch(torch.from_numpy(masks), axis).numpy(), _host(masks, axis))


def test_torch_spanning_follows_a_winding_path_and_uses_6_connectivity():
    L = 12
    rng = np.random.default_rng(5)
    walk = np.zeros((L, L, L), dtype=bool)  # a 6-connected random walk from face 0 to face L-1: many turns
    p = np.array([0, L // 2, L // 2])
    walk[tuple(p)] = True
    while p[0] < L - 1:
        d = rng.integers(3)
        p[d] = np.clip(p[d] + rng.choice([-1, 1]), 0, L - 1)
        walk[tuple(p)] = True
    cut = walk.copy()
    cut[L // 2] = False  # no path left across the middle layer
    diag = np.zeros((4, 4, 4), dtype=bool)
    diag[0, 0, 0] = diag[1, 1, 0] = diag[2, 1, 1] = diag[3, 2, 1] = True  # edge-connected only: no spanning
    assert spanning_mask(walk).sum() == walk.sum()
    for m in (walk, cut, diag, np.zeros((5, 5, 5), bool), np.ones((5, 5, 5), bool)):
        np.testing.assert_array_equal(spanning_masks_torch(torch.from_numpy(m[None]))[0].numpy(), spanning_mask(m))
    assert not spanning_masks_torch(torch.from_numpy(diag[None])).any()


def test_spanning_masks_dispatches_on_array_type():
    masks = np.stack([random_three_phase(12, seed=s) == PORE for s in range(3)])
    host = spanning_masks(masks)
    dev = spanning_masks(torch.from_numpy(masks))
    assert isinstance(host, np.ndarray) and torch.is_tensor(dev)
    np.testing.assert_array_equal(dev.numpy(), host)


def test_face_connected_clusters_number_each_cube_from_one_with_6_connectivity():
    """Two voxels touching along an edge only are two clusters (6-connectivity); numbering restarts per
    cube; a tensor gives the same clusters as an array."""
    m = np.zeros((2, 5, 5, 5), dtype=bool)
    m[0, 1, 1, 1] = m[0, 2, 2, 1] = True  # edge neighbours: separate
    m[0, 3, 3, 3:5] = True  # face neighbours: one cluster
    m[1, 0, 0, 0] = True
    out = face_connected_clusters(m)
    assert out.dtype == np.int32 and out[0].max() == 3 and out[1].max() == 1
    assert out[0, 3, 3, 3] == out[0, 3, 3, 4] != out[0, 1, 1, 1] != out[0, 2, 2, 1]
    assert ((out > 0) == m).all()
    np.testing.assert_array_equal(face_connected_clusters(torch.as_tensor(m)).numpy(), out)  # CPU: scipy
    _assert_same_clusters(face_connected_clusters_torch(torch.as_tensor(m)), out)


def _assert_same_clusters(dev, host: np.ndarray) -> None:
    """``dev`` (int32 tensor) numbers the clusters of ``host`` 1..k in every cube, in some order."""
    assert torch.is_tensor(dev) and dev.dtype == torch.int32
    dev = dev.numpy()
    np.testing.assert_array_equal(dev > 0, host > 0)
    for d, h in zip(dev, host):
        pairs = set(zip(h[h > 0].tolist(), d[h > 0].tolist()))
        k = int(h.max())
        assert int(d.max()) == k and len(pairs) == k  # one device number per host cluster, and back
        assert {b for _, b in pairs} == set(range(1, k + 1))


@pytest.mark.parametrize("p", [0.2, 0.3116, 0.5])
def test_torch_clusters_equal_scipy_on_uncorrelated_fields(p):
    """Uncorrelated fields at, below and above the site percolation threshold (many small clusters, a few
    tortuous ones, one large): the same clusters as scipy in every cube, and an empty batch or mask."""
    m = np.random.default_rng(int(p * 1e4)).random((3, 16, 14, 18)) < p
    _assert_same_clusters(face_connected_clusters_torch(torch.from_numpy(m)), face_connected_clusters(m))
    assert face_connected_clusters_torch(torch.zeros(0, 4, 4, 4, dtype=torch.bool)).shape == (0, 4, 4, 4)
    assert int(face_connected_clusters_torch(torch.zeros(2, 4, 4, 4, dtype=torch.bool)).max()) == 0


def test_torch_face_counts_equal_numpy():
    vols = np.stack([random_three_phase((14, 16, 15), porosity=0.35, cbd_fraction=0.15, seed=s) for s in range(5)])
    t = torch.from_numpy(vols)
    for a, b in ((ACTIVE_MATERIAL, PORE), (ACTIVE_MATERIAL, CBD), (PORE, CBD)):
        got = interface_face_counts_torch(t, a, b).numpy()
        np.testing.assert_array_equal(got, [interface_face_counts(v, a, b) for v in vols])


@pytest.mark.parametrize("solver", ["mgcg", "taufactor"])
def test_characteriser_device_path_gives_identical_metrics(solver):
    cubes = np.stack([random_three_phase(16, porosity=0.42, cbd_fraction=0.12, correlation_voxels=1.5, seed=s)
                      for s in range(3)])
    make = {"mgcg": MgcgSolver, "taufactor": TauFactorSolver}[solver]
    kw = dict(in_plane=(solver == "mgcg"), bulk_conductivity_S_m={"active_material": 1.0, "cbd": 10.0})
    host = Characteriser(make(threads=1, batch=True), voxel_ops="host", **kw)
    dev = Characteriser(make(threads=1, batch=True), voxel_ops="device", **kw)
    assert not host.on_device and dev.on_device and not Characteriser().on_device  # auto: host on a CPU
    (vh, rh), (vd, rd) = host.measure(cubes, DX), dev.measure(cubes, DX)
    assert rh is None and rd is None, (rh, rd)
    assert set(vh) == set(vd)
    for k in vh:
        np.testing.assert_array_equal(vd[k], vh[k], err_msg=k)
    assert set(dev.timings_s) == {"host_prep", "transfer", "fractions_surfaces", "tortuosity", "conductivity"}
    assert all(t >= 0 for t in dev.timings_s.values())


def test_device_path_reports_non_percolation_like_the_host_path():
    v = straight_channels(L=16)
    v[8] = ACTIVE_MATERIAL
    for ops in ("host", "device"):
        m = Characteriser(MgcgSolver(threads=1), voxel_ops=ops).characterise(v, DX)
        assert m.status == "failed" and "pore network does not percolate through-plane" in m.reason
    with pytest.raises(ConfigError):
        Characteriser(voxel_ops="gpu")


def test_gpu_target_benchmark_fails_clearly_without_cuda(capsys, load_script):
    if torch.cuda.is_available():
        pytest.skip("CUDA present: the no-CUDA refusal cannot be exercised")
    mod = load_script("benchmark_characterise")
    assert mod.main(["--gpu-target"]) == 2
    assert "no CUDA device" in capsys.readouterr().err


def test_torch_spanning_matches_taufactors_own_extract_through_feature():
    from taufactor.metrics import extract_through_feature

    from microdesign.characterise.taufactor_backend import quiet

    rng = np.random.default_rng(11)
    for p in (0.3, 0.33, 0.45):
        m = rng.random((18, 18, 18)) < p
        with quiet():
            masks, _ = extract_through_feature(m.astype(np.uint8), 1, "x", connectivity=1)
        np.testing.assert_array_equal(spanning_masks_torch(torch.from_numpy(m[None]))[0].numpy(),
                                      np.asarray(masks[0], dtype=bool))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA (run on a GPU machine)")
def test_cuda_device_path_matches_the_host_path():
    """On CUDA: voxel work identical to the host path; transport values equal to float32/float64 rounding."""
    cubes = np.stack([random_three_phase(24, porosity=0.4, cbd_fraction=0.12, correlation_voxels=1.5, seed=s)
                      for s in range(4)])
    (vh, rh) = Characteriser(MgcgSolver(device="cpu", threads=1, batch=True), in_plane=True,
                             voxel_ops="host").measure(cubes, DX)
    gpu = Characteriser(MgcgSolver(device="cuda", threads=1, batch=True), in_plane=True)
    assert gpu.on_device
    (vd, rd) = gpu.measure(cubes, DX)
    assert rh is None and rd is None, (rh, rd)
    for k in vh:
        if k in (M.TORTUOSITY_THROUGH_PLANE, M.TORTUOSITY_IN_PLANE, M.CONDUCTIVITY_SOLID):
            np.testing.assert_allclose(vd[k], vh[k], rtol=1e-3, err_msg=k)
        else:
            np.testing.assert_array_equal(vd[k], vh[k], err_msg=k)
    masks = torch.from_numpy(cubes == PORE).cuda()
    for axis in (0, 1, 2):
        np.testing.assert_array_equal(spanning_masks_torch(masks, axis).cpu().numpy(), _host(cubes == PORE, axis))
