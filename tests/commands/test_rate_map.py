"""The ``microdesign rate-map`` command: files and table; bad grids exit 2 before any solve."""

from __future__ import annotations

import csv

import pytest

from microdesign.cell.full_cell import CellModel
from microdesign.cli import main


def test_rate_map_command_writes_the_map(tmp_path):
    out = tmp_path / "map"
    rc = main(["rate-map", "grid.mass_loading_mg_cm2=[20,30]", "grid.press_density_g_cm3=[3.1]", "c_rates=[1,2]",
               "workers=1", f"output={out}"])
    assert rc == 0
    for name in ("rate_map.h5", "rate_map.csv", "retention.png", "energy_density.png"):
        assert (out / name).stat().st_size > 0, name
    rows = list(csv.DictReader((out / "rate_map.csv").open()))
    assert [(float(r["Mass loading [mg.cm-2]"]), float(r["C-rate"])) for r in rows] == [
        (20.0, 1.0), (20.0, 2.0), (30.0, 1.0), (30.0, 2.0)]
    assert all(r["Status"] == "ok" for r in rows)
    assert float(rows[3]["Capacity retention vs C/10"]) < float(rows[1]["Capacity retention vs C/10"])


@pytest.mark.parametrize("override", [
    "grid.press_density_g_cm3=[3.0,5.0]",   # above the crystallographic density (4.75)
    "grid.mass_loading_mg_cm2=[0,20]",
    "c_rates=[]",
    "microstructure=voxels",
    "grid.crystallographic_density_g_cm3=0.5",  # below the CBD's share: no positive AM density
])
def test_bad_grids_exit_2_before_any_solve(override, monkeypatch, tmp_path):
    def no_solve(*args, **kwargs):
        raise AssertionError("a grid point was solved")

    monkeypatch.setattr(CellModel, "sweep", no_solve)
    assert main(["rate-map", override, "workers=1", f"output={tmp_path / 'x'}"]) == 2
    assert not (tmp_path / "x").exists()
