"""The console command: help lists sub-commands; overrides compose; bad input is a clear error."""

import subprocess
import sys

import pytest

from microdesign.cli import discover_commands, main


def test_help_lists_subcommands(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for name in discover_commands():
        assert name in out
    assert "process" in out


def test_console_script_runs_process_with_override():
    r = subprocess.run([sys.executable, "-m", "microdesign.cli", "process", "process.inputs.line_load_N_mm=900"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "porosity" in r.stdout


def test_process_prints_config(capsys):
    assert main(["process", "--cfg", "process.inputs.line_load_N_mm=123"]) == 0
    assert "line_load_N_mm: 123" in capsys.readouterr().out


def test_bad_value_is_named_error(capsys):
    assert main(["process", "process.inputs.web_speed_m_min=0"]) == 2
    err = capsys.readouterr().err
    assert "web_speed_m_min" in err and "> 0" in err


def test_unknown_command_and_bad_override(capsys):
    assert main(["no-such-command"]) == 2
    assert main(["process", "no_such_key=1"]) == 2


def test_process_sensitivity_table(capsys):
    assert main(["process", "sensitivity.ranges={line_load_N_mm:[200,1200]}", "sensitivity.n_base_samples=64"]) == 0
    out = capsys.readouterr().out
    assert "Sobol indices" in out
    sobol = out[out.index("Sobol indices"):]
    row = next(line for line in sobol.splitlines() if line.lstrip("│ ").startswith("porosity"))
    s1, st = (float(v) for v in row.split("│")[2].split("/"))
    assert s1 == pytest.approx(1.0, abs=0.05) and st == pytest.approx(1.0, abs=0.05)  # porosity is all line load


def test_bare_argument_maps_to_positional_key(capsys, tmp_path):
    missing = tmp_path / "nowhere.h5"
    assert main(["report", str(missing)]) == 2
    err = capsys.readouterr().err
    assert "file" in err and "nowhere.h5" in err  # the bare path arrived as file=<path>
    assert main(["process", "a_bare_word"]) == 2  # commands without POSITIONAL refuse bare words
