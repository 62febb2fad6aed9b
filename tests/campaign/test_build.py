"""Every experiment config composes and validates (stages instantiated, no evaluation); the default does too."""

from __future__ import annotations

from pathlib import Path

import pytest

from microdesign.campaign.build import validate
from microdesign.config import compose, conf_dir

EXPERIMENTS = sorted(p.stem for p in (conf_dir() / "experiment").glob("*.yaml"))


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_experiment_composes(name, tmp_path):
    cfg = compose("campaign", [f"experiment={name}", f"output={tmp_path / 'c.h5'}", "optimiser.q=4"])
    assert cfg.campaign.budget.max_evaluations >= 1
    text = (conf_dir() / "experiment" / f"{name}.yaml").read_text()
    assert text.startswith("# @package _global_")


@pytest.mark.parametrize("name", [n for n in EXPERIMENTS if n in ("analytic", "smoke", "gpu")] + [None])
def test_experiment_validates(name, tmp_path):
    over = [f"output={tmp_path / 'c.h5'}"] + ([f"experiment={name}"] if name else [])
    setup = validate(compose("campaign", over))
    assert setup.proposer.q >= 1 and not Path(setup.path).exists()
    assert set(setup.space.microstructure_names) == {"am_weight_fraction", "porosity", "cbd_adhesion"}


@pytest.mark.parametrize("option", ["volumetric_energy_density", "specific_energy"])
def test_objective_configs_instantiate(option, tmp_path):
    setup = validate(compose("campaign", ["experiment=analytic", f"objective={option}", f"output={tmp_path / 'c.h5'}"]))
    assert setup.objective.quantity in ("volumetric_energy_density_Wh_L", "specific_energy_Wh_kg")


GUARD = ["experiment=analytic", "campaign.progress=false", "optimiser=sobol", "campaign.validation.top_k=0",
         "campaign.budget.max_evaluations=2"]


def _held(path):
    """A live writer of ``path`` (this process), as a second campaign would find it."""
    from microdesign.storage import CampaignStore

    store = CampaignStore(path, writer=True)
    store.create("", "0", 0, {"names": ["a"], "lower": [0.0], "upper": [1.0]}, {"name": "x", "unit": "", "direction": "maximize"})
    return store


def test_a_file_another_process_writes_is_refused_before_any_work(tmp_path):
    import os

    from microdesign.campaign.build import validate
    from microdesign.config import compose
    from microdesign.errors import ConfigError

    path = tmp_path / "c.h5"
    link = tmp_path / "link.h5"
    link.symlink_to(path)
    store = _held(path)
    try:
        with pytest.raises(ConfigError, match="output.*new file"):
            validate(compose("campaign", GUARD + [f"output={path}"]))
        for target in (path, link):  # a symlink to the running campaign is the same file
            with pytest.raises(ConfigError, match=f"resume.*process {os.getpid()} holds its writer lock"):
                validate(compose("campaign", [f"resume={target}"]))
    finally:
        store.close()


def test_two_campaigns_started_at_once_one_is_refused_and_the_other_file_kept(tmp_path):
    """Both pass validate(); the second to take the lock (or to find the file made) gets a ConfigError."""
    from microdesign.campaign.build import open_campaign, validate
    from microdesign.config import compose
    from microdesign.errors import ConfigError
    from microdesign.storage import CampaignStore

    path = tmp_path / "c.h5"
    first, second = (validate(compose("campaign", GUARD + [f"output={path}"])) for _ in range(2))
    campaign = open_campaign(first)
    try:
        with pytest.raises(ConfigError, match="output"):
            open_campaign(second)  # the lock is held
    finally:
        campaign.store.close()
    with pytest.raises(ConfigError, match="output.*new file"):
        open_campaign(second)  # the lock is free, the file exists
    assert CampaignStore(path).read_header()["generator_name"] == "StubGenerator"


def test_a_config_error_at_the_start_leaves_no_campaign_file(tmp_path, monkeypatch):
    from microdesign.campaign import loop
    from microdesign.campaign.build import open_campaign, run_campaign, validate
    from microdesign.config import compose
    from microdesign.errors import ConfigError

    path = tmp_path / "c.h5"

    def refuse(self, *args, **kwargs):
        raise ConfigError("optimiser.linear_constraints", [], "a feasible set (test)")

    with monkeypatch.context() as mp:  # refused at the first proposal
        mp.setattr(loop.Campaign, "_propose", refuse)
        with pytest.raises(ConfigError, match="linear_constraints"):
            run_campaign(compose("campaign", GUARD + [f"output={path}"]))
    assert not path.exists() and not (tmp_path / "c.h5.lock").exists()
    with monkeypatch.context() as mp:  # refused while the campaign object is built, after the file was made
        mp.setattr(loop.Campaign, "__init__", lambda self, *a, **k: refuse(self))
        with pytest.raises(ConfigError):
            open_campaign(validate(compose("campaign", GUARD + [f"output={path}"])))
    assert not path.exists()


