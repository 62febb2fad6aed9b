"""Manufacturing design space: settings -> process model -> generator parameters, checked before any work."""

from __future__ import annotations

import numpy as np
import pytest

from microdesign.campaign.build import build_evaluator, run_campaign
from microdesign.campaign.evaluate import TrialEvaluator
from microdesign.campaign.stubs import StubCell, StubCharacteriser, StubGenerator
from microdesign.characterise.metrics import POROSITY
from microdesign.config import compose
from microdesign.design import DesignSpace
from microdesign.design.manufacturing import ManufacturingDesign, generator_am_weight_fraction
from microdesign.errors import ConfigError
from microdesign.objective import CellQuantity
from microdesign.process.chain import ProcessModel
from microdesign.process.formulation import Formulation
from microdesign.storage import load_campaign_file

BOUNDS = {"am_weight_fraction": (0.88, 0.97), "porosity": (0.25, 0.50), "cbd_adhesion": (0.0, 1.0)}
SETTING = {"am_weight_fraction": 0.95, "carbon_to_binder_weight_ratio": 1.0, "line_load_N_mm": 500.0,
           "dry_loading_mg_cm2": 20.0, "cbd_adhesion": 0.5}


def _space(**changes):
    cfg = compose("campaign", ["design_space=manufacturing", *[f"design_space.parameters.{k}={v}" for k, v in changes.items()]])
    return cfg, DesignSpace.from_config(cfg.design_space)


def test_mapping_follows_the_process_model():
    process = ProcessModel()
    dm = ManufacturingDesign(process, BOUNDS)
    d = dm.map(SETTING)
    # calendered porosity of the requested line load (Meyer et al. 2017), loading reached by the flow rate
    assert d.generator_params["porosity"] == pytest.approx(process.evaluate(line_load_N_mm=500.0,
                                                                            am_weight_fraction=0.95).porosity)
    assert d.generator_params["porosity"] == pytest.approx(0.2 + 0.3 * np.exp(-500 / 700))
    assert d.mass_loading_mg_cm2 == pytest.approx(20.0)
    assert process.evaluate(flow_rate_mL_min=d.outputs["flow_rate_mL_min"], am_weight_fraction=0.95
                            ).dry_loading_mg_cm2 == pytest.approx(20.0)
    # a 1:1 carbon:binder ratio is the generator's reference formulation: the weight fraction passes unchanged
    assert d.generator_params["am_weight_fraction"] == pytest.approx(0.95)
    assert d.generator_params["cbd_adhesion"] == 0.5
    assert d.extra()["process_porosity"] == d.generator_params["porosity"]
    assert d.extra()["process_thickness_m"] == pytest.approx(20e-3 / (d.outputs["solids_density_g_cm3"]
                                                                      * (1 - d.outputs["porosity"]) * 100))


def test_carbon_to_binder_ratio_conditions_the_generator_through_the_volume_split():
    dm = ManufacturingDesign(ProcessModel(), BOUNDS)
    d = dm.map({**SETTING, "carbon_to_binder_weight_ratio": 2.0})
    # more (denser) carbon: a smaller CBD volume for the same weight, so a larger equivalent AM weight fraction
    assert d.generator_params["am_weight_fraction"] > 0.95
    # the generator's reference formulation at the equivalent fraction reproduces the process's phase fractions
    x = Formulation.from_am_weight_fraction(d.generator_params["am_weight_fraction"]).phase_volume_fractions(
        d.generator_params["porosity"])
    assert x["active_material"] == pytest.approx(d.outputs["am_volume_fraction"], rel=1e-9)
    assert x["cbd"] == pytest.approx(d.outputs["cbd_volume_fraction"], rel=1e-9)
    assert generator_am_weight_fraction(0.6, 0.0, 4.75) == pytest.approx(1.0)


