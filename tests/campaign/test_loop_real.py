"""The closed loop with the real stages (shipped generator, characterisation, PyBaMM 4680) at toy sizes
(about 12 s on an idle 2-core CPU)."""

from __future__ import annotations

import math

import numpy as np

from microdesign.campaign.build import run_campaign
from microdesign.characterise.metrics import POROSITY, TORTUOSITY_THROUGH_PLANE
from microdesign.config import compose
from microdesign.storage import CampaignStore


def test_real_stages_smoke_campaign(tmp_path):
    path = tmp_path / "real.h5"
    cfg = compose("campaign", ["experiment=smoke", "campaign.progress=false", f"output={path}",
                               "campaign.budget.max_evaluations=3", "objective.noise=propagate"])
    assert run_campaign(cfg) == 0
    head, trials = CampaignStore(path).load()
    assert len(trials) == 3 and all(t.finished for t in trials)
    assert head["generator_name"] == compose("campaign").generator.checkpoint  # the shipped model
    assert len(head["generator_weights_sha256"]) == 64
    ok = [t for t in trials if t.status == "completed"]
    for t in trials:  # a failure is a stage's recorded reason, never an exception
        assert t.status == "completed" or t.reason.split(":")[0] in ("generator", "characterise", "cell", "objective")
    # 16^3 cubes may fail percolation (a recorded reason; 1 of 3 completes with this seed), but a run in
    # which no trial completes checks nothing below and is a defect
    assert ok, [t.reason for t in trials]
    for t in ok:
        assert t.volume.shape == (16, 16, 16) and set(np.unique(t.volume)) <= {0, 1, 2}
        assert t.metrics.n_cubes == 3 and t.metrics[TORTUOSITY_THROUGH_PLANE].mean >= 1.0
        # the cell saw the measured porosity; energy density is that of a 4680 at 10 W
        assert t.cell.cell_format.endswith("4680") and 200 < t.objective.raw_value < 1500
        assert math.isfinite(t.objective.variance) and t.objective.variance >= 0
        assert abs(t.metrics[POROSITY].mean - t.inputs["porosity"]) < 0.25
