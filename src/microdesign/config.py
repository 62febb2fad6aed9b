"""Locating and composing the Hydra configuration.

The configuration tree lives in ``conf/`` at the repository root (editable installs) and is shipped
inside the wheel as ``microdesign/conf``. ``MICRODESIGN_CONF_DIR`` overrides both.
"""

from __future__ import annotations

import os
from pathlib import Path

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
