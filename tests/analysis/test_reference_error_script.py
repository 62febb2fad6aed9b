"""scripts/reference_error.py's bookkeeping: a setting re-measured with another generator checkpoint (a new
shipped model) keeps the former row under NAME@CHECKPOINT, and the page names each row's generator."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="module")
def script(load_script):
    return load_script("reference_error")


def _entry(name, source, generator, mae=0.1):
    summary = {"10": {"designs": 1, "evaluations": 2, "failed": 0, "cpu_s_mean": 5.0, "objective_relative_ci_mean": 0.01,
                      "objective": {"bias": 0.0, "spread": 0.0, "mean_abs": mae}, "metrics": {}}}
    return {"name": name, "source": source, "overrides": [], "description": "d", "settings": {"generator": generator},
            "seeds": [0], "command": "c", "machine": "m", "date": "t", "summary": summary}


def test_a_new_generator_keeps_the_former_row_under_its_checkpoint(script):
    table = {"entries": [_entry("default", "generator", "old_model"), _entry("line-48", "line", "old_model")]}
    rows = {"default": [{"index": 0}], "line-48": [{"index": 1}]}
    assert script.keep_former_generator_row(table, rows, "default", {"generator": "new_model"}) == "default@old_model"
    assert [e["name"] for e in table["entries"]] == ["default@old_model", "line-48"]
    assert rows == {"default@old_model": [{"index": 0}], "line-48": [{"index": 1}]}
    # the same generator again: nothing renamed (the row is re-measured or kept as before)
    table = {"entries": [_entry("default", "generator", "new_model")]}
    assert script.keep_former_generator_row(table, {}, "default", {"generator": "new_model"}) is None
    assert table["entries"][0]["name"] == "default"
    # a second change of model replaces an older row of the same name and checkpoint, never duplicates it
    table = {"entries": [_entry("default@old_model", "generator", "old_model", 0.3), _entry("default", "generator", "old_model")]}
    script.keep_former_generator_row(table, {}, "default", {"generator": "new_model"})
    assert [e["name"] for e in table["entries"]] == ["default@old_model"]
    assert table["entries"][0]["summary"]["10"]["objective"]["mean_abs"] == pytest.approx(0.1)


def test_the_page_names_each_rows_generator_and_reproduces_only_current_settings(script):
    reference = {"settings": {"n_designs": 0, "designs_seed": 0, "structures": "s", "n_cubes": 1, "size_voxels": 8,
                              "powers_W": [10.0]}, "designs": [], "command": "ref"}
    page = script.markdown(reference, [_entry("default@old_model", "generator", "old_model"),
                                       _entry("default", "generator", "new_model"), _entry("line-48", "line", "x")])
    assert "| default@old_model | generator | old_model | 10 |" in page
    assert "| default | generator | new_model | 10 |" in page and "| line-48 | line | – | 10 |" in page
    assert "--candidates default line-48 --seeds 0" in page
