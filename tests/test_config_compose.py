"""Every root config composes; every option of every group a root uses composes and, where it has a
``_target_``, instantiates (DESIGN.md §4)."""

from pathlib import Path

import pytest
import yaml
from hydra.utils import instantiate

from microdesign.config import compose, conf_dir

ROOTS = sorted(p.stem for p in conf_dir().glob("*.yaml"))


def _groups_of(root: str) -> list[str]:
    data = yaml.safe_load((conf_dir() / f"{root}.yaml").read_text()) or {}
    out = []
    for entry in data.get("defaults", []):
        if isinstance(entry, dict):
            key = next(iter(entry))
            key = key.replace("override ", "").replace("optional ", "").split("@")[0].strip("/ ")
            if (conf_dir() / key).is_dir():
                out.append(key)
    return out


CASES = [(root, group, option.stem) for root in ROOTS for group in _groups_of(root)
         for option in sorted((conf_dir() / group).glob("*.yaml"))]


@pytest.mark.parametrize("root", ROOTS)
def test_root_composes(root):
    cfg = compose(root)
    assert cfg is not None


@pytest.mark.parametrize("root, group, option", CASES, ids=[f"{r}:{g}={o}" for r, g, o in CASES])
def test_group_option_composes_and_instantiates(root, group, option):
    cfg = compose(root, [f"{group}={option}"])
    node = cfg.get(group)
    if node is not None and hasattr(node, "get") and node.get("_target_"):
        assert instantiate(node) is not None
