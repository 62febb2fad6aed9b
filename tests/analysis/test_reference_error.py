"""Error against the reference: summary statistics and the campaign's lookup (microdesign.analysis.reference_error)."""

from __future__ import annotations

import math

import pytest

from microdesign.analysis.reference_error import error_note, estimated_error, evaluation_settings, summarise
from microdesign.config import compose


def _row(i, p, err, status="completed", cpu=10.0, tau=0.2):
    return {"index": i, "seed": 0, "power_W": p, "status": status, "reason": None if status == "completed" else "x",
            "objective_rel_error": err if status == "completed" else None, "cpu_s": cpu,
            "metrics_rel_error": {"Pore tortuosity factor through-plane": tau}, "objective_relative_ci": 0.01}


def test_summary_gives_bias_spread_and_mean_absolute_error_per_power():
    rows = [_row(0, 10.0, 0.02), _row(1, 10.0, -0.04), _row(2, 10.0, 0.05), _row(3, 10.0, None, status="failed"),
            _row(0, 200.0, -0.3, cpu=12.0)]
    s = summarise(rows)
    o = s["10"]["objective"]
    assert o["n"] == 3 and o["bias"] == pytest.approx(0.01)
    assert o["mean_abs"] == pytest.approx((0.02 + 0.04 + 0.05) / 3)
    assert o["spread"] == pytest.approx(math.sqrt(((0.01) ** 2 + 0.05 ** 2 + 0.04 ** 2) / 2))
    assert s["10"]["failed"] == 1 and s["10"]["evaluations"] == 4 and s["10"]["designs"] == 4
    assert s["200"]["objective"]["bias"] == pytest.approx(-0.3) and s["200"]["cpu_s_mean"] == pytest.approx(12.0)
    assert s["10"]["metrics"]["Pore tortuosity factor through-plane"]["bias"] == pytest.approx(0.2)


def test_lookup_applies_only_to_the_measured_settings_and_power():
    cfg = compose("campaign", [])
    settings = evaluation_settings(cfg)
    assert settings["power_W"] == pytest.approx(10.0) and settings["cube_size_voxels"] == 64
    summary = summarise([_row(0, 10.0, 0.03), _row(1, 10.0, -0.01)])
    table = [{"name": "default", "source": "generator", "settings": settings, "summary": summary}]
    e = estimated_error(cfg, table)
    assert e["mean_abs"] == pytest.approx(0.02) and e["bias"] == pytest.approx(0.01) and e["designs"] == 2
    assert "±2.0 %" in error_note(cfg, table) and "10 W" in error_note(cfg, table)
    # another power, cube size or structure source was not measured: said so, nothing extrapolated
    for other in (["cell.protocol.power_W=200"], ["campaign.cube_size_voxels=48"], ["cell.protocol.c_rate=1"],
                  ["generator.phase_fractions=argmax"], ["generator.carbon_to_binder_weight_ratio=2.0"],
                  ["generator.pore_neighbour_penalty=2.5"]):
        assert estimated_error(compose("campaign", other), table) is None
        assert "not measured" in error_note(compose("campaign", other), table)
    line = [{**table[0], "source": "line"}]
    assert estimated_error(cfg, line) is None
    # the stored campaign config (YAML text) gives the same key as the composed one
    from omegaconf import OmegaConf

    assert evaluation_settings(OmegaConf.to_yaml(cfg, resolve=True)) == settings
    assert "not measured" in error_note("x: 1\n", table)


def test_an_entry_measured_before_the_phase_fraction_key_was_the_argmax():
    from microdesign.analysis.reference_error import same_settings

    design = evaluation_settings(compose("campaign", ["generator.phase_fractions=design"]))
    argmax = evaluation_settings(compose("campaign", ["generator.phase_fractions=argmax"]))
    assert design["phase_fractions"] == "design" and argmax["phase_fractions"] == "argmax"
    older = {k: v for k, v in argmax.items() if k not in ("phase_fractions", "pore_neighbour_penalty")}
    assert same_settings(older, argmax) and not same_settings(older, design)
    # the argmax does not use the penalty: its key does not depend on it
    assert evaluation_settings(compose("campaign", ["generator.phase_fractions=argmax",
                                                    "generator.pore_neighbour_penalty=3"])) == argmax
    plain = evaluation_settings(compose("campaign", ["generator.pore_neighbour_penalty=0"]))
    assert plain["pore_neighbour_penalty"] == 0.0 and same_settings({**plain}, {k: v for k, v in plain.items()
                                                                              if k != "pore_neighbour_penalty"})


