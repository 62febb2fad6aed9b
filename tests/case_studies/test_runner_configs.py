"""Every case-study config composes and instantiates: the experiments alone (with conf/campaign.yaml)
and every campaign of every study under every profile."""

from __future__ import annotations

import pytest
from hydra.utils import instantiate
from omegaconf import OmegaConf

from microdesign.case_studies.runner import STUDIES, campaign_config, check, evaluations
from microdesign.config import compose
from microdesign.design import DesignSpace
from microdesign.errors import ConfigError
from microdesign.optim import build_proposer

EXPERIMENTS = ["cs1_half_cell", "cs2_full_cell", "cs3_energy_cell", "cs3_power_cell", "pareto"]


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_experiment_composes_and_instantiates(experiment):
    cfg = compose("campaign", [f"experiment={experiment}"])
    cell = instantiate(cfg.cell, _convert_="all")
    objective = instantiate(cfg.objective)
    proposer = build_proposer(cfg.optimiser, DesignSpace.from_config(cfg.design_space), seed=0)
    free = [n for n, p in cfg.design_space.parameters.items() if p.fixed is None]
    if experiment.startswith(("cs1", "cs2")):
        # two parameters at fixed mass loading (and fixed CBD adhesion)
        assert free == ["am_weight_fraction", "porosity"]
        assert proposer.n_initial == 4
    else:
        assert free == ["am_weight_fraction", "porosity", "cbd_adhesion", "mass_loading_mg_cm2"]
        assert proposer.n_initial == 8
    if experiment == "cs1_half_cell":
        assert type(cell).__name__ == "HalfCellModel" and objective.quantity == "cathode_capacity_mAh_g_am"
    if experiment == "cs2_full_cell":
        assert objective.quantity == "specific_energy_Wh_kg" and cell.protocol.power_W == 10.0
    if experiment.startswith("cs3"):
        assert objective.quantity == "volumetric_energy_density_Wh_L"
        assert cell.protocol.power_W == (10.0 if "energy" in experiment else 200.0)
    if experiment == "pareto":
        assert type(proposer).__name__ == "HypervolumeProposer" and objective.m == 2
        assert cell.powers_W == (10.0, 200.0)


def test_case_study_root_config_and_names(tmp_path):
    cfg = compose("case_study", [f"output_dir={tmp_path}"])
    assert check(cfg) == ["cs3"]
    assert check(OmegaConf.merge(cfg, {"name": "all"})) == list(STUDIES)
    with pytest.raises(ConfigError):
        check(OmegaConf.merge(cfg, {"name": "cs9"}))
    with pytest.raises(ConfigError):
        check(OmegaConf.merge(cfg, {"profile": "tpu"}))
    with pytest.raises(ConfigError):
        check(OmegaConf.merge(cfg, {"budget": {"evaluations": 0}}))
    with pytest.raises(ConfigError, match="budgets"):  # would skip every campaign
        check(OmegaConf.merge(cfg, {"profile": "cpu_generator", "profiles": {"cpu_generator": {"budgets": "cpuu"}}}))


def test_every_campaign_of_a_study_runs_on_its_executor(tmp_path):
    """`microdesign case-study name=all executor=ray ...`: each campaign config gets the study's executor."""
    cfg = compose("case_study", [f"output_dir={tmp_path}", "name=all", "executor=ray", "executor.num_workers=3"])
    assert compose("case_study", []).executor.kind == "local"
    for study in check(cfg):
        for spec in cfg.studies[study].campaigns:
            c = campaign_config(cfg, study, spec)
            assert (c.executor.kind, c.executor.num_workers, c.executor.mode) == ("ray", 3, "async")


@pytest.mark.parametrize("profile", ["cpu", "cpu_generator", "gpu", "stub"])
def test_every_campaign_composes_under_every_profile(tmp_path, profile):
    """All campaigns under the cpu profile; one per study under the others (composition is slow)."""
    cfg = compose("case_study", [f"output_dir={tmp_path}", f"profile={profile}"])
    n_campaigns = 0
    for study in STUDIES:
        specs = list(cfg.studies[study].campaigns)
        for spec in specs if profile == "cpu" else specs[:1]:
            c = campaign_config(cfg, study, spec)
            n = evaluations(cfg, spec)
            if n:
                n_campaigns += 1
                assert c.campaign.budget.max_evaluations == n
            assert str(c.output).endswith(f"{profile}/{study}/{spec.label}.h5")
            if profile != "gpu":  # the gpu profile needs the shipped checkpoint and CUDA
                gen = instantiate(c.generator)
                char = instantiate(c.characterise)
                assert hasattr(gen, "sample") and hasattr(char, "characterise")
            else:
                assert c.characterise.solver.device == "auto" and c.campaign.cube_size_voxels == 128
            if profile == "cpu_generator":  # the embedded default generator, with the cpu profile's budgets
                assert type(gen).__name__ == "Generator" and gen.metadata.name == compose("campaign").generator.checkpoint
                assert n == int(spec.evaluations.cpu)
    assert n_campaigns >= (7 if profile == "cpu" else 4)
    # a budget override applies to every campaign
    cfg2 = compose("case_study", [f"output_dir={tmp_path}", f"profile={profile}", "budget.evaluations=5"])
    spec = cfg2.studies.cs3.campaigns[0]
    assert campaign_config(cfg2, "cs3", spec).campaign.budget.max_evaluations == 5


def test_a_campaign_optimum_is_its_validated_recommendation():
    """The case-study reports take each campaign's recommended (validated) design where there is one."""
    from pathlib import Path

    from microdesign.case_studies.runner import CampaignRun
    from microdesign.objective import ObjectiveValue
    from microdesign.storage import TrialRecord

    def rec(i, value, status="completed", method="sobol"):
        return TrialRecord(index=i, batch=i, status=status, method=method, inputs={"x": float(i)}, seed=i,
                           objective=ObjectiveValue("ok", value, value, 1.0) if status == "completed" else None)

    run = CampaignRun("cs3", "energy_cell", Path("x.h5"), {}, trials=[rec(0, 800.0), rec(1, 850.0), rec(2, 820.0)])
    assert run.optimum().index == 1  # no validation: the best found
    run.validations = [rec(1, 0.0, "failed", "validation"), rec(2, 815.0, method="validation")]
    assert run.optimum().index == 2 and run.validated(2).objective.raw_value == 815.0
    run.validations = [rec(1, 0.0, "failed", "validation")]
    assert run.optimum().index == 1  # nothing validated completed: the best found, as before
