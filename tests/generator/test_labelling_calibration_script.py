"""scripts/labelling_calibration.py: the choice rule of the pore-neighbour penalty."""

import json

import pytest


def test_the_smallest_error_wins_and_ties_go_to_the_smaller_penalty(load_script):
    choose = load_script("labelling_calibration").choose_penalty
    assert choose({0.0: 11.9, 1.0: 8.6, 2.0: 6.886, 2.5: 6.888, 3.0: 7.9}) == 2.0
    assert choose({0.0: 11.9, 1.0: 8.6, 2.0: 6.90, 2.5: 6.88}, tie=0.01) == 2.5
    assert choose({0.0: 11.9, 1.0: 8.6, 2.0: 6.90, 2.5: 6.88}, tie=0.05) == 2.0
    assert choose({1.5: 3.0}) == 1.5
    with pytest.raises(ValueError, match="mae_by_penalty"):
        choose({})


@pytest.mark.parametrize("bad", [["--calibration", "3"], ["--score", "h7=7:1"], ["--penalties", "-1"],
                                 ["--calibration", "a:b"], ["--n-seeds", "1"]])
def test_malformed_options_stop_before_any_fidelity_run(load_script, bad, tmp_path, capsys):
    with pytest.raises(SystemExit):
        load_script("labelling_calibration").main([*bad, "--work", str(tmp_path / "work"),
                                                   "--output", str(tmp_path / "out.json")])
    assert bad[0] in capsys.readouterr().err
    assert not (tmp_path / "work").exists()


def test_the_calibration_records_the_shipped_generator_and_its_weights(load_script):
    from microdesign.config import compose
    from microdesign.generator.checkpoint import load_metadata

    record = load_script("labelling_calibration")._checkpoint_record(None)
    shipped = str(compose("fidelity").generator.checkpoint)
    assert record["checkpoint"] == shipped
    assert record["name"] == load_metadata(shipped).name
    # the hash is of the weights file itself, the same the checkpoint's metadata states
    assert record["weights_sha256"] == load_metadata(shipped).weights_sha256 != ""


def test_fidelity_runs_are_kept_per_checkpoint_weights_and_the_output_is_named_after_the_model(load_script, tmp_path,
                                                                                             monkeypatch):
    """Reused fidelity runs are not checked again, so each checkpoint's weights get their own folder; every
    run samples that checkpoint; the default output carries the model's name (no real fidelity run here)."""
    from microdesign.characterise.metrics import SSA_AM_PORE, TORTUOSITY_THROUGH_PLANE

    script = load_script("labelling_calibration")
    calls = []

    def fake_fidelity(work, tag, points_seed, seed, n_seeds, overrides):
        calls.append((work, overrides))
        pen = next((float(o.split("=")[1]) for o in overrides if "pore_neighbour_penalty" in o), 0.0)
        point = {"params": {}, "metrics": {SSA_AM_PORE: {"difference": 0.1 - 0.05 * pen, "passed": True},
                                           TORTUOSITY_THROUGH_PLANE: {"difference": 0.02, "passed": True}}}
        return {"points": [point]}

    monkeypatch.setattr(script, "_fidelity", fake_fidelity)
    monkeypatch.setattr(script, "REPO", tmp_path)
    record = script._checkpoint_record(None)
    assert script.main(["--work", str(tmp_path / "work"), "--penalties", "1", "2", "3"]) == 0
    assert {w for w, _ in calls} == {tmp_path / "work" / f"{record['name']}_{record['weights_sha256'][:12]}"}
    assert all(f"generator.checkpoint={record['checkpoint']}" in o for _, o in calls)
    out = json.loads((tmp_path / "docs" / "reference" / f"labelling_calibration_{record['name']}.json").read_text())
    assert out["generator"] == record and out["chosen_penalty"] == 2.0  # |0.1 - 0.05 p| is smallest at 2
    assert out["shipped_penalty"] == script._shipped_penalty()
