"""Shared fixtures: repository paths and the real data folder (skip where absent)."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture(scope="session")
def load_script():
    """A loader: ``load_script(name)`` imports ``scripts/<name>.py`` (the benchmark and table scripts
    are not a package) as a module."""
    import importlib.util

    def load(name: str):
        spec = importlib.util.spec_from_file_location(name, REPO_ROOT / "scripts" / f"{name}.py")
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        return mod

    return load


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The public NMC images (docs/public_data.md) in the folder ``shared/data`` next to the repository checkout.

    This fixture is the one place tests find them.

    Skips the requesting test, with the reason, where that folder is absent (a bare checkout).
    """
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real NMC images not available: {SHARED_DATA} is absent (docs/public_data.md)")
    return SHARED_DATA
