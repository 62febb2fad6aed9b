"""The ``microdesign cell`` command: composes, runs one discharge, writes its table."""

from __future__ import annotations

import csv

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