def test_generator_identity_is_written_with_the_file_and_restored_on_resume(tmp_path, monkeypatch):
    """A kill right after the file appears cannot leave it without the generator's identity; a file
    of an older version that lacks it gets it on resume."""
    import h5py

    from microdesign.campaign.build import open_campaign, run_campaign, validate
    from microdesign.config import compose
    from microdesign.storage import CampaignStore

    class Killed(BaseException):
        pass

    def killed(self, **values):
        raise Killed

    path = tmp_path / "c.h5"
    with monkeypatch.context() as mp:
        mp.setattr(CampaignStore, "set_attrs", killed)  # dies at the first write after the creation
        campaign = open_campaign(validate(compose("campaign", GUARD + [f"output={path}"])))
        campaign.store.close()
    assert CampaignStore(path).read_header()["generator_name"] == "StubGenerator"
    with h5py.File(path, "r+") as f:  # an older file killed before its identity was written
        del f.attrs["generator_name"]
    with open(path, "r+b") as fh:
        fh.write(bytes(512))  # older files carry no checksum
    assert run_campaign(compose("campaign", [f"resume={path}"])) == 0
    assert CampaignStore(path).read_header()["generator_name"] == "StubGenerator"


def test_resume_warns_that_stored_settings_and_output_are_ignored(tmp_path, caplog):
    from microdesign.campaign.build import run_campaign
    from microdesign.config import compose

    path = tmp_path / "c.h5"
    assert run_campaign(compose("campaign", GUARD + [f"output={path}"])) == 0
    caplog.clear()
    with caplog.at_level("WARNING"):
        assert run_campaign(compose("campaign", GUARD + [f"resume={path}", "campaign.n_cubes=3",
                                                        "campaign.cube_size_voxels=24", f"output={tmp_path / 'o.h5'}",
                                                        "campaign.budget.max_evaluations=3"])) == 0
    text = caplog.text
    assert "campaign.n_cubes" in text and "campaign.cube_size_voxels" in text and "output=" in text
    assert "campaign.budget" not in text.split("ignored")[0].split("resume:")[-1]  # a resumable key is taken
    assert not (tmp_path / "o.h5").exists()


def _refused_before_the_generator_loads(monkeypatch, overrides):
    """The ConfigError ``validate`` raises for ``overrides``, failing the test if the generator was loaded first."""
    from microdesign.errors import ConfigError
    import microdesign.campaign.build as build

    real = build.instantiate

    def no_generator(node, what, **kwargs):
        assert what != "generator", "the generator was loaded before the setting was checked"
        return real(node, what, **kwargs)

    monkeypatch.setattr(build, "instantiate", no_generator)
    with pytest.raises(ConfigError) as err:
        validate(compose("campaign", overrides))
    return err.value


@pytest.mark.parametrize("overrides", [["cell.protocol.c_rates=[1,2]"],
                                       ["cell.protocol.kind=power_sweep", "cell.protocol.powers_W=[10,20]"]])
def test_a_sweep_protocol_is_refused_however_its_kind_is_given(overrides, monkeypatch):
    """A campaign scores one discharge per design; a sweep, explicit or inferred from its values, is
    refused before the generator loads."""
    assert _refused_before_the_generator_loads(monkeypatch, overrides).parameter == "cell.protocol"


def test_an_unknown_adaptive_target_is_refused_before_the_generator_loads(monkeypatch):
    err = _refused_before_the_generator_loads(monkeypatch, ["campaign.adaptive_target=objective_ci"])
    assert err.parameter == "campaign.adaptive_target" and "every_metric" in str(err)


def test_a_stored_config_without_adaptive_target_judges_every_metric_as_it_ran():
    """Campaign files written before ``campaign.adaptive_target`` existed resume (and Ray workers rebuild
    from the stored config) with the rule they ran under; the shipped default judges the objective."""
    from omegaconf import OmegaConf, open_dict

    from microdesign.campaign.build import build_evaluator

    cfg = compose("campaign", [])
    assert build_evaluator(cfg).adaptive_target == "objective"
    older = OmegaConf.create(OmegaConf.to_container(cfg, resolve=True))
    with open_dict(older):
        del older.campaign["adaptive_target"]
    assert build_evaluator(older).adaptive_target == "every_metric"
