"""Fixtures of the campaign tests: one local Ray (2 CPUs) for the whole test session."""

from __future__ import annotations

import os

import pytest


@pytest.fixture(scope="session")
def ray_address():
    """Address of a local Ray with 2 CPUs, started once per test session and shut down at its end;
    skips the test where Ray is not installed (the ``ray`` extra)."""
    ray = pytest.importorskip("ray", reason='Ray is not installed (pip install -e ".[ray]" or ".[test]")')
    os.environ.setdefault("RAY_ENABLE_UV_RUN_RUNTIME_ENV", "0")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    try:
        yield ray.get_runtime_context().gcs_address
    finally:
        ray.shutdown()
