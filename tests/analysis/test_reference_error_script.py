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
    keep = script.keep_former_generator_row
    assert keep(table, rows, "default", "generator", {"generator": "new_model"}) == "default@old_model"
    assert [e["name"] for e in table["entries"]] == ["default@old_model", "line-48"]
    assert rows == {"default@old_model": [{"index": 0}], "line-48": [{"index": 1}]}
    assert "former shipped generator old_model" in table["entries"][0]["description"]
    # a line row does not depend on the generator: never renamed
    assert keep(table, rows, "line-48", "line", {"generator": "new_model"}) is None
    assert [e["name"] for e in table["entries"]] == ["default@old_model", "line-48"] and "line-48" in rows
    # the same generator again: nothing renamed (the row is re-measured or kept as before)
    table = {"entries": [_entry("default", "generator", "new_model")]}
    assert keep(table, {}, "default", "generator", {"generator": "new_model"}) is None
    assert table["entries"][0]["name"] == "default"
    # a second change of model replaces an older row of the same name and checkpoint, never duplicates it
    table = {"entries": [_entry("default@old_model", "generator", "old_model", 0.3), _entry("default", "generator", "old_model")]}
    rows = {"default@old_model": [{"index": 9}], "default": [{"index": 0}]}
    keep(table, rows, "default", "generator", {"generator": "new_model"})
    assert [e["name"] for e in table["entries"]] == ["default@old_model"]
    assert table["entries"][0]["summary"]["10"]["objective"]["mean_abs"] == pytest.approx(0.1)
    assert rows == {"default@old_model": [{"index": 0}]}


def test_the_page_names_each_rows_generator_and_reproduces_only_current_settings(script):
    reference = {"settings": {"n_designs": 0, "designs_seed": 0, "structures": "s", "n_cubes": 1, "size_voxels": 8,
                              "powers_W": [10.0]}, "designs": [], "command": "ref"}
    page = script.markdown(reference, [_entry("default@old_model", "generator", "old_model"),
                                       _entry("default", "generator", "new_model"), _entry("line-48", "line", "x"),
                                       _entry("gen-64x8", "generator", "old_model")], current_generator="new_model")
    assert "| default@old_model | generator | old_model | 10 |" in page
    assert "| default | generator | new_model | 10 |" in page and "| line-48 | line | – | 10 |" in page
    # the reproduce command lists what a rerun measures as it is; a row of another generator is named apart
    assert "--candidates default line-48 --seeds 0" in page
    assert "`gen-64x8` (old_model)" in page
    # a setting that names its own checkpoint (generator.checkpoint=...) is current when measured with it
    pinned = {**_entry("default-cand", "generator", "cand_model"), "overrides": ["generator.checkpoint=cand_model"]}
    page = script.markdown(reference, [_entry("default", "generator", "new_model"), pinned],
                           current_generator="new_model")
    assert "--candidates default default-cand --seeds 0" in page and "Rows still measured" not in page
    page = script.markdown(reference, [{**pinned, "settings": {"generator": "new_model"}}],
                           current_generator="new_model")
    assert "`default-cand` (new_model)" in page
    # rows measured over different seed lists get one command each, so a rerun keeps every row's seeds
    more = {**_entry("line-64x8", "line", "x"), "seeds": [0, 1, 2]}
    page = script.markdown(reference, [_entry("default", "generator", "new_model"), more, _entry("line-48", "line", "x")],
                           current_generator="new_model")
    assert "--candidates default line-48 --seeds 0\n" in page and "--candidates line-64x8 --seeds 0 1 2\n" in page


def _row(i, power, err):
    return {"index": i, "seed": 0, "power_W": power, "status": "completed", "reason": None,
            "objective_rel_error": err, "cpu_s": 1.0, "metrics_rel_error": {}, "objective_relative_ci": 0.01}


