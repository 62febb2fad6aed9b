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


@pytest.mark.slow  # two processes start (about 20 s on two cores); test_build covers the logic in-process
def test_two_campaigns_started_at_once_on_one_output(tmp_path):
    """One runs; the other stops with a clear message and exit code 2 (no traceback), whichever moment
    it finds the other at: the file made, its lock held, or the campaign finished."""
    path = tmp_path / "c.h5"
    args = ["experiment=analytic", "campaign.progress=false", "optimiser=sobol", "campaign.validation.top_k=0",
            "campaign.budget.max_evaluations=2", f"output={path}"]
    procs = [_campaign(*args) for _ in range(2)]
    errs = [p.communicate(timeout=300)[1] for p in procs]
    assert sorted(p.returncode for p in procs) == [0, 2], errs
    err = errs[[p.returncode for p in procs].index(2)]
    assert "invalid input: output" in err and "Traceback" not in err
    assert [t.status for t in CampaignStore(path).load(volumes=False)[1]] == ["completed"] * 2


def test_resume_of_a_file_another_process_writes_is_refused(tmp_path, capsys):
    from microdesign.cli import main

    path = tmp_path / "c.h5"
    p = _campaign(*ARGS, f"output={path}")
    try:
        deadline = time.time() + 120
        while time.time() < deadline and p.poll() is None and _state(path)[1] == 0:
            time.sleep(0.05)
        assert p.poll() is None, p.communicate()[1]
        assert main(["campaign", f"resume={path}"]) == 2
        err = capsys.readouterr().err
        assert f"process {p.pid} holds its writer lock" in err and "resume" in err
    finally:
        p.kill()
        p.wait()
