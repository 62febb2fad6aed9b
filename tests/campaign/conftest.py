"""Fixtures of the campaign tests: one local Ray (2 CPUs) for the whole test session, and a stand-in for
killing the campaign process in the middle of an evaluation."""

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


class Killed(BaseException):
    """Stands in for SIGKILL: not an Exception, so no stage catches it."""


@pytest.fixture
def kill_campaign_at():
    """``kill_campaign_at(campaign, call)``: the ``call``-th evaluation of ``campaign`` (1-based) raises
    :class:`Killed` after the trial was recorded ``running``; returns :class:`Killed` for ``pytest.raises``."""

    def arm(campaign, call: int) -> type[Killed]:
        evaluate, calls = campaign.evaluator.evaluate, [0]

        def dying(inputs, seed):
            calls[0] += 1
            if calls[0] == call:
                raise Killed
            return evaluate(inputs, seed)

        campaign.evaluator.evaluate = dying
        return Killed

    return arm
