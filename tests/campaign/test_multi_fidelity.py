"""Multi-fidelity campaigns: each trial runs and is recorded at its level, the validation at the highest
level, a kill -9 resumes to the uninterrupted campaign, Ray workers run the same levels (docs/multi_fidelity.md)."""

from __future__ import annotations

import pytest

from microdesign.campaign.build import open_campaign, run_campaign, validate
from microdesign.config import compose
from microdesign.errors import ConfigError
from microdesign.storage import CampaignStore

# the stub stages measure i.i.d. voxels: small cubes scatter more, as the real small cubes do
LEVELS = [{"name": "low", "fidelity": 0.5, "cost_s": 1.0, "n_cubes": 2, "cube_size_voxels": 8},
          {"name": "high", "fidelity": 1.0, "cost_s": 10.0, "n_cubes": 4, "cube_size_voxels": 16}]
ARGS = ["experiment=analytic", "campaign.progress=false", "optimiser=multi_fidelity", "fidelity_levels=two_level",
        "optimiser.num_restarts=2", "optimiser.raw_samples=32", "optimiser.maxiter=30", "optimiser.num_candidates=200",
        "optimiser.n_initial=4", "optimiser.n_initial_high=1", "campaign.budget.max_evaluations=7",
        "campaign.validation.top_k=2",
        "optimiser.refit_costs=false"]  # level choices independent of measured times: runs comparable trial by trial


def _cfg(*overrides: str):
    cfg = compose("campaign", ARGS + list(overrides))
    cfg.fidelity_levels.levels = LEVELS
    return cfg


def _side(t) -> int:
    return int(t.volume.shape[0])


def test_evaluator_runs_the_level_of_the_design():
    """A design with a fidelity gets its level's cube side and count; the adaptive campaign setting and a
    fixed count (the final validation's) give way to the level; an unknown fidelity is a failed trial."""
    from microdesign.campaign.evaluate import TrialEvaluator
    from microdesign.campaign.multi_fidelity import evaluation_seconds
    from microdesign.campaign.stubs import StubCell, StubCharacteriser, StubGenerator
    from microdesign.characterise.metrics import POROSITY
    from microdesign.objective import CellQuantity
    from microdesign.optim.cost import parse_levels
    from microdesign.storage import TrialRecord

    ev = TrialEvaluator(StubGenerator(), StubCharacteriser(), StubCell(), CellQuantity("volumetric_energy_density_Wh_L", noise="none"),
                        ["am_weight_fraction", "porosity", "cbd_adhesion"], cube_size_voxels=32, n_cubes=3,
                        adaptive=True, levels=parse_levels(LEVELS))
    design = {"am_weight_fraction": 0.94, "porosity": 0.35, "cbd_adhesion": 0.5, "mass_loading_mg_cm2": 25.0}
    low = ev.evaluate({**design, "fidelity": 0.5}, seed=1)
    high = ev.fixed_cubes(12).evaluate({**design, "fidelity": 1.0}, seed=1)
    plain = ev.evaluate(design, seed=1)  # no level: the campaign's own settings
    assert low.status == high.status == plain.status == "completed"
    assert (low.volume.shape[0], high.volume.shape[0], plain.volume.shape[0]) == (8, 16, 32)
    assert len(low.metrics[POROSITY].values) == 2 and len(high.metrics[POROSITY].values) == 4
    # small cubes of i.i.d. voxels scatter more: a wider CI at the low level
    assert low.metrics[POROSITY].ci95_half_width > high.metrics[POROSITY].ci95_half_width
    bad = ev.evaluate({**design, "fidelity": 0.7}, seed=1)
    assert bad.status == "failed" and "fidelity" in bad.reason
    t = TrialRecord(index=0, batch=0, status="completed", method="sobol", inputs={}, seed=0,
                    timings={"propose": 5.0, "generator": 1.0, "characterise": 2.0, "cell": 0.5, "objective": 0.25, "cpu": 9.0})
    assert evaluation_seconds(t) == 3.75  # the evaluation's stages only


def test_trials_run_and_are_recorded_at_their_level_and_validation_at_the_highest(tmp_path):
    path = tmp_path / "mf.h5"
    campaign = open_campaign(validate(_cfg(f"output={path}")))
    campaign.run()
    assert campaign.final_validation.n_cubes == 4  # the highest level's count
    fidelity, seconds = campaign._proposer_kwargs()["timings"]  # what the cost model is refitted from
    assert sorted(fidelity) == sorted(t.inputs["fidelity"] for t in campaign.trials) and (seconds > 0).all()
    campaign.store.close()
    store = CampaignStore(path)
    _, trials = store.load(volumes=True)
    validations = store.load_validations(volumes=True)
    assert len(trials) == 7 and all(t.status == "completed" for t in trials)
    assert [t.inputs["fidelity"] for t in trials[:4]] == [1.0, 0.5, 0.5, 0.5]  # the initial design
    assert [t.method for t in trials] == ["sobol"] * 4 + ["qMFMES"] * 3
    for t in trials:  # the evaluator ran the level's cubes (the stored representative cube's side)
        assert _side(t) == {0.5: 8, 1.0: 16}[t.inputs["fidelity"]]
        assert t.metrics is not None and t.timings["characterise"] >= 0
    assert len(validations) == 2
    for v in validations:  # validated at the highest level, fresh cubes
        assert v.inputs["fidelity"] == 1.0 and _side(v) == 16 and v.status == "completed"
        original = next(t for t in trials if t.index == v.index)
        assert v.seed != original.seed
        assert {k: x for k, x in v.inputs.items() if k != "fidelity"} == \
            {k: x for k, x in original.inputs.items() if k != "fidelity"}


