"""Objective noise: first-order propagation of the metric CIs is exact for a linear cell response."""

from __future__ import annotations

import math

import numpy as np
import pytest

from microdesign.cell.result import CellResult
from microdesign.characterise.metrics import (
    CONDUCTIVITY_SOLID,
    PORE_PERCOLATING_FRACTION,
    POROSITY,
    SOLID_PERCOLATING_FRACTION,
    TORTUOSITY_THROUGH_PLANE,
    MetricEstimate,
    MicrostructureMetrics,
)
from microdesign.errors import ConfigError
from microdesign.objective import CellQuantity, ObjectiveValue, observations_for_model

A, B = 900.0, -40.0  # W.h.L-1 per unit porosity / per unit tortuosity factor


def _cell(m: MicrostructureMetrics) -> CellResult:
    f = 500.0 + A * m[POROSITY].mean + B * m[TORTUOSITY_THROUGH_PLANE].mean
    return CellResult(status="ok", volumetric_energy_density_Wh_L=f)


def _metrics(n=12, seed=0) -> MicrostructureMetrics:
    rng = np.random.default_rng(seed)
    eps = rng.normal(0.35, 0.01, n)
    tau = 0.35 ** -0.5 - 8.0 * (eps - 0.35) + rng.normal(0, 0.02, n)  # correlated with porosity
    return MicrostructureMetrics({POROSITY: MetricEstimate.from_values(POROSITY, eps),
                                  TORTUOSITY_THROUGH_PLANE: MetricEstimate.from_values(TORTUOSITY_THROUGH_PLANE, tau)},
                                 voxel_size_m=4e-7, cube_size_voxels=32, n_cubes=n)


def test_propagate_is_exact_for_linear_response_with_correlation():
    m = _metrics()
    v = CellQuantity(noise="propagate").evaluate(_cell(m), m, _cell)
    eps, tau = m[POROSITY].values, m[TORTUOSITY_THROUGH_PLANE].values
    exact = np.var(A * eps + B * tau, ddof=1) / eps.size  # variance of the mean of f per cube
    assert math.isclose(v.variance, exact, rel_tol=1e-6)
    assert math.isclose(v.sensitivities[POROSITY], A, rel_tol=1e-6)
    # ignoring the correlation would be wrong here (porosity and tortuosity move together)
    diag = (A * m[POROSITY].std) ** 2 / 12 + (B * m[TORTUOSITY_THROUGH_PLANE].std) ** 2 / 12
    assert abs(diag - exact) / exact > 0.1


def test_the_percolating_fractions_are_not_propagated_as_noise():
    m = _metrics()
    shares = np.array([1.0, 0.0] + [1.0] * 10)  # one blocked cube of 12: a share with a finite, positive CI
    m = MicrostructureMetrics({**m.estimates, **{k: MetricEstimate.from_values(k, shares)
                                                 for k in (PORE_PERCOLATING_FRACTION, SOLID_PERCOLATING_FRACTION)}},
                              voxel_size_m=4e-7, cube_size_voxels=32, n_cubes=12)
    calls = []
    v = CellQuantity(noise="central").evaluate(_cell(m), m, lambda x: calls.append(x) or _cell(x))
    assert set(v.sensitivities) == {POROSITY, TORTUOSITY_THROUGH_PLANE}
    assert len(calls) == 4  # two re-simulations per noisy metric, none for the shares


def test_central_and_none_and_minimize():
    m = _metrics()
    c = CellQuantity(noise="central").evaluate(_cell(m), m, _cell)
    # the CI half-width is t(0.975, n-1) x standard error, so the central mode recovers (k SE)^2
    expect = sum((k * m[key].std / math.sqrt(m[key].n)) ** 2 for k, key in
                 ((A, POROSITY), (B, TORTUOSITY_THROUGH_PLANE)))
    assert math.isclose(c.variance, expect, rel_tol=1e-6)
    n = CellQuantity(noise="none", fixed_variance=2.5, direction="minimize").evaluate(_cell(m), m, _cell)
    assert n.variance == 2.5 and n.value == -n.raw_value


def test_central_is_one_sided_where_the_lower_ci_bound_is_not_physical():
    """A solid conductivity with a cube whose solid does not span (0 S/m) can have a CI wider than its mean:
    central noise then steps up only (the cell model refuses a conductivity <= 0), and for a linear
    response still recovers (C SE)^2 for that metric."""
    C = 2000.0  # W.h.L-1 per S/m
    m = _metrics(n=4)
    sigma = MetricEstimate.from_values(CONDUCTIVITY_SOLID, np.array([0.0, 0.02, 0.03, 0.01]))
    assert sigma.mean - sigma.ci95_half_width <= 0 < sigma.mean
    m = MicrostructureMetrics({**m.estimates, CONDUCTIVITY_SOLID: sigma}, voxel_size_m=4e-7, cube_size_voxels=32,
                              n_cubes=4)

    def cell(mm):
        if mm[CONDUCTIVITY_SOLID].mean <= 0:
            raise ValueError("conductivity must be positive")
        return CellResult(status="ok", volumetric_energy_density_Wh_L=_cell(mm).volumetric_energy_density_Wh_L
                          + C * mm[CONDUCTIVITY_SOLID].mean)

    v = CellQuantity(noise="central").evaluate(cell(m), m, cell)
    assert v.noise_left_out == {} and v.sensitivities[CONDUCTIVITY_SOLID] == pytest.approx(C, rel=1e-9)
    expect = sum((k * m[key].std / math.sqrt(m[key].n)) ** 2 for k, key in
                 ((A, POROSITY), (B, TORTUOSITY_THROUGH_PLANE), (C, CONDUCTIVITY_SOLID)))
    assert v.variance == pytest.approx(expect, rel=1e-6)


