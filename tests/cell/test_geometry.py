"""Cell formats and jelly-roll geometry: volumes, lengths, masses, feasibility (no PyBaMM solves)."""

from __future__ import annotations

import math

import pytest
from hydra.utils import instantiate

from microdesign.cell import CellFormat, Materials, Stack
from microdesign.cell.geometry import VolumeFractions, cell_geometry, electrode_area
from microdesign.config import compose, conf_dir
from microdesign.errors import ConfigError

FORMATS = sorted(p.stem for p in (conf_dir() / "cell_format").glob("*.yaml"))
CHEN_STACK = Stack(75.6e-6, 85.2e-6, 16e-6, 12e-6, 12e-6)  # Chen2020 layer thicknesses
CHEN_FRACTIONS = VolumeFractions(0.335, 0.665, 0.25, 0.75, 0.47)


def _format(option: str) -> CellFormat:
    cfg = compose("cell", [f"cell_format@cell.cell_format={option}"])
    return instantiate(cfg.cell.cell_format)


@pytest.mark.parametrize("option", FORMATS)
def test_every_format_composes_instantiates_and_cites_every_number(option):
    fmt = _format(option)
    assert isinstance(fmt, CellFormat)
    numbers = [k for k, v in fmt.__dict__.items() if isinstance(v, float) and v > 0]
    missing = [k for k in numbers if not fmt.sources.get(k)]
    assert not missing, f"{option}: no source for {missing}"
    assert fmt.volume_L > 0 and fmt.housing_mass_kg > 0


def test_4680_can_volume_and_21700_matches_chen2020_cell_volume():
    assert _format("cyl_4680").volume_L == pytest.approx(math.pi * 0.023**2 * 0.080 * 1e3, rel=1e-12)
    assert _format("cyl_4680").volume_L == pytest.approx(0.133, abs=0.001)  # 46 x 80 mm can (docs/cell_model.md)
    assert _format("cyl_21700").volume_m3 == pytest.approx(2.42e-5, rel=0.01)  # PyBaMM Chen2020 "Cell volume [m3]"


def test_jelly_roll_length_conserves_winding_area():
    fmt = _format("cyl_4680")
    geo = electrode_area(fmt, CHEN_STACK)
    t = 2 * 75.6e-6 + 16e-6 + 2 * 85.2e-6 + 12e-6 + 2 * 12e-6
    assert geo.repeat_unit_thickness_m == pytest.approx(t, rel=1e-12)
    r_o = 0.023 - fmt.wall_thickness_m - fmt.radial_clearance_m
    r_c = fmt.core_diameter_m / 2
    assert geo.jelly_roll_length_m * t == pytest.approx(math.pi * (r_o**2 - r_c**2), rel=1e-12)
    assert geo.electrode_area_m2 == pytest.approx(2 * geo.jelly_roll_length_m * fmt.electrode_height_m, rel=1e-12)
    # the same stack wound into a 21700 gives about the LG M50 (Chen2020) area 0.065 x 1.58 m2
    geo21 = electrode_area(_format("cyl_21700"), CHEN_STACK)
    assert geo21.electrode_area_m2 == pytest.approx(0.065 * 1.58, rel=0.15)


def test_thicker_stack_gives_proportionally_less_area():
    fmt = _format("cyl_4680")
    thick = Stack(2 * 75.6e-6, 2 * 85.2e-6, 16e-6, 12e-6, 12e-6)
    a1, a2 = electrode_area(fmt, CHEN_STACK), electrode_area(fmt, thick)
    ratio = thick.repeat_unit_thickness_m / CHEN_STACK.repeat_unit_thickness_m
    assert a1.electrode_area_m2 / a2.electrode_area_m2 == pytest.approx(ratio, rel=1e-12)


def test_mass_breakdown_by_hand():
    fmt, mat = _format("cyl_4680"), Materials()
    geo = cell_geometry(fmt, CHEN_STACK, CHEN_FRACTIONS, mat)
    A = geo.electrode_area_m2
    assert geo.mass_breakdown_kg["cathode coating"] == pytest.approx(0.665 * 4750 * 75.6e-6 * A, rel=1e-12)
    assert geo.mass_breakdown_kg["positive current collector"] == pytest.approx(2700 * 16e-6 * A / 2, rel=1e-12)
    pores = (0.335 * 75.6e-6 + 0.25 * 85.2e-6 + 0.47 * 12e-6) * A
    assert geo.mass_breakdown_kg["electrolyte"] == pytest.approx(1200 * pores, rel=1e-12)
    r = 0.023
    can = math.pi * (r**2 - (r - 6e-4) ** 2) * (0.080 - 1.2e-3) * 7850 + 2 * math.pi * r**2 * 6e-4 * 7850
    assert geo.mass_breakdown_kg["housing"] == pytest.approx(can, rel=1e-12)
    assert geo.mass_kg == pytest.approx(sum(geo.mass_breakdown_kg.values()))
    # a 4680 weighs a few hundred grams (Ank et al. 2023 teardown: 355 g)
    assert 0.25 < geo.mass_kg < 0.5


def test_pouch_area_from_stack_thickness():
    fmt = _format("pouch")
    geo = electrode_area(fmt, CHEN_STACK)
    n = fmt.stack_thickness_m / CHEN_STACK.repeat_unit_thickness_m
    assert geo.n_turns == pytest.approx(n)
    assert geo.electrode_area_m2 == pytest.approx(2 * n * fmt.electrode_height_m * fmt.electrode_width_m)
    assert fmt.volume_L == pytest.approx(0.227 * 0.160 * 0.00725 * 1e3)


@pytest.mark.parametrize("option", ["cyl_4680", "pouch"])
def test_electrode_thicker_than_the_can_allows_is_a_failed_geometry(option):
    fmt = _format(option)
    huge = Stack(0.02, 0.02, 16e-6, 12e-6, 12e-6)
    geo = cell_geometry(fmt, huge, CHEN_FRACTIONS, Materials())
    assert geo.status == "failed" and "infeasible geometry" in geo.reason
    assert geo.electrode_area_m2 == 0.0


def test_bad_format_raises_config_error():
    with pytest.raises(ConfigError):
        CellFormat(name="x", kind="prismatic", outer_height_m=0.1, wall_thickness_m=1e-3, electrode_height_m=0.05,
                   housing_density_kg_m3=7850.0, outer_diameter_m=0.02)
    with pytest.raises(ConfigError):  # electrodes taller than the can
        CellFormat(name="x", kind="cylindrical", outer_height_m=0.07, wall_thickness_m=2e-4,
                   electrode_height_m=0.07, end_thickness_m=3e-4, housing_density_kg_m3=7850.0,
                   outer_diameter_m=0.021)
    with pytest.raises(ConfigError):
        CellFormat.from_config({"name": "x", "kind": "pouch", "colour": "red"})
    with pytest.raises(ConfigError):
        Stack(-1e-6, 1e-5, 1e-5, 1e-5, 1e-5)
