"""Case-study stage adapters, vector objective and multi-objective proposer: physics and round trips."""

from __future__ import annotations

import math

import numpy as np
import pytest

from microdesign.objective.vector import CellQuantities, vector_of
from microdesign.case_studies.stages import CachedCharacteriser, MultiPowerCellModel, SyntheticLineGenerator, power_key
from microdesign.characterise.metrics import (
    AM_VOLUME_FRACTION,
    CBD_VOLUME_FRACTION,
    CONDUCTIVITY_SOLID,
    POROSITY,
    SSA_AM_CBD,
    SSA_AM_PORE,
    TORTUOSITY_THROUGH_PLANE,
    MetricEstimate,
    MicrostructureMetrics,
)
from microdesign.errors import ConfigError
from microdesign.design import DesignSpace, Parameter
from microdesign.optim.multi_objective import HypervolumeProposer, hypervolume, pareto_mask


def test_synthetic_line_generator_fractions_and_seeds():
    gen = SyntheticLineGenerator(voxel_size_m=8e-7)
    p = {"am_weight_fraction": 0.92, "porosity": 0.4, "cbd_adhesion": 0.5}
    a = gen.sample(p, n=2, size_voxels=20, seed=3)
    assert a.shape == (2, 20, 20, 20) and a.dtype == np.uint8 and set(np.unique(a)) <= {0, 1, 2}
    # the line hits the porosity of the design to within one voxel per cube
    assert np.allclose((a == 0).mean(axis=(1, 2, 3)), 0.4, atol=2 / 20**3)
    assert not np.array_equal(a[0], a[1])                       # independent cubes
    assert np.array_equal(a, gen.sample(p, n=2, size_voxels=20, seed=3))  # same seed, same cubes
    with pytest.raises(ConfigError):
        SyntheticLineGenerator(voxel_size_m=-1.0)


def _metrics(eps=0.35, x_am=0.55, tau=1.8, sigma=5.0, ssa=4.0e5, n=4, spread=0.0):
    vals = {POROSITY: eps, AM_VOLUME_FRACTION: x_am, CBD_VOLUME_FRACTION: 1 - eps - x_am,
            TORTUOSITY_THROUGH_PLANE: tau, CONDUCTIVITY_SOLID: sigma, SSA_AM_PORE: ssa, SSA_AM_CBD: 0.3 * ssa}
    rng = np.random.default_rng(0)
    est = {k: MetricEstimate.from_values(k, v * (1 + spread * rng.standard_normal(n))) for k, v in vals.items()}
    return MicrostructureMetrics(estimates=est, voxel_size_m=8e-7, cube_size_voxels=32, n_cubes=n,
                                 stop_reason="fixed_count")


def test_cached_characteriser_equals_uncached_and_hits(tmp_path):
    from microdesign.characterise import Characteriser, MgcgSolver

    cubes = SyntheticLineGenerator(voxel_size_m=8e-7).sample(
        {"am_weight_fraction": 0.9, "porosity": 0.45, "cbd_adhesion": 0.5}, n=2, size_voxels=16, seed=1)
    plain = Characteriser().characterise(cubes, 8e-7)
    cached = CachedCharacteriser(cache_dir=tmp_path)
    first = cached.characterise(cubes, 8e-7)
    again = CachedCharacteriser(cache_dir=tmp_path, solver=MgcgSolver(threads=1))  # a new process sharing the memo
    assert again._settings == cached._settings  # the key ignores the threads (no effect on the values)
    second = again.characterise(cubes[::-1].copy(), 8e-7)
    assert first.ok and second.ok and again.hits == 2 and again.misses == 0
    for k, e in plain.estimates.items():
        assert first.estimates[k].mean == pytest.approx(e.mean, rel=1e-12)
        assert second.estimates[k].mean == pytest.approx(e.mean, rel=1e-12)
    # another solver setting is another key
    other = CachedCharacteriser(cache_dir=tmp_path, solver=MgcgSolver(conv_crit=0.02))
    other.measure(cubes[:1], 8e-7)
    assert other.misses == 1


