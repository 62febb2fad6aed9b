"""MG-CG solver: deflation by clusters of the most conducting phase."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from microdesign.characterise import transport as T
from microdesign.characterise.connectivity import face_connected_clusters, spanning_mask
from microdesign.characterise.mgcg import mgcg_solve
from microdesign.phases import ACTIVE_MATERIAL, CBD, PORE

torch = pytest.importorskip("torch")

AM_S_M, CBD_S_M = 0.18, 760.0  # the characteriser's bulk conductivities (conf/characterise/_base.yaml)


def _islands(L: int, seed: int, cbd: float = 0.06, pore: float = 0.3) -> np.ndarray:
    """AM matrix with pores and small CBD islands (blobs of ~3 voxels) that do not span: the solid
    conductivity is set by the AM between the islands, the hard case for the V-cycle."""
    rng = np.random.default_rng(seed)
    field = ndimage.gaussian_filter(rng.standard_normal((L, L, L)), 1.5)
    second = ndimage.gaussian_filter(rng.standard_normal((L, L, L)), 1.0)
    v = np.full((L, L, L), ACTIVE_MATERIAL, dtype=np.uint8)
    v[field < np.quantile(field, pore)] = PORE
    v[(second > np.quantile(second, 1 - cbd)) & (v == ACTIVE_MATERIAL)] = CBD
    return v


def _solid_conductance(v: np.ndarray) -> np.ndarray:
    """Conductivities scaled by the CBD's, zero off the spanning solid (as the characteriser solves them)."""
    c = np.where(v == ACTIVE_MATERIAL, AM_S_M / CBD_S_M, np.where(v == CBD, 1.0, 0.0))
    return np.where(spanning_mask(c > 0), c, 0.0)


def test_deflation_gives_the_same_conductance_in_fewer_iterations():
    """Against a tightly converged plain solve: both runs at rtol 1e-4 are within 2e-4 of it (the energy is an
    upper bound of the conductance, so neither may fall below it by more than rounding), and the deflated
    one needs at most half the iterations where the CBD forms islands."""
    cubes = np.stack([_solid_conductance(_islands(24, s)) for s in (0, 1)])
    clusters = face_connected_clusters((np.stack([_islands(24, s) for s in (0, 1)]) == CBD) & (cubes > 0))
    assert all(clusters[i].max() > 20 for i in range(2))  # many islands per cube
    exact, _, _ = mgcg_solve(cubes, 1.0, dtype="float64", rtol=1e-13, conv_crit=1e-10, iter_limit=5000)
    plain, ok_p, it_p = mgcg_solve(cubes, 1.0, dtype="float64")
    defl, ok_d, it_d = mgcg_solve(cubes, 1.0, dtype="float64", deflation_clusters=clusters)
    assert ok_p.all() and ok_d.all()
    np.testing.assert_allclose(plain, exact, rtol=2e-4)
    np.testing.assert_allclose(defl, exact, rtol=2e-4)
    assert (defl >= exact * (1 - 1e-10)).all()
    assert (2 * it_d <= it_p).all(), (it_d, it_p)


def test_deflated_batch_equals_cube_by_cube_solves():
    """Cluster numbers restart in every cube; the batched solve offsets them, so a batch of two cubes with
    different cluster counts gives each cube's own solution."""
    vols = np.stack([_islands(16, 2), _islands(16, 3, cbd=0.1)])
    cubes = np.stack([_solid_conductance(v) for v in vols])
    clusters = face_connected_clusters((vols == CBD) & (cubes > 0))
    assert clusters[0].max() != clusters[1].max()
    both, _, _ = mgcg_solve(cubes, 1.0, dtype="float64", rtol=1e-10, conv_crit=1e-8, deflation_clusters=clusters)
    for i in range(2):
        one, _, _ = mgcg_solve(cubes[i:i + 1], 1.0, dtype="float64", rtol=1e-10, conv_crit=1e-8,
                               deflation_clusters=clusters[i:i + 1])
        assert both[i] == pytest.approx(one[0], rel=1e-8)