def test_levels_without_the_multi_fidelity_optimiser_and_the_reverse_are_refused(tmp_path):
    with pytest.raises(ConfigError) as e:
        validate(compose("campaign", ["experiment=analytic", "fidelity_levels=two_level", f"output={tmp_path / 'a.h5'}"]))
    assert e.value.parameter == "fidelity_levels"
    with pytest.raises(ConfigError) as e:
        validate(compose("campaign", ["experiment=analytic", "optimiser=multi_fidelity", f"output={tmp_path / 'b.h5'}"]))
    assert e.value.parameter == "fidelity_levels.levels"
    assert not (tmp_path / "a.h5").exists() and not (tmp_path / "b.h5").exists()


@pytest.mark.parametrize("name, low, high", [
    ("two_level", (3, 48), (16, 128)),       # the representative high level
    ("cpu_two_level", (2, 48), (4, 80)),     # the CPU-sized levels of the real-pipeline benchmark
])
def test_shipped_level_sets_compose_and_the_evaluator_runs_their_cubes(tmp_path, name, low, high):
    """Each shipped level set builds the proposer (cheap level first, the highest at fidelity 1, the
    low level's prior cost below the high one's) and an evaluator whose levels set the cube count and side."""
    setup = validate(compose("campaign", ["experiment=analytic", "optimiser=multi_fidelity", f"fidelity_levels={name}",
                                          f"output={tmp_path / 'c.h5'}"]))
    levels = setup.proposer.levels
    assert [lv.fidelity for lv in levels] == [0.5, 1.0] and levels[0].cost_s < levels[1].cost_s
    for lv, (n, side) in zip(levels, (low, high)):
        ev = setup.evaluator.at_level(lv.fidelity)
        assert (ev.n_cubes, ev.cube_size_voxels, ev.adaptive) == (n, side, False)
    assert not (tmp_path / "c.h5").exists()  # validate builds the stages, it writes nothing


@pytest.mark.parametrize("kill_at", [2, 6])  # a low-level Sobol trial, a model-based trial
def test_killed_and_resumed_keeps_levels_and_equals_uninterrupted(tmp_path, kill_at, kill_campaign_at):
    ref = tmp_path / "ref.h5"
    assert run_campaign(_cfg(f"output={ref}")) == 0
    path = tmp_path / "killed.h5"
    campaign = open_campaign(validate(_cfg(f"output={path}")))
    with pytest.raises(kill_campaign_at(campaign, kill_at)):
        campaign.run()
    campaign.store.close()  # the kernel releases the lock of a killed process
    assert run_campaign(compose("campaign", [f"resume={path}"])) == 0

    _, expected = CampaignStore(ref).load(volumes=False)
    _, got = CampaignStore(path).load(volumes=False)
    rerun = next(t for t in got if t.method == "rerun")
    abandoned = next(t for t in got if t.status == "abandoned")
    assert rerun.rerun_of == abandoned.index and rerun.inputs == abandoned.inputs  # same design, same level
    want = [t for t in expected if t.finished]
    have = sorted((t for t in got if t.finished), key=lambda t: (t.rerun_of if t.rerun_of is not None else t.index))
    assert len(want) == len(have) == 7
    for a, b in zip(want, have, strict=True):
        assert (a.inputs, a.seed) == (b.inputs, b.seed)
        assert a.objective.value == b.objective.value
    # the final validation re-evaluates the same designs at the highest level with the same fresh cubes
    def validated(path):
        return sorted((sorted(v.inputs.items()), v.seed, v.objective.value) for v in CampaignStore(path).load_validations())

    assert validated(path) == validated(ref) and len(validated(ref)) == 2


def test_ray_workers_run_the_levels_of_the_local_campaign(tmp_path, ray_address):
    local, remote = tmp_path / "local.h5", tmp_path / "ray.h5"
    assert run_campaign(_cfg(f"output={local}", "campaign.validation.top_k=1")) == 0
    assert run_campaign(_cfg(f"output={remote}", "campaign.validation.top_k=1", "executor=ray",
                             f"executor.address={ray_address}", "executor.num_workers=2", "executor.mode=sync")) == 0
    _, a = CampaignStore(local).load(volumes=True)
    _, b = CampaignStore(remote).load(volumes=True)
    for x, y in zip(a, b, strict=True):
        assert (x.inputs, x.seed, x.method) == (y.inputs, y.seed, y.method)
        assert x.objective.value == y.objective.value and _side(x) == _side(y)
        assert y.worker
    va, vb = CampaignStore(local).load_validations(), CampaignStore(remote).load_validations()
    assert [(v.index, v.inputs, v.objective.value) for v in va] == [(v.index, v.inputs, v.objective.value) for v in vb]


def test_async_ray_workers_propose_with_pending_levels(tmp_path, ray_address):
    """Asynchronous batches: each proposal sees the running trials, with their levels, as pending points."""
    path = tmp_path / "async.h5"
    cfg = _cfg(f"output={path}", "campaign.validation.top_k=1", "executor=ray", f"executor.address={ray_address}",
               "executor.num_workers=2", "executor.mode=async", "optimiser.refit_costs=true")
    assert run_campaign(cfg) == 0
    _, trials = CampaignStore(path).load(volumes=True)
    assert len(trials) == 7 and all(t.status == "completed" and t.worker for t in trials)
    assert any(t.method == "qMFMES" for t in trials)
    for t in trials:
        assert _side(t) == {0.5: 8, 1.0: 16}[t.inputs["fidelity"]]
    (v,) = CampaignStore(path).load_validations(volumes=True)
    assert v.inputs["fidelity"] == 1.0 and _side(v) == 16