def test_memo_entries_of_another_format_are_recomputed(tmp_path, monkeypatch):
    from microdesign.case_studies import stages
    from microdesign.characterise import metrics as M

    cubes = SyntheticLineGenerator(voxel_size_m=8e-7).sample(
        {"am_weight_fraction": 0.9, "porosity": 0.45, "cbd_adhesion": 0.5}, n=1, size_voxels=16, seed=1)
    values, _ = CachedCharacteriser(cache_dir=tmp_path).measure(cubes, 8e-7)
    assert set(M.PERCOLATING_FRACTIONS) <= set(values)  # what the current format stores
    monkeypatch.setattr(stages, "MEMO_FORMAT", stages.MEMO_FORMAT - 1)
    older = CachedCharacteriser(cache_dir=tmp_path)
    older.measure(cubes, 8e-7)
    assert older.hits == 0 and older.misses == 1


def test_multi_power_cell_matches_single_power_runs():
    from microdesign.cell import CellModel

    from microdesign.config import compose
    from omegaconf import OmegaConf

    node = OmegaConf.to_container(compose("campaign", []).cell, resolve=True)
    node.pop("_target_")
    multi = MultiPowerCellModel(powers_W=[10.0, 150.0], **node)
    single = CellModel(**node)
    m, L = _metrics(), 70e-6
    r = multi.simulate(m, L)
    r10 = single.simulate(m, L, {"kind": "constant_power", "power_W": 10.0})
    r150 = single.simulate(m, L, {"kind": "constant_power", "power_W": 150.0})
    assert r.ok and r.power_W == 10.0
    assert r.volumetric_energy_density_Wh_L == pytest.approx(r10.volumetric_energy_density_Wh_L, rel=1e-9)
    k150 = power_key("volumetric_energy_density_Wh_L", 150.0)
    assert k150 == "Volumetric energy density at 150 W [W.h.L-1]"
    assert r.extra[k150] == pytest.approx(r150.volumetric_energy_density_Wh_L, rel=1e-9)
    # a higher power delivers less energy (polarisation), and the 10 W energy is a sane 4680 number
    assert r.extra[k150] < r.volumetric_energy_density_Wh_L
    assert 300 < r.volumetric_energy_density_Wh_L < 1000
    with pytest.raises(ConfigError):
        MultiPowerCellModel(powers_W=[-1.0], **node)


class _LinearCell:
    """A cell whose two outputs are linear in porosity and tortuosity: f = A m (for the noise law)."""

    A = np.array([[100.0, -20.0], [300.0, -80.0]])  # rows: objectives, cols: (porosity, tortuosity)

    def __call__(self, metrics):
        from microdesign.cell.result import CellResult

        mm = metrics.means()
        x = np.array([mm[POROSITY], mm[TORTUOSITY_THROUGH_PLANE]])
        f = self.A @ x
        return CellResult(status="ok", volumetric_energy_density_Wh_L=float(f[0]),
                          extra={"Volumetric energy density at 200 W [W.h.L-1]": float(f[1])})


def test_vector_objective_propagates_correlated_noise_exactly_for_a_linear_cell(tmp_path):
    m = _metrics(spread=0.05, n=6)
    cell = _LinearCell()
    obj = CellQuantities([{"quantity": "volumetric_energy_density_Wh_L"},
                          {"quantity": "Volumetric energy density at 200 W [W.h.L-1]", "direction": "minimize"}],
                         metrics=[POROSITY, TORTUOSITY_THROUGH_PLANE])
    v = obj.evaluate(cell(m), m, resimulate=cell)
    vals = np.stack([m.estimates[POROSITY].values, m.estimates[TORTUOSITY_THROUGH_PLANE].values])
    C = np.cov(vals, ddof=1) / 6
    expected = np.einsum("mk,kl,ml->m", cell.A, C, cell.A)  # GUM: Var f_j = a_j^T C a_j
    values, raw, var = vector_of(v, 2)
    assert np.allclose(var, expected, rtol=1e-6)
    assert values[1] == pytest.approx(-raw[1]) and v.value == pytest.approx(raw[0])
    # the vector survives the campaign file
    from microdesign.storage import CampaignStore, TrialRecord

    store = CampaignStore(tmp_path / "c.h5", writer=True)
    store.create("{}", "0", 0, {"names": ["porosity"], "lower": [0.2], "upper": [0.5]},
                 {"name": obj.name, "unit": "", "direction": "maximize"})
    store.write_trials([TrialRecord(0, 0, "completed", "sobol", {"porosity": 0.3}, 1, objective=v)])
    store.close()
    _, trials = CampaignStore(tmp_path / "c.h5").load()
    back = vector_of(trials[0].objective, 2)
    assert all(np.allclose(a, b) for a, b in zip(back, (values, raw, var)))
    # a failed cell is a failed objective, not an exception
    from microdesign.cell.result import CellResult

    assert not obj.evaluate(CellResult.failed("cut-off at t = 0"), m).ok


