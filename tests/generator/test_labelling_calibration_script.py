"""scripts/labelling_calibration.py: the choice rule of the pore-neighbour penalty."""

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