def test_an_entry_measured_before_the_deflation_key_was_not_deflated():
    """Table entries measured before the conductivity solve was deflated lack the key: they match a config
    that turns the deflation off, not the shipped one (deflated); TauFactor has no such setting."""
    from microdesign.analysis.reference_error import same_settings

    shipped = evaluation_settings(compose("campaign", []))
    off = evaluation_settings(compose("campaign", ["characterise.solver.deflation=false"]))
    assert shipped["deflation"] is True and off["deflation"] is False
    older = {k: v for k, v in shipped.items() if k != "deflation"}
    assert same_settings(older, off) and not same_settings(older, shipped)
    assert "deflation" not in evaluation_settings(compose("campaign", ["characterise/solver=taufactor"]))


def test_an_entry_measured_before_the_adaptive_target_key_judged_every_metric():
    """The shipped default judges its CI target on the objective; entries measured before that was a
    setting judged every metric and match only a config that does."""
    from microdesign.analysis.reference_error import same_settings

    shipped = evaluation_settings(compose("campaign", []))
    metric = evaluation_settings(compose("campaign", ["campaign.adaptive_target=every_metric"]))
    # the shipped "auto" is keyed as what it resolves to for the energy objective
    assert shipped["adaptive_target"] == "objective" and metric["adaptive_target"] == "every_metric"
    assert evaluation_settings(compose("campaign", ["campaign.adaptive_target=objective"])) == shipped
    older = {k: v for k, v in metric.items() if k != "adaptive_target"}
    assert same_settings(older, metric) and not same_settings(older, shipped)
    assert "adaptive_target" not in evaluation_settings(compose("campaign", ["campaign.adaptive=false"]))


def test_the_metric_calibration_in_use_is_keyed_by_content_and_older_entries_were_uncalibrated(tmp_path):
    """The shipped generator ships a calibration for cubes of 64³ (docs/metric_calibration.md); ``auto``
    takes it only where it fits, and entries measured before the key were evaluated as measured."""
    from microdesign.analysis.reference_error import same_settings
    from microdesign.characterise.calibration import calibration_file_for

    shipped = evaluation_settings(compose("campaign", []))
    none = evaluation_settings(compose("campaign", ["campaign.metric_calibration=none"]))
    assert shipped["metric_calibration"].startswith("sha256:") and none["metric_calibration"] == "none"
    copy = tmp_path / "copy.json"  # the same content elsewhere: the same key
    copy.write_bytes(calibration_file_for(compose("campaign", []).generator.checkpoint, 64).read_bytes())
    assert evaluation_settings(compose("campaign", [f"campaign.metric_calibration={copy}"]))["metric_calibration"] \
        == shipped["metric_calibration"]
    for other in ("campaign.cube_size_voxels=48", "generator.pore_neighbour_penalty=3", "characterise.tau_estimator=mean"):
        assert evaluation_settings(compose("campaign", [other]))["metric_calibration"] == "none", other
    older = {k: v for k, v in none.items() if k != "metric_calibration"}
    assert same_settings(older, none) and not same_settings(older, shipped)


def test_tau_estimators_weight_transport_not_tortuosity():
    import numpy as np

    from microdesign.analysis.reference_error import tau_estimators
    from microdesign.characterise.metrics import (
        PORE_PERCOLATING_FRACTION,
        POROSITY,
        TORTUOSITY_THROUGH_PLANE,
        MetricEstimate,
        MicrostructureMetrics,
    )

    est = {POROSITY: MetricEstimate.from_values(POROSITY, [0.4, 0.3, 0.4, 0.1]),
           PORE_PERCOLATING_FRACTION: MetricEstimate.from_values(PORE_PERCOLATING_FRACTION, [1, 1, 1, 0]),
           TORTUOSITY_THROUGH_PLANE: MetricEstimate.from_values(TORTUOSITY_THROUGH_PLANE, [2.0, 3.0, 10.0])}
    t = tau_estimators(MicrostructureMetrics(est, 4e-7, 48, 4))
    assert t["mean"] == pytest.approx(5.0) and t["median"] == pytest.approx(3.0)
    # one badly connected cube (tau 10) dominates the mean of tau, not the mean transport eps/tau;
    # the blocked cube's porosity (0.1) is left out
    eps, tau = np.array([0.4, 0.3, 0.4]), np.array([2.0, 3.0, 10.0])
    assert t["transport_averaged"] == pytest.approx(eps.mean() / np.mean(eps / tau))
    assert t["median"] < t["transport_averaged"] < t["mean"]


