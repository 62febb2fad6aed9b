"""Estimators of the pore tortuosity factor over cubes: the mean of τ and the transport-averaged
mean(ε)/mean(ε/τ) with its delta-method CI (Cochran 1977, ratio estimator)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from microdesign.characterise import Characteriser, MgcgSolver
from microdesign.characterise import metrics as M
from microdesign.characterise.characteriser import TAU_ESTIMATORS, upgrade_flat_config
from microdesign.characterise.testing import random_three_phase
from microdesign.errors import ConfigError
from microdesign.phases import ACTIVE_MATERIAL

DX = 0.4e-6
TAU, TAU_IP, EPS = M.TORTUOSITY_THROUGH_PLANE, M.TORTUOSITY_IN_PLANE, M.POROSITY


def _values(eps, tau, tau_ip=None):
    """Per-cube values as ``Characteriser.measure`` returns them (NaN τ where the pore network is blocked)."""
    eps, tau = np.asarray(eps, float), np.asarray(tau, float)
    out = {EPS: eps, M.AM_VOLUME_FRACTION: 0.9 - eps, M.PORE_PERCOLATING_FRACTION: np.isfinite(tau).astype(float),
           TAU: tau}
    if tau_ip is not None:
        out[TAU_IP] = np.asarray(tau_ip, float)
    return out


def _cochran_half_width(eps, tau):
    """Cochran (1977) eq. 6.13, f = 0: v(R) = sum (ε_i - R y_i)^2 / ((n - 1) n ȳ^2), y = ε/τ; t quantile."""
    y = eps / tau
    r = eps.mean() / y.mean()
    n = eps.size
    v = np.sum((eps - r * y) ** 2) / ((n - 1) * n * y.mean() ** 2)
    return r, stats.t.ppf(0.975, n - 1) * np.sqrt(v)


# ------------------------------------------------------------------------------------ analytical
def test_transport_averaged_tau_of_a_hand_made_cube_set():
    # cubes of porosity 0.3, 0.5, 0.4 with tau 3, 1.5, 2 and one blocked cube (eps 0.2, tau NaN)
    values = _values([0.3, 0.5, 0.4, 0.2], [3.0, 1.5, 2.0, np.nan], tau_ip=[2.0, np.nan, 4.0, 1.0])
    mean = Characteriser.estimates(values)
    ta = Characteriser.estimates(values, "transport_averaged")
    # mean of tau over the three percolating cubes
    assert mean[TAU].mean == pytest.approx(6.5 / 3) and mean[TAU].estimator == "mean"
    # mean(eps) / mean(eps / tau) = 0.4 / ((0.1 + 1/3 + 0.2) / 3) = 1.2 / 0.6333...
    assert ta[TAU].mean == pytest.approx(1.2 / (0.1 + 1 / 3 + 0.2), rel=1e-14)
    assert ta[TAU].estimator == "transport_averaged"
    # the per-cube tau (percolating cubes) and their porosities are kept
    np.testing.assert_array_equal(ta[TAU].values, [3.0, 1.5, 2.0])
    np.testing.assert_array_equal(ta[TAU].weights, [0.3, 0.5, 0.4])
    # the in-plane factor: the same estimator over the cubes that percolate in-plane (eps 0.3, 0.4, 0.2)
    assert ta[TAU_IP].mean == pytest.approx(0.9 / (0.15 + 0.1 + 0.2), rel=1e-14)
    np.testing.assert_array_equal(ta[TAU_IP].weights, [0.3, 0.4, 0.2])
    # every other metric is the same sample mean under either estimator
    for k in (EPS, M.AM_VOLUME_FRACTION, M.PORE_PERCOLATING_FRACTION):
        assert ta[k].mean == mean[k].mean and ta[k].ci95_half_width == mean[k].ci95_half_width
    # the CI of the ratio: Cochran's formula
    r, half = _cochran_half_width(np.array([0.3, 0.5, 0.4]), np.array([3.0, 1.5, 2.0]))
    assert ta[TAU].ci95_half_width == pytest.approx(half, rel=1e-12) and ta[TAU].mean == pytest.approx(r)
    assert ta[TAU].std / np.sqrt(3) == pytest.approx(half / stats.t.ppf(0.975, 2), rel=1e-12)


def test_equal_porosities_give_the_harmonic_mean_and_equal_tau_a_zero_ci():
    tau = np.array([1.5, 2.0, 6.0, 3.0])
    e = M.MetricEstimate.transport_averaged(TAU, tau, np.full(4, 0.35))
    assert e.mean == pytest.approx(stats.hmean(tau), rel=1e-14)
    assert e.mean < tau.mean()  # a nearly blocked cube (tau 6) weighs its transport, not its tau
    same = M.MetricEstimate.transport_averaged(TAU, np.full(5, 2.5), [0.2, 0.3, 0.4, 0.35, 0.3])
    assert same.mean == pytest.approx(2.5, rel=1e-14) and same.ci95_half_width == pytest.approx(0.0, abs=1e-12)
    assert same.relative_ci95 == pytest.approx(0.0, abs=1e-12)
    one = M.MetricEstimate.transport_averaged(TAU, [2.0], [0.3])
    assert one.mean == 2.0 and one.ci95_half_width == float("inf")
    with pytest.raises(ValueError):
        M.MetricEstimate.transport_averaged(TAU, [2.0, 0.0], [0.3, 0.3])
    with pytest.raises(ValueError):
        M.MetricEstimate.transport_averaged(TAU, [2.0, 3.0], [0.3])


def test_delta_method_ci_matches_the_brute_force_spread_and_covers_95_percent():
    """Many cube sets of a known population: the spread of the estimate over the sets is the delta-method
    standard error, and the 95 % CI covers the population value (mean(ε)/mean(ε/τ) of 10^6 cubes)."""
    rng = np.random.default_rng(7)

    def draw(size):
        eps = rng.uniform(0.25, 0.45, size)
        tau = (1.2 + 2.0 * (0.45 - eps) / 0.2) * rng.lognormal(0.0, 0.35, size)  # τ rises as ε falls, skewed
        return eps, tau

    e_pop, t_pop = draw(1_000_000)
    r_pop = e_pop.mean() / np.mean(e_pop / t_pop)
    n, reps = 40, 1500
    est = [M.MetricEstimate.transport_averaged(TAU, t, e) for e, t in (draw(n) for _ in range(reps))]
    means = np.array([x.mean for x in est])
    se = np.array([x.std / np.sqrt(n) for x in est])
    assert np.std(means, ddof=1) == pytest.approx(np.mean(se), rel=0.08)
    covered = np.mean([abs(x.mean - r_pop) <= x.ci95_half_width for x in est])
    assert 0.93 <= covered <= 0.97


# ------------------------------------------------------------------------- storage and noise
def _metrics(tau_estimator: str) -> M.MicrostructureMetrics:
    values = _values([0.30, 0.42, 0.38, 0.35, 0.33], [3.1, 1.6, 2.0, 8.0, 2.4])
    return M.MicrostructureMetrics(Characteriser.estimates(values, tau_estimator), DX, 48, 5, "cap_reached")


def test_storage_round_trip_keeps_the_estimate_and_does_not_recompute_it(tmp_path):
    from microdesign.storage import CampaignStore, TrialRecord

    m = _metrics("transport_averaged")
    e = m[TAU]
    assert e.mean != pytest.approx(e.values.mean())  # the estimate is not the mean of the stored values
    back = M.MicrostructureMetrics.from_attrs(m.to_attrs())[TAU]
    space = {"names": ["a"], "units": ["1"], "lower": [0.0], "upper": [1.0], "fixed": {}}
    path = tmp_path / "c.h5"
    with CampaignStore(path, writer=True) as s:
        s.create("a: 1\n", "0", 0, space, {"name": "E", "unit": "W.h.L-1", "direction": "maximize"})
        s.write_trials([TrialRecord(index=0, batch=0, status="completed", method="sobol", inputs={"a": 0.5}, seed=1,
                                    metrics=m)])
    stored = CampaignStore(path).load()[1][0].metrics[TAU]
    for got in (back, stored):
        assert got.estimator == "transport_averaged"
        assert (got.mean, got.std, got.ci95_half_width) == (e.mean, e.std, e.ci95_half_width)
        np.testing.assert_array_equal(got.values, e.values)
        np.testing.assert_array_equal(got.weights, e.weights)
    # a dataset written before the estimator was recorded (no estimator attribute) reads as a mean
    attrs = _metrics("mean").to_attrs()
    values, a = attrs[TAU]
    assert "estimator" not in a and "weights" not in a  # a mean is stored as before
    old = M.MicrostructureMetrics.from_attrs(attrs)[TAU]
    assert old.estimator == "mean" and old.weights is None and old.mean == pytest.approx(values.mean())


def test_objective_noise_uses_the_ratio_estimates_standard_error_and_moves_it_exactly():
    from microdesign.objective import noise

    m = _metrics("transport_averaged")
    e = m[TAU]
    # the covariance of the estimate alone is its delta-method variance, (CI / t)^2
    var = noise.mean_covariance(m, [TAU])[0, 0]
    assert var == pytest.approx((e.ci95_half_width / stats.t.ppf(0.975, e.n - 1)) ** 2, rel=1e-12)
    assert e.linearised_values().mean() == pytest.approx(e.mean, rel=1e-12)
    # a perturbed estimate (a noise step, a tolerance drift) recomputes to the new value from its cubes
    p = noise.perturbed(m, TAU, 1.1 * e.mean)[TAU]
    assert p.mean == pytest.approx(1.1 * e.mean)
    assert np.mean(p.weights) / np.mean(p.weights / p.values) == pytest.approx(p.mean, rel=1e-12)
    # the mean of tau is shifted as before
    q = noise.perturbed(_metrics("mean"), TAU, 3.0)[TAU]
    assert q.mean == 3.0 and q.values.mean() == pytest.approx(3.0)


# -------------------------------------------------------------------------------- characteriser
def _char(adaptive: dict | None = None, **kw) -> Characteriser:
    return Characteriser(MgcgSolver(threads=1), adaptive={"min_cubes": 2, **(adaptive or {})}, **kw)


def test_the_characteriser_reports_the_chosen_estimator_on_the_same_cube_values():
    cubes = [random_three_phase(16, porosity=0.45, cbd_fraction=0.1, seed=s) for s in (1, 2, 3, 4)]
    cubes[1][8] = ACTIVE_MATERIAL  # a blocked pore network: left out of both estimators
    cubes = np.stack(cubes)
    a = _char(min_percolating_fraction=0.5).characterise(cubes, DX)
    b = _char(min_percolating_fraction=0.5, tau_estimator="transport_averaged").characterise(cubes, DX)
    assert a.ok and b.ok, (a.reason, b.reason)
    np.testing.assert_array_equal(a[TAU].values, b[TAU].values)
    eps = a[EPS].values[[0, 2, 3]]
    assert b[TAU].mean == pytest.approx(eps.mean() / np.mean(eps / a[TAU].values), rel=1e-12)
    assert a[TAU].mean == pytest.approx(a[TAU].values.mean(), rel=1e-12)
    assert {k: e.mean for k, e in a.estimates.items() if k != TAU} == \
        {k: e.mean for k, e in b.estimates.items() if k != TAU}


def test_adaptive_sampling_stops_on_the_estimators_ci():
    """The same cubes in the same order: a CI target between the two estimators' relative CIs after the
    first batch stops the estimator whose CI meets it and lets the other draw more cubes."""
    pool = np.stack([random_three_phase(16, porosity=p, cbd_fraction=0.1, seed=s)
                     for s, p in enumerate((0.5, 0.35, 0.45, 0.4, 0.48, 0.42, 0.5, 0.45))])

    def source():
        taken = []

        def sample(n: int, seed: int) -> np.ndarray:
            out = pool[len(taken):len(taken) + n]
            taken.extend(range(n))
            return out
        return sample

    values, reason = _char().measure(pool[:4], DX)
    assert reason is None
    rel = {k: Characteriser.estimates(values, k)[TAU].relative_ci95 for k in TAU_ESTIMATORS}
    assert rel["mean"] != pytest.approx(rel["transport_averaged"], rel=0.05)
    target = float(np.sqrt(rel["mean"] * rel["transport_averaged"]))
    adaptive = {"min_cubes": 4, "batch_cubes": 4, "max_cubes": 8, "target_relative_ci": target, "ci_metrics": [TAU]}
    res = {k: _char(tau_estimator=k, adaptive=adaptive).characterise_adaptive(source(), DX) for k in TAU_ESTIMATORS}
    tighter = min(rel, key=rel.get)
    assert res[tighter].n_cubes == 4 and res[next(k for k in TAU_ESTIMATORS if k != tighter)].n_cubes == 8
    m = res["transport_averaged"]
    r, half = _cochran_half_width(m[EPS].values, m[TAU].values)
    assert m[TAU].mean == pytest.approx(r, rel=1e-12) and m[TAU].ci95_half_width == pytest.approx(half, rel=1e-12)


# ------------------------------------------------------------------------------------ settings
def test_a_bad_estimator_is_refused_before_any_work_and_the_class_default_is_the_mean():
    assert Characteriser().tau_estimator == "mean" and TAU_ESTIMATORS == ("mean", "transport_averaged")
    for bad in ("median", "Mean", None, 1):
        with pytest.raises(ConfigError, match="tau_estimator"):
            _char(tau_estimator=bad)
    with pytest.raises(ConfigError, match="tau_estimator"):
        Characteriser.estimates(_values([0.3], [2.0]), "harmonic")
    with pytest.raises(ConfigError):  # the ratio needs the cubes' porosities
        Characteriser.estimates({TAU: np.array([2.0, 3.0])}, "transport_averaged")


def test_configs_without_the_key_keep_the_mean_and_the_key_is_part_of_the_error_table_settings():
    from hydra.utils import instantiate
    from omegaconf import OmegaConf

    from microdesign.analysis.reference_error import evaluation_settings, same_settings
    from microdesign.config import compose

    shipped = compose("characterise", ["characterise=cpu"]).characterise
    assert shipped.tau_estimator in TAU_ESTIMATORS
    # a characterise node of an older campaign file (no tau_estimator, flat or nested) keeps the mean
    node = OmegaConf.to_container(shipped)
    node.pop("tau_estimator")
    assert instantiate(OmegaConf.create(node)).tau_estimator == "mean"
    flat = {"_target_": "microdesign.characterise.Characteriser", "solver": "mgcg", "rtol": 1e-4, "max_cubes": 8}
    assert "tau_estimator" not in upgrade_flat_config(flat)
    assert instantiate(OmegaConf.create(upgrade_flat_config(flat))).tau_estimator == "mean"
    # the estimator identifies a row of the error table; a row measured before the key existed was the mean
    cfg = compose("campaign", [])
    ta = evaluation_settings(compose("campaign", ["characterise.tau_estimator=transport_averaged"]))
    mean = evaluation_settings(compose("campaign", ["characterise.tau_estimator=mean"]))
    assert ta["tau_estimator"] == "transport_averaged" and mean["tau_estimator"] == "mean"
    assert not same_settings(ta, mean)
    older = {k: v for k, v in mean.items() if k != "tau_estimator"}
    assert same_settings(older, mean) and not same_settings(older, ta)
    stored = OmegaConf.to_container(cfg, resolve=True)
    stored["characterise"].pop("tau_estimator")
    assert evaluation_settings(stored)["tau_estimator"] == "mean"