def test_failed_cell_and_failed_resimulation():
    m = _metrics()
    bad = CellQuantity().evaluate(CellResult.failed("cut-off at t = 0"), m, _cell)
    assert bad.status == "failed" and "cut-off" in bad.reason

    def flaky(mm):
        if mm[TORTUOSITY_THROUGH_PLANE].mean != m[TORTUOSITY_THROUGH_PLANE].mean:
            raise RuntimeError("solver failed")
        return _cell(mm)

    v = CellQuantity().evaluate(_cell(m), m, flaky)
    assert v.ok and set(v.sensitivities) == {POROSITY}  # the failing metric is left out, no exception
    # ... and the record says which metric and why, for both steps tried
    assert set(v.noise_left_out) == {TORTUOSITY_THROUGH_PLANE}
    assert v.noise_left_out[TORTUOSITY_THROUGH_PLANE].count("RuntimeError: solver failed") == 2
    # the variance is then porosity's share only: A^2 s_eps^2
    e = m[POROSITY]
    assert v.variance == pytest.approx(A ** 2 * e.std ** 2 / e.n, rel=1e-9)

    def failed_cell(mm):  # a re-simulation that returns a failed result (no exception)
        if mm[POROSITY].mean != m[POROSITY].mean:
            return CellResult.failed("cut-off at t = 0")
        return _cell(mm)

    for mode in ("propagate", "central"):
        v = CellQuantity(noise=mode).evaluate(_cell(m), m, failed_cell)
        assert v.ok and set(v.noise_left_out) == {POROSITY} and "cut-off at t = 0" in v.noise_left_out[POROSITY]
        assert set(v.sensitivities) == {TORTUOSITY_THROUGH_PLANE}
    assert CellQuantity().evaluate(_cell(m), m, _cell).noise_left_out == {}


def test_vector_objective_records_a_failed_resimulation():
    from microdesign.objective import CellQuantities

    m = _metrics()

    def two(mm):
        if mm[TORTUOSITY_THROUGH_PLANE].mean != m[TORTUOSITY_THROUGH_PLANE].mean:
            raise RuntimeError("solver failed")
        c = _cell(mm)
        return CellResult(status="ok", volumetric_energy_density_Wh_L=c.volumetric_energy_density_Wh_L,
                          specific_energy_Wh_kg=0.5 * c.volumetric_energy_density_Wh_L)

    obj = CellQuantities([{"quantity": "volumetric_energy_density_Wh_L"}, {"quantity": "specific_energy_Wh_kg"}])
    v = obj.evaluate(two(m), m, two)
    assert v.ok and set(v.noise_left_out) == {TORTUOSITY_THROUGH_PLANE}
    e = m[POROSITY]
    assert v.variance == pytest.approx(A ** 2 * e.std ** 2 / e.n, rel=1e-9)  # objective 0 from porosity only


def test_observations_for_model_policies():
    vals = [ObjectiveValue("ok", 10.0, 10.0, 1.0), ObjectiveValue.failed("x"), ObjectiveValue("ok", 20.0, 20.0, 3.0)]
    mask, Y, V = observations_for_model(vals, "exclude")
    assert mask.tolist() == [True, False, True] and Y.tolist() == [10.0, 20.0]
    mask, Y, V = observations_for_model(vals, "penalise")
    assert mask.all() and Y.tolist() == [10.0, 5.0, 20.0] and V[1] == 2.0
    _, Y, _ = observations_for_model(vals, "penalise", penalty=-1.0)
    assert Y[1] == -1.0
    # a trial whose noise lost a metric is not trusted as precise: it gets the largest variance observed
    partial = ObjectiveValue("ok", 15.0, 15.0, 0.01, noise_left_out={POROSITY: "re-simulation raised E: x"})
    _, _, V = observations_for_model(vals + [partial], "exclude")
    assert V.tolist() == [1.0, 3.0, 3.0]
    with pytest.raises(ConfigError):
        observations_for_model(vals, "ignore")
    with pytest.raises(ConfigError, match="objective.metrics"):
        CellQuantity(metrics=["Colour"]).check_quantity()


def test_multi_objective_observations_distrust_a_partial_noise():
    from microdesign.objective import multi_objective_observations
    from microdesign.storage import TrialRecord

    def trial(i, v0, v1, left_out=None):
        sens = {"objective[0] value": 1.0 + i, "objective[0] raw value": 1.0 + i, "objective[0] variance": v0,
                "objective[1] value": 2.0 - i, "objective[1] raw value": 2.0 - i, "objective[1] variance": v1}
        return TrialRecord(index=i, batch=i, status="completed", method="sobol", inputs={"a": 0.1 * i}, seed=i,
                           objective=ObjectiveValue("ok", 1.0 + i, 1.0 + i, v0, None, sens, left_out or {}))

    trials = [trial(0, 0.5, 4.0), trial(1, 2.0, 1.0), trial(2, 0.1, 0.2, {POROSITY: "re-simulation raised E: x"})]
    X, Y, V, idx = multi_objective_observations(trials, ["a"], 2)
    assert idx == [0, 1, 2] and Y[:, 1].tolist() == [2.0, 1.0, 0.0]
    assert V.tolist() == [[0.5, 4.0], [2.0, 1.0], [2.0, 4.0]]
