"""Rate-capability maps: a grid point equals plain PyBaMM, the physical trends, parallel = serial, files,
and bad grids refused before any solve."""

from __future__ import annotations

import csv

import numpy as np
import pytest
from omegaconf import OmegaConf

from microdesign.cell.pybamm_reference import plain_rate_capability
from microdesign.cell.rate_map import RateMap, RateMapGrid, prepare_cell_config, rate_map
from microdesign.config import compose
from microdesign.errors import ConfigError


def cell_config(*overrides: str) -> dict:
    cfg, _ = prepare_cell_config(OmegaConf.to_container(compose("cell", list(overrides)).cell, resolve=True), None)
    return cfg


@pytest.fixture(scope="module")
def trend_map() -> RateMap:
    grid = RateMapGrid((20.0, 30.0), (2.9, 3.4), (1.0, 2.0), 4.75)
    return rate_map(cell_config(), grid, workers=1)


def test_a_grid_point_equals_plain_pybamm():
    """Retention within 0.1 percentage points of plain PyBaMM at a point away from the base set's."""
    rates = (1.0, 2.0)
    ours = rate_map(cell_config(), RateMapGrid((30.0,), (3.0,), rates, 4.75), workers=1)
    plain = plain_rate_capability(30.0, 3.0, 4.75, rates)[1]
    assert ours.n_failed == 0
    np.testing.assert_allclose(100 * ours.arrays["retention"][0, 0], 100 * np.array(plain), atol=0.1)
    assert plain[1] < 0.9  # a point where rate matters, so the comparison is not trivial


def test_2c_retention_falls_with_mass_loading_and_press_density(trend_map):
    r2 = trend_map.arrays["retention"][:, :, 1]  # (mass loading, press density) at 2C
    assert trend_map.n_failed == 0
    assert np.all(r2[1, :] < r2[0, :])  # heavier -> thicker -> less retained
    assert np.all(r2[:, 1] < r2[:, 0])  # denser -> less porous, more tortuous -> less retained
    assert np.all(trend_map.arrays["retention"][:, :, 1] < trend_map.arrays["retention"][:, :, 0])
    # the linked parameters: thickness = ML/(PD 100), porosity = 1 - PD/CD
    np.testing.assert_allclose(trend_map.arrays["cathode_thickness_m"],
                               np.array([[20, 20], [30, 30]]) * 1e-3 / (np.array([2.9, 3.4]) * 100), rtol=1e-12)
    np.testing.assert_allclose(trend_map.arrays["porosity"][0], 1 - np.array([2.9, 3.4]) / 4.75, rtol=1e-12)


def test_parallel_workers_give_the_serial_numbers(trend_map):
    parallel = rate_map(cell_config(), trend_map.grid, workers=2)
    for name, values in trend_map.arrays.items():
        np.testing.assert_array_equal(parallel.arrays[name], values, err_msg=name)


def test_files_round_trip(trend_map, tmp_path):
    paths = trend_map.write(tmp_path, plots=True)
    assert {p.name for p in paths} == {"rate_map.h5", "rate_map.csv", "retention.png", "energy_density.png"}
    back = RateMap.read_hdf5(tmp_path / "rate_map.h5")
    assert back.grid == trend_map.grid
    for name, values in trend_map.arrays.items():
        np.testing.assert_array_equal(back.arrays[name], values, err_msg=name)
    rows = list(csv.DictReader((tmp_path / "rate_map.csv").open()))
    assert len(rows) == 2 * 2 * 2
    assert float(rows[-1]["Capacity retention vs C/10"]) == pytest.approx(trend_map.arrays["retention"][1, 1, 1])


@pytest.mark.parametrize("kwargs, parameter", [
    (dict(press_densities_g_cm3=(3.0, 4.8)), "press_density_g_cm3"),  # above the crystallographic density
    (dict(press_densities_g_cm3=(4.75,)), "press_density_g_cm3"),      # no pores at all
    (dict(mass_loadings_mg_cm2=(0.0, 20.0)), "mass_loading_mg_cm2"),
    (dict(mass_loadings_mg_cm2=(-5.0,)), "mass_loading_mg_cm2"),
    (dict(c_rates=()), "c_rates"),
    (dict(c_rates=(1.0, 1.0)), "c_rates"),
    (dict(crystallographic_density_g_cm3=0.0), "crystallographic_density_g_cm3"),
])
def test_bad_grids_are_refused(kwargs, parameter):
    good = dict(mass_loadings_mg_cm2=(20.0,), press_densities_g_cm3=(3.0,), c_rates=(1.0,),
                crystallographic_density_g_cm3=4.75)
    with pytest.raises(ConfigError) as err:
        RateMapGrid(**{**good, **kwargs})
    assert err.value.parameter == parameter


