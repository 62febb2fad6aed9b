"""The trace arithmetic of scripts/benchmark_multi_fidelity_real.py on synthetic runs: what a campaign
holds (the best value evaluated at the highest level), the CPU until it is within 1 % of the best known
value, and the ratio text (docs/benchmarks/multi_fidelity_real.md)."""

from __future__ import annotations

import math

import numpy as np
import pytest


@pytest.fixture(scope="module")
def bench(load_script):
    return load_script("benchmark_multi_fidelity_real")


def _run(*evals):
    """(cumulative CPU s, fidelity, status, value) per evaluation -> a run record as the script writes it."""
    return {"evaluations": [{"cpu_s": c, "fidelity": f, "status": st, "value": v, "eval_cpu_s": 1.0}
                            for c, f, st, v in evals]}


def test_low_level_values_and_failures_are_not_held(bench):
    run = _run((3, 0.5, "completed", 990.0),      # low level: biased, not held however good
               (25, 1.0, "completed", 900.0),
               (28, 0.5, "completed", 1000.0),
               (50, 1.0, "failed", None),           # a failure costs CPU, holds nothing
               (75, 1.0, "completed", 995.0))
    cpu, held = bench.held_curve(run)
    np.testing.assert_array_equal(cpu, [3, 25, 28, 50, 75])
    assert math.isnan(held[0]) and list(held[1:]) == [900.0, 900.0, 900.0, 995.0]
    # within 1 % of 1000: 990 is the threshold; only the high-level 995 at 75 CPU s gets there
    assert bench.cpu_to_target(run, 1000.0) == 75.0
    assert bench.cpu_to_target(run, 905.0) == 25.0   # 900 is within 1 % of 905: held from 25 s
    assert bench.cpu_to_target(run, 910.0) == 75.0   # 900 is not within 1 % of 910: 995 at 75 s
    assert bench.cpu_to_target(_run((10, 0.5, "completed", 1000.0)), 1000.0) == math.inf


def test_ratio_text_names_the_runs_that_never_got_there(bench):
    assert bench.ratio_text(300.0, 100.0) == "300 / 100 s = **3.00x**"
    assert bench.ratio_text(300.0, 100.0, show=False) == "3.00"
    assert bench.ratio_text(math.inf, 100.0, show=False) == "multi-fidelity only reached it"
    assert bench.ratio_text(100.0, math.inf, show=False) == "only the other reached it"
    assert bench.ratio_text(math.inf, math.inf, show=False) == "neither reached it"


def test_level_sizes_parse(bench):
    assert bench.parse_level("4x80") == (4, 80) and bench.parse_level("2X48") == (2, 48)


def test_previous_folders_are_labelled_and_count_for_the_best_known_value(bench, tmp_path):
    """Runs kept in --previous folders are listed under the first line of their settings.txt (else the folder
    name) and their high-level evaluations count for the best known value; a missing folder or two folders
    with the same settings text stop the script."""
    import json

    a, b = tmp_path / "a", tmp_path / "old_proposer"
    a.mkdir()
    b.mkdir()
    (a / "settings.txt").write_text("slower proposals\nmore text\n")
    run = {**_run((10, 1.0, "completed", 995.0), (20, 1.0, "completed", 1000.0), (25, 0.5, "completed", 1100.0)),
           "arm": "multi-fidelity", "seed": 0}
    (a / "multi-fidelity-0.json").write_text(json.dumps(run))
    (b / "qLogNEI-1.json").write_text(json.dumps({**_run((30, 1.0, "completed", 980.0)), "arm": "qLogNEI", "seed": 1}))
    (b / "notes.json").write_text(json.dumps({"other": 1}))  # not a run: ignored
    prev = bench.load_previous([a, b])
    assert sorted(prev) == [("old_proposer", "qLogNEI", 1), ("slower proposals", "multi-fidelity", 0)]
    current = [{**_run((5, 1.0, "completed", 990.0)), "arm": "qLogNEI", "seed": 0}]
    # the low-level 1100 does not count; the earlier run's 1000 beats the current runs' 990
    assert bench.best_known_value(current, prev) == (1000.0, "multi-fidelity seed 0 (settings: slower proposals)")
    assert bench.best_known_value(current, {}) == (990.0, "qLogNEI seed 0")
    text = "\n".join(bench.previous_text(prev, 1000.0))
    assert "| multi-fidelity (seeds 0) | slower proposals | 10 | 10 | 1000.0 |" in text  # 995 is within 1 %
    assert "| qLogNEI (seeds 1) | old_proposer | not reached | inf | 980.0 |" in text
    assert bench.previous_text({}, 1000.0) == []
    with pytest.raises(SystemExit, match="not a folder"):
        bench.load_previous([tmp_path / "missing"])
    (b / "settings.txt").write_text("slower proposals\n")
    with pytest.raises(SystemExit, match="same settings text"):
        bench.load_previous([a, b])
