"""Trials on Ray workers: overlap (async batch BO), a worker killed mid-trial, sync = local, driver kill -9."""

from __future__ import annotations

import builtins
import os
import signal
import subprocess
import sys
import time

import pytest

from microdesign.campaign.build import open_campaign, run_campaign, validate
from microdesign.campaign.executor import ExecutorSettings, Outcome, WorkerPool
from microdesign.config import compose
from microdesign.errors import ConfigError
from microdesign.storage import CampaignStore

BASE = ["experiment=analytic", "campaign.progress=false", "campaign.validation.top_k=0", "objective.noise=none"]
FAST = ["optimiser.num_restarts=2", "optimiser.raw_samples=32", "optimiser.mc_samples=32", "optimiser.maxiter=30"]


def _run(tmp_path, name, *overrides):
    path = tmp_path / name
    base = BASE if "optimiser=sobol" in overrides else BASE + FAST
    assert run_campaign(compose("campaign", base + [f"output={path}", *overrides])) == 0
    return CampaignStore(path).load(volumes=False)


def _ray(address, *more):
    return ["executor=ray", f"executor.address={address}", "executor.num_workers=2", *more]


def test_settings_are_checked_before_any_work(tmp_path, monkeypatch):
    with pytest.raises(ConfigError, match="executor.mode"):
        ExecutorSettings(kind="ray", mode="eager")
    with pytest.raises(ConfigError, match="executor.num_workers"):
        ExecutorSettings(kind="ray", num_workers=0)
    with pytest.raises(ConfigError, match="executor.kind"):
        ExecutorSettings(kind="dask")
    with pytest.raises(ConfigError, match="executor.workers"):
        ExecutorSettings.from_config({"kind": "ray", "workers": 2})
    real_import = builtins.__import__

    def no_ray(name, *args, **kwargs):
        if name == "ray" or name.startswith("ray."):
            raise ImportError("No module named 'ray'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_ray)
    cfg = compose("campaign", BASE + [f"output={tmp_path / 'c.h5'}", "executor=ray"])
    with pytest.raises(ConfigError, match=r'pip install -e "\.\[ray\]"'):
        validate(cfg)
    assert not (tmp_path / "c.h5").exists()


def test_async_trials_overlap_propose_with_pending_points_and_survive_a_killed_worker(tmp_path, ray_address):
    """Two workers run two trials at once; in the GP phase each proposal sees the running trial as a
    pending point; the first cell simulation kills its worker: that trial is abandoned and re-run with
    the same inputs and seed on a new worker, and the campaign goes on to its budget."""
    flag = tmp_path / "killed-once"
    head, trials = _run(tmp_path, "a.h5", *_ray(ray_address), "cell.delay_s=0.3", "optimiser.n_initial=3",
                        f"cell.kill_process_once_flag={flag}", "campaign.budget.max_evaluations=6")
    assert flag.exists()
    lost = [t for t in trials if t.status == "abandoned"]
    assert len(lost) == 1 and lost[0].reason.startswith("worker lost")
    rerun = [t for t in trials if t.rerun_of == lost[0].index]
    assert len(rerun) == 1 and rerun[0].status == "completed"
    assert (rerun[0].inputs, rerun[0].seed) == (lost[0].inputs, lost[0].seed)
    done = [t for t in trials if t.status == "completed"]
    assert len(done) == 6 and head["stop_reason"].startswith("evaluation budget")
    assert {t.method for t in done} == {"sobol", "qLogNEI", "rerun"}
    assert all(t.worker and t.started_unix <= t.finished_unix for t in trials)
    assert len({t.worker for t in done}) >= 2
    spans = sorted((t.started_unix, t.finished_unix) for t in trials)
    assert any(b[0] < a[1] for a, b in zip(spans, spans[1:])), spans  # a trial started before the previous ended
    # asynchronous: one proposal per freed worker (batches of one), never two running trials alike
    fresh = [t for t in trials if t.method != "rerun"]
    assert len({t.batch for t in fresh}) == len(fresh)
    assert len({tuple(t.inputs.values()) for t in fresh}) == len(fresh)


class _LosingPool(WorkerPool):
    """In-process stand-in for the Ray workers whose every worker dies during its trial."""

    def __init__(self, settings):
        self.settings, self.running = settings, []

    @property
    def idle(self):
        return self.settings.num_workers - len(self.running)

    def submit(self, index, inputs, seed, n_cubes=None):
        self.running.append(index)

    def wait(self):
        out, self.running = [Outcome(i, None, f"w{i}", "ActorDiedError: killed") for i in self.running], []
        return out


def test_a_design_whose_worker_dies_on_every_try_fails_after_the_retries(tmp_path):
    cfg = compose("campaign", BASE + ["optimiser=sobol", "campaign.budget.max_evaluations=2", f"output={tmp_path / 'f.h5'}"])
    campaign = open_campaign(validate(cfg))
    campaign.executor = _LosingPool(ExecutorSettings(kind="ray", num_workers=2, max_retries=1))
    try:
        assert campaign.run().startswith("evaluation budget")
    finally:
        campaign.store.close()
    trials = CampaignStore(tmp_path / "f.h5").load(volumes=False)[1]
    assert [t.status for t in trials] == ["abandoned", "abandoned", "failed", "failed"]
    assert [t.rerun_of for t in trials] == [None, None, 0, 1]
    assert all("worker lost 2 times" in t.reason and "ActorDiedError" in t.reason for t in trials[2:])
    assert trials[2].seed == trials[0].seed and trials[2].inputs == trials[0].inputs


def test_sync_mode_gives_the_local_campaign(tmp_path, ray_address):
    over = ["optimiser.q=2", "optimiser.n_initial=3", "campaign.budget.max_evaluations=6", "objective.noise=propagate"]
    _, local = _run(tmp_path, "local.h5", *over)
    _, remote = _run(tmp_path, "ray.h5", *over, *_ray(ray_address, "executor.mode=sync"))
    assert [t.method for t in local] == ["sobol"] * 4 + ["qLogNEI"] * 2
    for a, b in zip(local, remote, strict=True):
        assert (a.index, a.batch, a.method, a.seed, a.inputs) == (b.index, b.batch, b.method, b.seed, b.inputs)
        assert (a.objective.value, a.objective.variance) == (b.objective.value, b.objective.variance)
        assert a.worker is None and b.worker


def _campaign(*args: str) -> subprocess.Popen:
    code = "import sys; from microdesign.cli import main; sys.exit(main(sys.argv[1:]))"
    return subprocess.Popen([sys.executable, "-c", code, "campaign", *args], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)


@pytest.mark.slow  # two campaign processes that start Ray workers: ~40 s on a 2-core machine
def test_resume_of_a_ray_campaign_killed_with_sigkill(tmp_path, ray_address):
    """The campaign process (the Ray driver) is killed with SIGKILL while two trials run on workers;
    a resume keeps every finished trial, re-runs the running ones with the same inputs and seeds."""
    path = tmp_path / "c.h5"
    args = [*BASE, *_ray(ray_address), "optimiser=sobol", "cell.delay_s=1.0", "campaign.budget.max_evaluations=6"]
    p = _campaign(*args, f"output={path}")
    deadline = time.time() + 120
    before = []
    while time.time() < deadline and p.poll() is None:
        try:
            before = CampaignStore(path).load(volumes=False)[1]
        except OSError:
            before = []
        if sum(t.finished for t in before) >= 2 and sum(t.status == "running" for t in before) == 2:
            break
        time.sleep(0.05)
    os.kill(p.pid, signal.SIGKILL)
    p.wait()
    before = CampaignStore(path).load(volumes=False)[1]
    done_before = {t.index: t for t in before if t.finished}
    running = [t for t in before if t.status == "running"]
    assert len(done_before) >= 2 and running, [t.status for t in before]

    r = _campaign(f"resume={path}")
    _, err = r.communicate(timeout=180)
    assert r.returncode == 0, err
    after = CampaignStore(path).load(volumes=False)[1]
    by_index = {t.index: t for t in after}
    for i, t in done_before.items():
        assert (by_index[i].status, by_index[i].objective.value, by_index[i].worker) == (t.status, t.objective.value,
                                                                                        t.worker)
    for t in running:
        assert by_index[t.index].status == "abandoned"
        again = [x for x in after if x.rerun_of == t.index]
        assert len(again) == 1 and again[0].status == "completed"
        assert (again[0].inputs, again[0].seed) == (t.inputs, t.seed)
    assert sum(t.finished for t in after) == 6
    fresh = [tuple(t.inputs.values()) for t in after if t.method != "rerun"]
    assert len(set(fresh)) == len(fresh)


def test_split_cubes_gives_the_unsplit_characterisation(ray_address):
    """One design's cubes measured by Ray tasks of 3 cubes each: the same per-cube values, CI and
    result as the characteriser on its own; a stand-in without per-cube measurement is refused."""
    import numpy as np

    from microdesign.campaign.build import instantiate
    from microdesign.campaign.executor import CubeFanOut
    from microdesign.campaign.stubs import StubCharacteriser, StubGenerator

    cfg = compose("campaign", ["characterise=fast"]).characterise
    cubes = StubGenerator().sample({"am_weight_fraction": 0.92, "porosity": 0.45}, n=5, size_voxels=16, seed=3)
    plain = instantiate(cfg, "characterise").characterise(cubes, 4e-7)
    split = instantiate(cfg, "characterise")
    CubeFanOut(split, cfg, cubes_per_task=3, resources={"num_cpus": 1})
    fanned = split.characterise(cubes, 4e-7)
    assert plain.ok and fanned.ok and fanned.n_cubes == 5
    for key, e in plain.estimates.items():
        assert np.array_equal(fanned[key].values, e.values) and fanned[key].ci95_half_width == e.ci95_half_width
    with pytest.raises(ConfigError, match="executor.split_cubes"):
        CubeFanOut(StubCharacteriser(), cfg, 2, {"num_cpus": 1})
    bad = compose("campaign", BASE + ["executor=ray", "executor.split_cubes=true", "output=unused.h5"])
    with pytest.raises(ConfigError, match="per-cube measurement"):
        validate(bad)
