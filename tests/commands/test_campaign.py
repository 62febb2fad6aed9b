"""Resume after kill -9 of a real `microdesign campaign` process: nothing finished is lost or repeated."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from microdesign.storage import CampaignStore

# Sobol phase only (n_initial > budget) keeps the proposals instant; each cell simulation sleeps
# 1 s so that the kill lands while a trial is running.
ARGS = ["experiment=analytic", "campaign.progress=false", "optimiser.n_initial=50", "optimiser.q=2",
        "cell.delay_s=1.0", "objective.noise=none", "campaign.budget.max_evaluations=7"]


def _campaign(*args: str) -> subprocess.Popen:
    code = "import sys; from microdesign.cli import main; sys.exit(main(sys.argv[1:]))"
    return subprocess.Popen([sys.executable, "-c", code, "campaign", *args], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)


def _state(path) -> tuple[int, int]:
    """(finished, running) trial counts, (0, 0) before the file exists."""
    try:
        trials = CampaignStore(path).load(volumes=False)[1]
    except OSError:
        return 0, 0
    return sum(t.finished for t in trials), sum(t.status == "running" for t in trials)


@pytest.mark.parametrize("policy", ["rerun", pytest.param("abandon", marks=pytest.mark.slow)])
def test_resume_after_sigkill(tmp_path, policy):
    path = tmp_path / "c.h5"
    p = _campaign(*ARGS, f"output={path}", f"campaign.on_resume_running={policy}")
    deadline = time.time() + 120
    while time.time() < deadline and p.poll() is None:
        done, run = _state(path)
        if done >= 3 and run:
            break
        time.sleep(0.05)
    os.kill(p.pid, signal.SIGKILL)  # a trial is running (its cell simulation sleeps 1 s)
    p.wait()
    _, before = CampaignStore(path).load()
    done_before = {t.index: t for t in before if t.finished}
    assert len(done_before) >= 3
    running = [t for t in before if t.status == "running"]
    assert running, [t.status for t in before]  # the kill landed inside a trial

    r = _campaign(f"resume={path}")
    _, err = r.communicate(timeout=300)
    assert r.returncode == 0, err
    _, after = CampaignStore(path).load()
    by_index = {t.index: t for t in after}
    # nothing finished was lost or changed
    for i, t in done_before.items():
        a = by_index[i]
        assert (a.status, a.inputs, a.seed) == (t.status, t.inputs, t.seed)
        assert a.objective.value == t.objective.value
    # the budget counts every finished trial once; indices are unique
    finished = [t for t in after if t.finished]
    assert len(finished) == 7 and len(by_index) == len(after)
    # trials killed while running are abandoned; with `rerun` repeated with the same inputs and seed
    for t in running:
        assert by_index[t.index].status == "abandoned"
        reruns = [x for x in after if x.rerun_of == t.index]
        if policy == "rerun":
            assert len(reruns) == 1 and reruns[0].inputs == t.inputs and reruns[0].seed == t.seed
            assert reruns[0].finished
        else:
            assert not reruns
    # the Sobol sequence continues: no design proposed twice except as an explicit re-run
    fresh = [tuple(t.inputs.values()) for t in after if t.method != "rerun"]
    assert len(set(fresh)) == len(fresh)
