"""A campaign killed inside a trial and resumed gives the trials, seeds and values of one that ran through.

The kill is simulated in-process: the evaluator raises a ``BaseException`` after the trial was
recorded ``running`` (as ``kill -9`` leaves it), the writer lock is released, and the campaign is
resumed from its file (``resume=<file>``). A re-run keeps the seed of the trial it repeats and takes
its place in the evaluation order and in the surrogate's data; later trials keep their seeds.
"""

from __future__ import annotations

import pytest

from microdesign.campaign.build import open_campaign, run_campaign, validate
from microdesign.config import compose
from microdesign.storage import CampaignStore

ARGS = ["experiment=analytic", "campaign.progress=false", "optimiser.num_restarts=2", "optimiser.raw_samples=32",
        "optimiser.mc_samples=32", "optimiser.maxiter=30", "optimiser.n_initial=4", "optimiser.q=2",
        "campaign.budget.max_evaluations=8", "campaign.validation.top_k=2", "campaign.validation.n_cubes=8"]


def _ordinal(trials):
    """Trial index -> position of its design among the proposed designs (a re-run: its original's)."""
    by_index = {t.index: t for t in trials}
    proposed = sorted(t.index for t in trials if t.rerun_of is None)
    out = {}
    for t in trials:
        x = t
        while x.rerun_of is not None:
            x = by_index[x.rerun_of]
        out[t.index] = proposed.index(x.index)
    return out


def _by_design(trials):
    """Finished trials keyed by the position of their design among the proposed designs."""
    ordinal = _ordinal(trials)
    return {ordinal[t.index]: t for t in trials if t.finished}


@pytest.mark.parametrize("kill_at", [3, 6])  # a Sobol trial (first of its batch of 2), a qLogNEI trial
def test_killed_and_resumed_equals_uninterrupted(tmp_path, kill_at, kill_campaign_at):
    ref = tmp_path / "ref.h5"
    assert run_campaign(compose("campaign", ARGS + [f"output={ref}"])) == 0
    path = tmp_path / "killed.h5"
    campaign = open_campaign(validate(compose("campaign", ARGS + [f"output={path}"])))
    with pytest.raises(kill_campaign_at(campaign, kill_at)):
        campaign.run()
    campaign.store.close()  # the kernel releases the lock of a killed process
    _, before = CampaignStore(path).load(volumes=False)
    assert sum(t.status == "running" for t in before) == 1
    assert run_campaign(compose("campaign", [f"resume={path}"])) == 0

    _, expected = CampaignStore(ref).load(volumes=False)
    _, got = CampaignStore(path).load(volumes=False)
    assert [t.status for t in got].count("abandoned") == 1 and sum(t.method == "rerun" for t in got) == 1
    want, have = _by_design(expected), _by_design(got)
    assert sorted(want) == sorted(have) and len(want) == 8
    for i, t in want.items():
        h = have[i]
        assert (h.inputs, h.seed, h.status) == (t.inputs, t.seed, t.status), i
        assert h.objective.value == t.objective.value, i
    # the final re-evaluation draws the same fresh cubes for the same designs
    val_want = {_ordinal(expected)[v.index]: v for v in CampaignStore(ref).load_validations()}
    val_have = {_ordinal(got)[v.index]: v for v in CampaignStore(path).load_validations()}
    assert sorted(val_want) == sorted(val_have) and len(val_want) == 2
    for i, v in val_want.items():
        assert (val_have[i].seed, val_have[i].objective.value) == (v.seed, v.objective.value)
