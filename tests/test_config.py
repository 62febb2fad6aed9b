"""Every root config composes; every option of every group a root uses composes, and every
``_target_`` in it names an importable object. Instantiation with the stage's
runtime arguments is tested by each stage's own tests (tests/<package>/ and tests/commands/)."""

import pytest
import yaml
from hydra.utils import get_object
from omegaconf import DictConfig, ListConfig

from microdesign.config import compose, conf_dir

ROOTS = sorted(p.stem for p in conf_dir().glob("*.yaml"))


def _groups_of(root: str) -> list[tuple[str, str]]:
    """(group, override key) for every config group in a root's defaults list (``group@package`` kept)."""
    data = yaml.safe_load((conf_dir() / f"{root}.yaml").read_text()) or {}
    out = []
    for entry in data.get("defaults", []):
        if isinstance(entry, dict):
            key = next(iter(entry)).replace("override ", "").replace("optional ", "").strip("/ ")
            group = key.split("@")[0]
            if (conf_dir() / group).is_dir():
                out.append((group, key))
    return out


CASES = [(root, key, option.stem) for root in ROOTS for group, key in _groups_of(root)
         for option in sorted((conf_dir() / group).glob("*.yaml"))]


def _targets(node) -> list[str]:
    if isinstance(node, DictConfig):
        found = [node["_target_"]] if "_target_" in node else []
        for key in node:
            found += _targets(node.get(key))
        return found
    if isinstance(node, ListConfig):
        return [t for item in node for t in _targets(item)]
    return []


@pytest.mark.parametrize("root", ROOTS)
def test_root_composes(root):
    assert compose(root) is not None


@pytest.mark.parametrize("root, key, option", CASES, ids=[f"{r}:{k}={o}" for r, k, o in CASES])
def test_group_option_composes_and_targets_import(root, key, option):
    cfg = compose(root, [f"{key}={option}"])
    for target in _targets(cfg):
        assert callable(get_object(target)), target


@pytest.mark.parametrize("root, overrides", [
    ("cell", ["mode=one", "cell.protocol.kind=constant_current", "+cell.protocol.c_rate=1"]),
    ("cell", ["mode=one", "cell.protocol.c_rate=2", "design.press_density_g_cm3=3.2", "cell.electrode_area_m2=0.1"]),
    ("campaign", ["+design_space.parameters.n_p_ratio={unit: '1', lower: 1.0, upper: 1.2, role: cell}"]),
    ("fidelity", ["+reference.synth.particle_flattening=0.5"]),
    ("campaign", ["campaign.budget.max_evaluations=7", "campaign.budget.max_wall_time_s=60", "seed=3"]),
    ("campaign", ["campaign.n_cubes='4'", "optimiser.min_noise_variance=1", "++campaign.anything=1"]),
])
def test_check_overrides_accepts_valid_additions_and_values(root, overrides):
    from microdesign.config import check_overrides

    compose(root, overrides)
    check_overrides(root, overrides)


@pytest.mark.parametrize("root, override, option, hint", [
    ("campaign", "+campaign.budget.max_evals=5", "campaign.budget.max_evals", "campaign.budget.max_evaluations"),
    ("sample", "+params.porosty=0.3", "params.porosty", "params.porosity"),
    ("sample", "+generator.batchsize=4", "generator.batchsize", "batch_size"),
    ("campaign", "campaign.budget.max_evaluations=ten", "campaign.budget.max_evaluations", "an integer"),
    ("campaign", "campaign.n_cubes=2.5", "campaign.n_cubes", "an integer"),
    ("process", "process.inputs.line_load_N_mm=abc", "process.inputs.line_load_N_mm", "a number"),
    ("campaign", "campaign.progress=yes", "campaign.progress", "true or false"),
])
def test_check_overrides_refuses_wrong_types_and_misspelt_additions(root, override, option, hint):
    from microdesign.config import check_overrides
    from microdesign.errors import ConfigError

    with pytest.raises(ConfigError) as info:
        check_overrides(root, [override])
    assert info.value.parameter == option and hint in str(info.value)
