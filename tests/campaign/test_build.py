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
