"""Package import settings (microdesign/__init__.py)."""

from __future__ import annotations

import os
import subprocess
import sys


def _wait_policy_after_import(env: dict[str, str]) -> str:
    code = "import microdesign, torch, os; print(os.environ.get('OMP_WAIT_POLICY'))"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    return out.stdout.strip()


def test_openmp_threads_wait_passively_unless_the_user_chose():
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    assert _wait_policy_after_import(env) == "PASSIVE"
    assert _wait_policy_after_import({**env, "OMP_WAIT_POLICY": "ACTIVE"}) == "ACTIVE"