def test_pareto_mask_and_hypervolume_analytic():
    Y = np.array([[3.0, 1.0], [1.0, 3.0], [2.0, 2.0], [1.0, 1.0]])
    assert pareto_mask(Y).tolist() == [True, True, True, False]
    # staircase over the origin: x in [0,1] up to 3, [1,2] up to 2, [2,3] up to 1 -> 3 + 2 + 1
    assert hypervolume(Y, [0.0, 0.0]) == pytest.approx(6.0)
    assert hypervolume(Y[:1], [0.0, 0.0]) == pytest.approx(3.0)
    assert hypervolume(Y, [5.0, 5.0]) == 0.0


def test_hypervolume_proposer_sobol_then_qlognehvi_in_bounds():
    space = DesignSpace([Parameter("a", "1", 0.0, 1.0), Parameter("b", "1", 10.0, 20.0)])
    prop = HypervolumeProposer(space, ref_point=[-1.0, -1.0], n_initial=4, num_restarts=2, raw_samples=32,
                               mc_samples=32, maxiter=20)
    first = prop.propose(None, None, None, n_proposed=0, q=4, seed=0)
    assert first.method == "sobol" and first.X.shape == (4, 2)
    X = first.X
    u = (X[:, 1] - 10) / 10
    Y = np.stack([1 - X[:, 0] ** 2 - 0.1 * u, 1 - (1 - X[:, 0]) ** 2 - 0.1 * u], axis=1)  # conflicting objectives
    nxt = prop.propose(X, Y, np.full_like(Y, 1e-4), n_proposed=4, q=1, seed=1)
    assert nxt.method == "qLogNEHVI" and nxt.X.shape == (1, 2)
    assert np.all(nxt.X[:, 0] >= 0) and np.all(nxt.X[:, 0] <= 1) and np.all(nxt.X[:, 1] >= 10) and np.all(nxt.X[:, 1] <= 20)
    with pytest.raises(ConfigError):
        HypervolumeProposer(space, ref_point=[0.0])
    with pytest.raises(ConfigError):
        prop.propose(X, Y[:, :1], None, n_proposed=4, q=1, seed=0)


def test_half_cell_capacity_per_gram_rewards_porosity_at_fixed_loading():
    """The CS1 physics: at a fixed mass loading and 3C, capacity per gram of AM is higher for a porous
    electrode (porosity 0.50, thicker) than for a dense one (0.25) - the degenerate direction of Kench
    et al. 2024 in porosity."""
    from microdesign.cell import HalfCellModel
    from microdesign.config import compose
    from omegaconf import OmegaConf

    node = OmegaConf.to_container(compose("campaign", ["experiment=cs1_half_cell"]).cell, resolve=True)
    node.pop("_target_")
    node["c_rate"] = 3.0
    cell = HalfCellModel(**node)

    def capacity(eps, x_am):
        m = _metrics(eps=eps, x_am=x_am, tau=eps ** -0.5, ssa=3 * x_am / 5e-6)
        th = cell.cathode_thickness_from_mass_loading(m, 20.0)
        r = cell.simulate(m, th)
        assert r.ok, r.reason
        return r.cathode_capacity_mAh_g_am

    dense, porous = capacity(0.25, 0.62), capacity(0.50, 0.41)
    assert porous > dense
    assert math.isfinite(dense) and dense > 0
