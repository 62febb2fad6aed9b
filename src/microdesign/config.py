"""Locating and composing the Hydra configuration.

The configuration tree lives in ``conf/`` at the repository root (editable installs) and is shipped
inside the wheel as ``microdesign/conf``. ``MICRODESIGN_CONF_DIR`` overrides both.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

_PACKAGE_DIR = Path(__file__).resolve().parent


def _first_existing(candidates: list[Path], what: str) -> Path:
    for candidate in candidates:
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"no {what} directory found; looked in {[str(c) for c in candidates]}")


def conf_dir() -> Path:
    """The Hydra configuration directory.

    Raises:
        FileNotFoundError: neither ``$MICRODESIGN_CONF_DIR``, ``microdesign/conf`` nor ``<repo>/conf`` exists.
    """
    env = os.environ.get("MICRODESIGN_CONF_DIR")
    candidates = [Path(env)] if env else []
    candidates += [_PACKAGE_DIR / "conf", _PACKAGE_DIR.parents[1] / "conf"]
    return _first_existing(candidates, "configuration")


def models_dir() -> Path:
    """Directory of shipped generator checkpoints (``models/``)."""
    env = os.environ.get("MICRODESIGN_MODELS_DIR")
    candidates = [Path(env)] if env else []
    candidates += [_PACKAGE_DIR / "models", _PACKAGE_DIR.parents[1] / "models"]
    return _first_existing(candidates, "models")


def compose(config_name: str, overrides: list[str] | None = None) -> DictConfig:
    """Compose a root config of ``conf/`` with Hydra overrides, as the command line does.

    Args:
        config_name: root config file name without ``.yaml`` (e.g. ``"process"``).
        overrides: Hydra override strings (``["process.calendering.line_load_N_mm=800"]``).

    Returns:
        The composed configuration (interpolations unresolved).

    Raises:
        hydra.errors.MissingConfigException / ConfigCompositionException: unknown config or bad override.
    """
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(conf_dir()), version_base="1.3", job_name=config_name):
        return hydra_compose(config_name=config_name, overrides=list(overrides or []))


def _is_group(key: str) -> bool:
    return (conf_dir() / key.split("/")[0]).is_dir()


def _allowed_by_target(node: Any) -> list[str] | None:
    """Keyword arguments the ``_target_`` of ``node`` accepts (None: unknown, or it takes ``**kwargs``)."""
    import inspect

    from hydra.utils import get_object

    try:
        target = get_object(str(node["_target_"]))
        params = inspect.signature(target).parameters.values()
    except Exception:  # noqa: BLE001 - an unresolvable target is reported when it is instantiated
        return None
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
        return None
    return [p.name for p in params if p.kind is not inspect.Parameter.VAR_POSITIONAL]


def _check_type(key: str, default: Any, value: Any) -> None:
    """``value`` (an override) has the scalar type of ``default`` (the config's own value), or is null."""
    from microdesign.errors import ConfigError

    if isinstance(value, str) and "${" in value:
        return  # an interpolation: resolved and checked by the reader
    last = key.rsplit(".", 1)[-1]
    if (last == "seed" or last.endswith("_seed")) and value is not None:
        # every seed goes to numpy.random.SeedSequence or torch.manual_seed: a non-negative integer
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ConfigError(key, value, "a non-negative integer seed")
        return
    if isinstance(default, list) and isinstance(value, str):
        raise ConfigError(key, value, f"a list like the default {default}")
    if value is None or isinstance(default, str) or default is None or isinstance(default, (list, dict)):
        return
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise ConfigError(key, value, "true or false")
        return
    if isinstance(default, int):
        ok = isinstance(value, int) and not isinstance(value, bool)
        if isinstance(value, float):
            ok = value.is_integer()
        elif isinstance(value, str):
            ok = _parses(int, value)
        if not ok:
            raise ConfigError(key, value, f"an integer (like the default {default})")
        return
    if isinstance(default, float):
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        if isinstance(value, str):
            ok = _parses(float, value)
        if not ok:
            raise ConfigError(key, value, f"a number (like the default {default})")


def _parses(kind: type, text: str) -> bool:
    """Whether ``kind(text)`` succeeds (``int`` or ``float`` of an override string)."""
    try:
        kind(text)
    except ValueError:
        return False
    return True


def check_overrides(config_name: str, overrides: list[str]) -> None:
    """Refuse command-line overrides that Hydra accepts but that would be silently wrong or fail late.

    * a value of the wrong type for its option (``campaign.budget.max_evaluations=ten``: the option's
      value in ``conf/`` is an integer): the type of the configured value decides (a string for a
      list is refused; null, strings and mappings are not checked here); a seed (``seed``,
      ``*_seed``) that is not a non-negative integer (NumPy's ``SeedSequence`` refuses it);
    * a key added with ``+`` that is not an option: under a node with a ``_target_``, a name its
      target does not take; elsewhere, a name close to an existing option (a misspelling such as
      ``+campaign.budget.max_evals``). New entries of open mappings (``+reference.synth.NAME``,
      ``+design_space.parameters.NAME``) pass. ``++`` (force-add) is never checked.

    Args:
        config_name: root config file name without ``.yaml``.
        overrides: the Hydra override strings of the command line.

    Raises:
        ConfigError: naming the option, its value and what was expected (the nearest option names
            for an unknown key).
    """
    import difflib

    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.core.override_parser.types import OverrideType
    from omegaconf import OmegaConf

    from microdesign.errors import ConfigError

    parsed = OverridesParser.create().parse_overrides(list(overrides))
    values = [o for o in parsed if o.package is None and not _is_group(o.key_or_group)
              and o.type in (OverrideType.CHANGE, OverrideType.ADD)]
    if not values:
        return
    groups = [o.input_line for o in parsed if o not in values]
    try:
        base = OmegaConf.to_container(compose(config_name, groups), resolve=False)
    except Exception:  # noqa: BLE001 - the groups need a value override to compose: nothing to compare with
        return
    for o in values:
        parts = o.key_or_group.split(".")
        node: Any = base
        depth = 0
        while depth < len(parts) and isinstance(node, dict) and parts[depth] in node:
            node = node[parts[depth]]
            depth += 1
        if o.type is OverrideType.CHANGE:
            if depth == len(parts):
                _check_type(o.key_or_group, node, o.value())
            continue
        if depth == len(parts) or not isinstance(node, dict):
            continue  # Hydra itself refuses '+' on an existing key
        new = parts[depth]
        parent = ".".join(parts[:depth]) or "<root>"
        names = [k for k in node if not str(k).startswith("_")]
        allowed = _allowed_by_target(node) if "_target_" in node else None
        if allowed is not None:
            if new not in allowed:
                close = difflib.get_close_matches(new, allowed, n=3, cutoff=0.6)
                raise ConfigError(o.key_or_group, o.value(), f"an option of {parent} ({node['_target_']}): "
                                  + (f"did you mean {close}?" if close else f"one of {sorted(allowed)}"))
            continue
        close = difflib.get_close_matches(new, [str(k) for k in names], n=3, cutoff=0.6)
        if close:
            raise ConfigError(o.key_or_group, o.value(), f"an existing option of {parent}: did you mean "
                              f"{[f'{parent}.{c}' if parent != '<root>' else c for c in close]}? "
                              "(without '+' to change it)")