def test_main_re_measures_with_the_shipped_generator_and_keeps_the_former_row(script, tmp_path, monkeypatch):
    """The script's own loop (compare stubbed): a stored `default` of another generator is re-measured and
    kept as default@old_model; the stored line row, complete but of another generator (whose training line
    it measured), is re-measured in place, not renamed."""
    import json

    from microdesign.analysis import reference_error as RE
    from microdesign.config import compose

    now = RE.evaluation_settings(compose("campaign"))
    line_48 = RE.evaluation_settings(compose("campaign", script.CANDIDATES["line-48"][1]))
    table = {"entries": [{**_entry("default", "generator", "old_model", 0.3), "settings": {**now, "generator": "old_model"}},
                         {**_entry("line-48", "line", "old_model", 0.05), "seeds": [0],
                          "settings": {**line_48, "generator": "old_model"}}]}
    (tmp_path / "t.json").write_text(json.dumps(table))
    n_designs = len(json.loads((script.REPO / "docs" / "reference" / "reference_evaluation.json").read_text())["designs"])
    (tmp_path / "r.json").write_text(json.dumps({"default": [_row(0, 10.0, 0.3)],
                                                 "line-48": [_row(i, 10.0, 0.05) for i in range(n_designs)]}))
    calls = []

    def fake_compare(reference, cfg, seeds, source, indices):
        calls.append(source)
        return [_row(i, 10.0, 0.02) for i in indices]

    monkeypatch.setattr(RE, "compare", fake_compare)
    args = ["--candidates", "default", "line-48", "--seeds", "0", "--table", str(tmp_path / "t.json"),
            "--rows", str(tmp_path / "r.json"), "--markdown", str(tmp_path / "m.md"), "--notes", str(tmp_path / "none.md")]
    assert script.main(args) == 0
    out = {e["name"]: e for e in json.loads((tmp_path / "t.json").read_text())["entries"]}
    assert set(out) == {"default@old_model", "default", "line-48"} and calls == ["generator", "line"]
    assert out["line-48"]["summary"]["10"]["objective"]["mean_abs"] == pytest.approx(0.02)
    assert out["default"]["settings"]["generator"] == now["generator"] != "old_model"
    assert out["default@old_model"]["summary"]["10"]["objective"]["mean_abs"] == pytest.approx(0.3)
    assert out["default"]["summary"]["10"]["objective"]["mean_abs"] == pytest.approx(0.02)
    from importlib.metadata import version

    assert out["default"]["versions"]["pybamm"] == version("pybamm")  # the libraries it was measured with
    assert "versions" not in out["default@old_model"]  # an older entry keeps its record as it was
    rows = json.loads((tmp_path / "r.json").read_text())
    assert rows["default@old_model"] == [_row(0, 10.0, 0.3)] and set(rows) == {"default@old_model", "default", "line-48"}
    assert rows["line-48"] == [_row(i, 10.0, 0.02) for i in range(n_designs)]
    assert "--candidates default line-48 --seeds 0" in (tmp_path / "m.md").read_text()


def test_the_metric_tables_read_the_highest_power(script):
    """With the CI target judged on the objective, the highest power characterises the most cubes: its rows
    give the metric and τ-estimator tables, whatever the order of the powers in the summary."""
    reference = {"settings": {"n_designs": 0, "designs_seed": 0, "structures": "s", "n_cubes": 1, "size_voxels": 8,
                              "powers_W": [10.0, 200.0]}, "designs": [], "command": "ref"}
    entry = _entry("default", "generator", "m")
    tau = "Pore tortuosity factor through-plane"

    def at(bias):
        stats = {"n": 2, "bias": bias, "spread": 0.01, "mean_abs": abs(bias)}
        return {**entry["summary"]["10"], "metrics": {tau: stats},
                "tau_estimators": {k: stats for k in ("mean", "median", "transport_averaged")}}

    entry["summary"] = {"10": at(0.30), "200": at(0.05)}  # the first power is not the highest
    page = script.markdown(reference, [entry], current_generator="m")
    metric_table = page.split("## Metric error per setting")[1].split("## Estimators")[0]
    estimator_table = page.split("## Estimators of the pore tortuosity factor")[1]
    assert "| default | +5.0 ± 1.0 |" in metric_table and "+30.0" not in metric_table
    assert "| default | +5.0 ± 1.0 | +5.0 ± 1.0 | +5.0 ± 1.0 |" in estimator_table