def test_series_layers_with_a_cluster_on_the_outlet_face_give_the_harmonic_mean():
    """Half AM, half CBD along axis 0: the CBD is one cluster that touches a Dirichlet face; the conductivity
    is the harmonic mean (two conductors in series), through the characteriser's conductivity driver."""
    L = 12
    v = np.full((1, L, L, L), ACTIVE_MATERIAL, dtype=np.uint8)
    v[:, L // 2:] = CBD
    r = T.mgcg_conductivity(v, {ACTIVE_MATERIAL: AM_S_M, CBD: CBD_S_M}, rtol=1e-6, dtype="float64")
    assert r.converged.all()
    assert r.d_eff[0] == pytest.approx(2 / (1 / AM_S_M + 1 / CBD_S_M), rel=2e-3)


def test_deflation_on_and_off_agree_through_the_conductivity_driver():
    vols = np.stack([_islands(20, 4), _islands(20, 5)])
    cond = {ACTIVE_MATERIAL: AM_S_M, CBD: CBD_S_M}
    on = T.mgcg_conductivity(vols, cond, dtype="float64")
    off = T.mgcg_conductivity(vols, cond, dtype="float64", deflation=False)
    assert on.converged.all() and off.converged.all()
    np.testing.assert_allclose(on.d_eff, off.d_eff, rtol=2e-4)
    assert (on.iterations < off.iterations).all()


def test_bad_deflation_clusters_are_refused_naming_them():
    cubes = np.stack([_solid_conductance(_islands(12, 6))])
    touching = np.zeros(cubes.shape, dtype=np.int32)
    touching[0, 2, 2, 2], touching[0, 2, 2, 3] = 1, 2  # two clusters sharing a face
    with pytest.raises(ValueError, match="deflation_clusters.*share a face"):
        mgcg_solve(cubes, 1.0, dtype="float64", deflation_clusters=touching)
    with pytest.raises(ValueError, match="deflation_clusters.*shape"):
        mgcg_solve(cubes, 1.0, dtype="float64", deflation_clusters=touching[:, :-1])
    with pytest.raises(ValueError, match="deflation_clusters.*float64"):
        mgcg_solve(cubes, 1.0, dtype="float32", deflation_clusters=np.zeros(cubes.shape, dtype=np.int32))


def test_the_deflation_solves_the_clusters_coarse_problem_exactly():
    """After the correction x + Q r the residual has no component on any cluster (W^T r = 0), which holds
    only with the right coarse operator E = W^T A W; a cluster cut off by insulator gets no correction."""
    from microdesign.characterise.mgcg import _ClusterDeflation, _Level, face_conductances

    vols = np.stack([_islands(16, 7)])
    c = torch.as_tensor(_solid_conductance(vols[0])[None], dtype=torch.float64)
    clusters = face_connected_clusters((vols == CBD) & (c.numpy() > 0))
    # an island of 3^3 voxels of mixed conductance inside insulator: its E is 0 but for rounding (~1e-16)
    c[0, 5:12, 5:12, 5:12] = 0.0
    c[0, 7:10, 7:10, 7:10] = torch.rand(3, 3, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64) + 0.01
    clusters[0, 5:12, 5:12, 5:12] = 0
    island = int(clusters.max()) + 1
    clusters[0, 7:10, 7:10, 7:10] = island
    level = _Level(*face_conductances(c, 1.0, True))
    Q = _ClusterDeflation(level, clusters)
    r = torch.randn(c.shape, dtype=torch.float64, generator=torch.Generator().manual_seed(0)) * (level.diag > 0)
    after = r - level.apply(Q(r))
    w_t = Q._project(after)[1:]
    scale = Q._project(r.abs())[1:]
    assert (w_t[:island - 1].abs() <= 1e-10 * scale[:island - 1]).all()
    assert float(Q(r)[0, 7:10, 7:10, 7:10].abs().max()) == 0.0  # the island: no correction, not a division by rounding