def test_invalid_settings_are_refused_before_any_work():
    class NoWork(StubGenerator):
        def sample(self, *a, **k):
            raise AssertionError("the generator ran for a refused setting")

    gen = NoWork(training_bounds=BOUNDS)
    assert gen.training_bounds == BOUNDS
    dm = ManufacturingDesign(ProcessModel(), BOUNDS)
    ev = TrialEvaluator(gen, StubCharacteriser(), StubCell(), CellQuantity(noise="none"), ("cbd_adhesion",),
                        cube_size_voxels=8, n_cubes=2, adaptive=False, design_map=dm)
    # 1500 N/mm calenders below the generator's lowest training porosity 0.25 (eps = 0.2 + 0.3 exp(-1500/700) = 0.235)
    out = ev.evaluate({**SETTING, "line_load_N_mm": 1500.0}, seed=0)
    assert out.status == "failed" and out.reason.startswith("process:") and "porosity" in out.reason
    assert out.metrics is None and out.cell is None
    with pytest.raises(ConfigError, match="porosity"):
        dm.map({**SETTING, "line_load_N_mm": 1500.0})
    # a design space whose corners map outside the bounds is refused when the campaign is built
    cfg, space = _space(**{"line_load_N_mm.upper": 1500.0})
    with pytest.raises(ConfigError, match="training bounds"):
        dm.check_space(space)
    cfg, space = _space(**{"am_weight_fraction.upper": 0.975})
    with pytest.raises(ConfigError, match="am_weight_fraction"):
        dm.check_space(space)
    _, space = _space()
    dm.check_space(space)  # the shipped space maps inside


def test_manufacturing_space_config_is_validated(tmp_path):
    cfg = compose("campaign", ["experiment=analytic", "design_space=manufacturing",
                               "design_space.parameters.line_load_N_mm.lower=-5"])
    with pytest.raises(ConfigError, match="line_load_N_mm"):
        DesignSpace.from_config(cfg.design_space)
    cfg = compose("campaign", ["experiment=analytic", "objective=robust_energy"])
    with pytest.raises(ConfigError, match="manufacturing"):
        build_evaluator(cfg)  # a robust statistic needs the tolerances of a manufacturing space
    cfg = compose("campaign", ["experiment=analytic", "design_space=manufacturing", "+design_space.parameters.porosity="
                               "{unit: '1', lower: 0.3, upper: 0.4, role: process}"])
    with pytest.raises(ConfigError, match="process setting"):
        build_evaluator(cfg)


def test_line_load_in_the_loop_gives_the_predicted_porosity(tmp_path):
    """Inside a campaign, each trial's generated structure has the porosity the process model predicts
    for its line load (within the characterisation's 95 % CI), and the process outputs are stored."""
    out = tmp_path / "m.h5"
    cfg = compose("campaign", ["experiment=analytic", "design_space=manufacturing", "optimiser=sobol",
                               "campaign.progress=false", "campaign.validation.top_k=0", "campaign.cube_size_voxels=24",
                               "campaign.budget.max_evaluations=5", f"output={out}"])
    assert run_campaign(cfg) == 0
    trials = [t for t in load_campaign_file(out, "test")[1] if t.status == "completed"]
    assert len(trials) == 5
    dm = ManufacturingDesign(ProcessModel())
    loads = []
    for t in trials:
        predicted = 0.2 + 0.3 * np.exp(-t.inputs["line_load_N_mm"] / 700.0)
        assert t.cell.extra["process_porosity"] == pytest.approx(predicted)
        assert t.cell.extra["process_porosity"] == pytest.approx(dm.map(t.inputs).generator_params["porosity"])
        est = t.metrics.estimates[POROSITY]
        assert abs(est.mean - predicted) <= est.ci95_half_width
        assert t.cell.extra["process_dry_loading_mg_cm2"] == pytest.approx(t.inputs["dry_loading_mg_cm2"])
        loads.append((t.inputs["line_load_N_mm"], est.mean))
    loads.sort()
    assert loads[0][1] > loads[-1][1] + 0.05  # a higher line load measurably densifies the structure
