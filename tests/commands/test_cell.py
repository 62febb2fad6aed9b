"""The ``microdesign cell`` command: composes, runs one discharge, writes its table."""

from __future__ import annotations

import csv

import pytest

from microdesign.cli import main


def test_cell_command_runs_one_discharge_and_writes_csv(tmp_path):
    out = tmp_path / "one.csv"
    rc = main(["cell", "mode=one", "cell.protocol.power_W=40", "design.mass_loading_mg_cm2=20", f"output={out}"])
    assert rc == 0
    rows = list(csv.DictReader(out.open()))
    assert len(rows) == 1
    assert rows[0]["Status"] == "ok"
    assert float(rows[0]["Power [W]"]) == 40.0
    # 20 mg.cm-2 of Chen2020's cathode (press density 0.665 x 4.75 g.cm-3) is 63.3 um thick
    assert abs(float(rows[0]["Positive electrode thickness [m]"]) - 20e-3 / (0.665 * 4.75 * 100)) < 1e-12
    assert float(rows[0]["Volumetric energy density [W.h.L-1]"]) > 500


def test_cell_command_rejects_bad_mode():
    assert main(["cell", "mode=sideways"]) == 2


def test_cell_command_takes_a_c_rate_as_written_and_shows_c10_and_retention(tmp_path, capsys, caplog):
    out = tmp_path / "c.csv"
    with caplog.at_level("INFO"):
        rc = main(["cell", "mode=one", "cell.protocol.c_rate=2", "design.mass_loading_mg_cm2=25",
                   "design.press_density_g_cm3=3.2", "cell.electrode_area_m2=0.5", f"output={out}"])
    assert rc == 0
    row = next(csv.DictReader(out.open()))
    assert float(row["C-rate"]) == 2.0
    q10, retention = float(row["C/10 capacity [A.h]"]), float(row["Capacity retention vs C/10"])
    assert float(row["Discharge capacity [A.h]"]) == pytest.approx(retention * q10, rel=1e-12)
    assert 0.5 < retention < 1.0
    assert float(row["Electrode area [m2]"]) == 0.5
    # the linked parameters: thickness = ML/(PD 100), porosity = 1 - PD/CD (CD 4.75 for Chen2020's NMC811)
    assert float(row["Positive electrode thickness [m]"]) == pytest.approx(25e-3 / (3.2 * 100), rel=1e-12)
    table = capsys.readouterr().out
    assert "C/10" in table and "retention" in table
    assert "sets the cathode thickness to 78.1 um" in caplog.text
    assert "porosity 0.3263" in caplog.text


def test_cell_command_refuses_a_press_density_above_the_crystallographic_density():
    assert main(["cell", "mode=one", "design.press_density_g_cm3=5.0", "design.mass_loading_mg_cm2=20"]) == 2