def test_crystallographic_density_sets_the_weighed_am_density():
    """A given CD changes the cell's AM density so that the cell weighs the coating the grid describes."""
    cfg, cd = prepare_cell_config(OmegaConf.to_container(compose("cell").cell, resolve=True), 4.9)
    assert cd == 4.9 and cfg["materials"]["cathode_am_density_kg_m3"] == pytest.approx(4900.0)  # Chen2020: f = 1
    _, default = prepare_cell_config(OmegaConf.to_container(compose("cell").cell, resolve=True), None)
    assert default == pytest.approx(4.75)


def test_generator_route_measures_each_press_density_once():
    """microstructure=generator: cubes at porosity 1 - PD/CD per press density (shared by every mass
    loading), characterised; the cell's thickness follows the measured fractions."""
    from microdesign.campaign.stubs import StubCharacteriser, StubGenerator
    from microdesign.cell import build_cell_model
    from microdesign.cell.rate_map import generator_structures

    cfg, cd = prepare_cell_config(OmegaConf.to_container(compose("cell").cell, resolve=True), None, "generator")
    assert cd == pytest.approx(4.2455, abs=1e-3)  # dry coating at 92.5 wt% NMC811, C65:PVDF 1:1
    grid = RateMapGrid((20.0, 30.0), (2.6, 3.0), (1.0,), cd)
    generator, calls = StubGenerator(), []
    sample = generator.sample
    generator.sample = lambda params, n, size, seed: calls.append(dict(params)) or sample(params, n, size, seed)
    structures = generator_structures(generator, StubCharacteriser(), grid, build_cell_model(OmegaConf.create(cfg)),
                                      n_cubes=2, cube_size_voxels=16)
    assert [c["porosity"] for c in calls] == pytest.approx([1 - 2.6 / cd, 1 - 3.0 / cd])
    rm = rate_map(cfg, grid, "generator", structures, workers=1)
    assert rm.n_failed == 0
    np.testing.assert_allclose(rm.arrays["porosity"], [[1 - 2.6 / cd, 1 - 3.0 / cd]] * 2, atol=0.02)
    np.testing.assert_allclose(rm.arrays["simulated_press_density_g_cm3"], [[2.6, 3.0]] * 2, rtol=0.03)
    assert rm.arrays["retention"][1, 0, 0] < rm.arrays["retention"][0, 0, 0]


def test_generator_route_refuses_a_porosity_outside_the_training_bounds_before_sampling():
    from microdesign.campaign.stubs import StubCharacteriser, StubGenerator
    from microdesign.cell.rate_map import generator_structures

    generator = StubGenerator()
    generator.training_bounds = {"am_weight_fraction": (0.88, 0.97), "porosity": (0.3, 0.5), "cbd_adhesion": (0.0, 1.0)}
    generator.sample = lambda *a, **k: pytest.fail("sampled before checking the bounds")
    grid = RateMapGrid((20.0,), (2.6, 3.0), (1.0,), 4.2455)  # 3.0 g.cm-3 -> porosity 0.293
    with pytest.raises(ConfigError) as err:
        generator_structures(generator, StubCharacteriser(), grid, model=None)
    assert err.value.parameter == "press_density_g_cm3" and err.value.value == 3.0


@pytest.mark.slow  # starts a local Ray instance (~15 s on 2 cores)
def test_ray_workers_give_the_serial_numbers():
    pytest.importorskip("ray")
    grid = RateMapGrid((20.0, 30.0), (3.0,), (2.0,), 4.75)
    serial = rate_map(cell_config(), grid, workers=1)
    on_ray = rate_map(cell_config(), grid, workers=2, executor="ray")
    assert on_ray.settings["executor"] == "ray"
    for name, values in serial.arrays.items():
        np.testing.assert_array_equal(on_ray.arrays[name], values, err_msg=name)


def test_unknown_executor_is_refused():
    with pytest.raises(ConfigError) as err:
        rate_map(cell_config(), RateMapGrid((20.0,), (3.0,), (1.0,), 4.75), executor="dask")
    assert err.value.parameter == "executor"