def test_coarse_graining_votes_each_block_and_doubles_the_voxel():
    import numpy as np

    from microdesign.analysis.reference_error import CoarseGrained

    class Fine:
        voxel_size_m = 4e-7

        def sample(self, params, n, size_voxels, seed):
            v = np.zeros((n, size_voxels, size_voxels, size_voxels), np.uint8)
            v[:, : size_voxels // 2] = 1  # AM in the first half along axis 0
            v[:, 0, 0, 0] = 2  # one CBD voxel: outvoted in its block
            v[:, -2:, -2:, -2:] = 2  # a full CBD block survives
            return v

    src = CoarseGrained(Fine(), 2)
    out = src.sample({}, 2, 4, 0)
    assert out.shape == (2, 4, 4, 4) and src.voxel_size_m == pytest.approx(8e-7)
    assert (out[:, :2] == 1).all() and out[0, -1, -1, -1] == 2 and (out[:, 2:] != 1).all()
    assert int((out == 2).sum()) == 2  # one CBD block per cube


def test_volume_sources_pick_the_line_the_generator_and_their_coarse_versions():
    from microdesign.analysis.reference import LineVolumes
    from microdesign.analysis.reference_error import SOURCES, CoarseGrained, volume_source
    from microdesign.errors import ConfigError

    class Gen:
        voxel_size_m = 4e-7

    gen, line = Gen(), LineVolumes(object(), 4e-7)
    assert volume_source("generator", gen) is gen and volume_source("line", gen, line) is line
    assert isinstance(volume_source("generator-coarse2", gen), CoarseGrained)
    coarse = volume_source("line-coarse2", gen, line)
    assert isinstance(coarse, CoarseGrained) and coarse.generator is line and coarse.voxel_size_m == pytest.approx(8e-7)
    direct = volume_source("line-voxel2", gen, line)
    assert isinstance(direct, LineVolumes) and direct.line is line.line and direct.voxel_size_m == pytest.approx(8e-7)
    assert line.voxel_size_m == pytest.approx(4e-7)  # the reference line itself is unchanged
    assert set(SOURCES) == {"generator", "line", "generator-coarse2", "line-coarse2", "line-voxel2"}
    with pytest.raises(ConfigError, match="source"):
        volume_source("line-voxel3", gen, line)
    with pytest.raises(ConfigError, match="line"):
        volume_source("line-voxel2", gen)


def test_attribution_moves_one_metric_at_a_time_by_its_mean_error():
    """A linear objective in the surface area and inverse in τ: moving each metric by its mean error over
    the seeds gives the objective changes of those errors alone, and together their combined change."""
    from microdesign.analysis.reference_error import objective_attribution

    from microdesign.characterise.metrics import POROSITY as por
    from microdesign.characterise.metrics import SSA_AM_PORE as ssa
    from microdesign.characterise.metrics import TORTUOSITY_THROUGH_PLANE as tau
    designs = [{"index": 0, "inputs": {"x": 1.0},
                "metrics": {"estimates": {ssa: {"mean": 2.0e5}, tau: {"mean": 2.0}, por: {"mean": 0.4}}}}]

    def objective_of(inputs, means):
        return means[ssa] / 1e5 / means[tau] * means[por] / 0.4 * inputs["x"]

    rows = [{"index": 0, "power_W": 200.0, "objective_rel_error": e, "metrics_rel_error": {ssa: s, tau: t, por: 0.01}}
            for e, s, t in ((0.1, 0.20, 0.05), (0.2, 0.40, 0.15))]
    rows.append({"index": 0, "power_W": 200.0, "objective_rel_error": 0.3, "metrics_rel_error": {ssa: 0.60}})  # no τ
    rows.append({"index": 0, "power_W": 200.0, "status": "failed", "objective_rel_error": None,
                 "metrics_rel_error": {ssa: 5.0, tau: 5.0}})  # failed: left out
    rows.append({"index": 0, "power_W": 10.0, "objective_rel_error": 9.0, "metrics_rel_error": {ssa: 9.0, tau: 9.0}})
    (a,) = objective_attribution(designs, rows, 200.0, objective_of)
    assert a["index"] == 0 and a["measured"] == pytest.approx(0.2) and a["base"] == pytest.approx(1.0)
    assert a["by_metric"][ssa]["metric_error"] == pytest.approx(0.40) and a["by_metric"][ssa]["n"] == 3
    assert a["by_metric"][ssa]["objective_change"] == pytest.approx(0.40)  # linear in the surface area
    assert a["by_metric"][tau]["n"] == 2  # the mean over the rows that have it
    assert a["by_metric"][tau]["objective_change"] == pytest.approx(1 / 1.10 - 1)  # τ +10 %
    assert por not in a["by_metric"]  # below min_abs_error alone, but moved with all the others
    assert a["all_metrics"] == pytest.approx(1.40 / 1.10 * 1.01 - 1, rel=1e-6)
    assert objective_attribution(designs, rows, 50.0, objective_of) == []  # no rows at that power
