"""scripts/metric_calibration.py: the two evaluations become a calibration file the campaign accepts."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from microdesign.characterise import metrics as M


def _fake_run_reference(calls):
    """Stand-in for ``run_reference``: the same held-out designs, τ of the generator too high at low CBD
    adhesion, the surface area unbiased (no cubes, no cell)."""
    from microdesign.analysis.reference import held_out_designs
    from microdesign.design import DesignSpace

    def run(cfg, output, n_designs, designs_seed, n_cubes, size_voxels, powers_W, command, only, structures):
        calls.append(structures)
        designs, seed = held_out_designs(DesignSpace.from_config(cfg.design_space), n_designs, designs_seed)
        rng = np.random.default_rng(len(calls))
        records = []
        for i, d in enumerate(designs):
            tau = 2.0 * (math.exp(0.12 * (1 - d["cbd_adhesion"])) if structures == "generator" else 1.0)
            est = {M.TORTUOSITY_THROUGH_PLANE: tau, M.SSA_AM_PORE: 3e5 * (1 + 0.01 * rng.standard_normal())}
            records.append({"index": i, "inputs": d, "metrics": {"estimates": {
                k: {"mean": v, "std": 0.02 * v, "values": [v] * n_cubes} for k, v in est.items()}}})
        data = {"format_version": 1, "settings": {"designs_seed": seed, "n_cubes": n_cubes, "size_voxels": size_voxels,
                             "structures": {"line": "test"}, "tau_estimator": "transport_averaged"},
                "designs": records}
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(json.dumps(data))
        return data

    return run


def test_the_script_writes_a_calibration_the_shipped_generator_accepts(load_script, tmp_path, monkeypatch):
    import microdesign.analysis.reference as reference
    from microdesign.campaign.build import instantiate
    from microdesign.characterise.calibration import CalibrationData, MetricCalibration
    from microdesign.config import compose

    calls = []
    monkeypatch.setattr(reference, "run_reference", _fake_run_reference(calls))
    out, md = tmp_path / "cal.json", tmp_path / "cal.md"
    assert load_script("metric_calibration").main(["--designs", "16", "--work", str(tmp_path / "work"),
                                                   "--output", str(out), "--markdown", str(md)]) == 0
    assert calls == ["line", "generator"]
    data = CalibrationData.load(out)
    loo = json.loads(out.read_text())["leave_one_out"]
    assert M.TORTUOSITY_THROUGH_PLANE in data.metrics
    assert loo[M.TORTUOSITY_THROUGH_PLANE]["mae_calibrated"] < 0.5 * loo[M.TORTUOSITY_THROUGH_PLANE]["mae_uncalibrated"]
    assert list(data.metrics) == [k for k, r in loo.items() if r["mae_calibrated"] < r["mae_uncalibrated"]
                                  and r["improved_share"] >= 2 / 3]
    assert M.SSA_AM_PORE not in data.metrics  # no discrepancy, only noise: left as measured
    cfg = compose("campaign", [])
    MetricCalibration.check_validity(data, instantiate(cfg.generator, "generator"), 64, "transport_averaged")
    assert "pore_tortuosity_factor" in md.read_text()
    with pytest.raises(Exception, match="cube_size_voxels"):
        MetricCalibration.check_validity(data, instantiate(cfg.generator, "generator"), 48, "transport_averaged")


def test_a_share_outside_zero_to_one_stops_before_any_evaluation(load_script, tmp_path, capsys):
    with pytest.raises(SystemExit):
        load_script("metric_calibration").main(["--min-improved-share", "1.5", "--work", str(tmp_path / "work")])
    assert "--min-improved-share 1.5" in capsys.readouterr().err
    assert not (tmp_path / "work").exists()
