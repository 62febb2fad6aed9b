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
def shared_data() -> Path:
    """The real NMC images in ``../shared/data`` beside the repository (the one place tests find them).

    Skips the requesting test, with the reason, where that folder is absent (a bare checkout).
    """
    if not SHARED_DATA.is_dir():
        pytest.skip("real NMC images not available: ../shared/data beside the repository is absent")
    return SHARED_DATA
