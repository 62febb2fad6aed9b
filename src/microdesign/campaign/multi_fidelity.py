"""Multi-fidelity campaigns: each trial runs at one fidelity level, recorded with the trial (docs/multi_fidelity.md).

:class:`MultiFidelityCampaign` is the :class:`~microdesign.campaign.loop.Campaign` of
:class:`~microdesign.optim.multi_fidelity.MultiFidelityProposer`: a trial's level is its
``inputs["fidelity"]`` (stored in the campaign file with the design, so re-runs and resumes keep it),
the proposer sees the designs with their fidelity column and the recorded evaluation times per
level (its cost model), and the final validation re-evaluates the designs with the best posterior
mean at the highest fidelity, at the highest level. The evaluator runs each level's cube settings
(:meth:`microdesign.campaign.evaluate.TrialEvaluator.at_level`).
"""

from __future__ import annotations

import logging
import math
from dataclasses import replace
from typing import Any

import numpy as np

from microdesign.campaign.loop import Campaign
from microdesign.optim.cost import FIDELITY_KEY
from microdesign.storage import TrialRecord

log = logging.getLogger(__name__)

EVALUATION_STAGES = ("generator", "characterise", "cell", "objective")  # the stages an evaluation's cost covers


def evaluation_seconds(t: TrialRecord) -> float:
    """Wall seconds of a finished trial's evaluation: its generator, characterisation, cell and
    objective stages (the proposal and the process CPU time not counted); NaN when none was recorded."""
    parts = [float(t.timings[k]) for k in EVALUATION_STAGES if k in t.timings]
    return float(sum(parts)) if parts else math.nan


class MultiFidelityCampaign(Campaign):
    """:class:`Campaign` whose trials each carry a fidelity level (``inputs["fidelity"]``).

    Args:
        *args, **kwargs: :class:`Campaign` arguments; the proposer is a
            :class:`~microdesign.optim.multi_fidelity.MultiFidelityProposer` (``levels``, ``recommend``,
            ``posterior_at_target``).
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        top = self.levels[-1]
        if self.final_validation is not None and top.n_cubes is not None:
            # the validation runs at the highest level: its cube count, not validation.n_cubes (records and logs say so)
            self.final_validation = replace(self.final_validation, n_cubes=int(top.n_cubes))

    @property
    def levels(self):
        return self.proposer.levels

    @property
    def target_fidelity(self) -> float:
        return float(self.levels[-1].fidelity)

    def fidelity(self, t: TrialRecord) -> float:
        """The fidelity a trial was (or is to be) evaluated at."""
        return float(t.inputs[FIDELITY_KEY])

    # ------------------------------------------------------------------ hooks of Campaign
    def _model_row(self, t: TrialRecord) -> list[float]:
        """The design in design-space order, then its fidelity."""
        return [*super()._model_row(t), self.fidelity(t)]

    def _proposer_kwargs(self) -> dict:
        """The cost model's data: ``(fidelity, seconds)`` of every finished evaluation with a recorded
        time, and the proposal seconds of each design of the model-based proposals (oldest first); the
        failed evaluations' designs with their fidelity (a failed validation is not proposed again)."""
        done = [t for t in self.finished if math.isfinite(evaluation_seconds(t))]
        model_based = [t for t in sorted(self.trials, key=lambda t: t.index)
                       if t.method == self.proposer.name and "propose" in t.timings]
        return {"timings": (np.array([self.fidelity(t) for t in done], float),
                            np.array([evaluation_seconds(t) for t in done], float)),
                "proposal_seconds": np.array([float(t.timings["propose"]) for t in model_based], float),
                "X_failed": np.array([self._model_row(t) for t in self.finished if t.status == "failed"],
                                     float).reshape(-1, len(self.names) + 1)}

    def _candidate_inputs(self, prop, k: int) -> dict[str, float]:
        return {FIDELITY_KEY: float(prop.fidelity[k])}

    def _validation_candidates(self, validated: set[int]) -> list[TrialRecord]:
        """The ``top_k`` completed designs by posterior mean at the highest fidelity (any level they ran
        at), not yet validated, each to be re-evaluated at the highest level."""
        top = self.ranked()[: int(self.final_validation.top_k)]
        return [t.with_(inputs={**t.inputs, FIDELITY_KEY: self.target_fidelity}) for t in top
                if t.index not in validated]

    # ------------------------------------------------------------------ ranking
    def ranked(self) -> list[TrialRecord]:
        """Completed trials, best first by the posterior mean of the objective at the highest fidelity.

        Where the GP cannot be fitted (fewer than two completed trials, a constant objective, a failed
        fit): highest-level trials by their value first, then the others by theirs.
        """
        done = [t for t in self.trials if t.status == "completed" and t.objective is not None]
        if not done:
            return []
        Y = np.array([t.objective.value for t in done], float)
        if len(done) >= 2 and np.ptp(Y) > 0:
            X = np.array([self._model_row(t) for t in done], float)
            Yvar = np.array([t.objective.variance for t in done], float)
            try:
                mean = self.proposer.posterior_at_target(X, Y, Yvar if self.proposer.noise == "observed" else None)
                return [done[i] for i in np.argsort(-mean, kind="stable")]
            except Exception as exc:  # noqa: BLE001 - ranking falls back to the observed values
                log.warning("ranking by the GP at the highest fidelity failed (%s: %s); ranking by observed values",
                            type(exc).__name__, exc)
        top = self.target_fidelity
        return sorted(done, key=lambda t: (abs(self.fidelity(t) - top) > 1e-9, -t.objective.value))

    def best(self) -> TrialRecord | None:
        """The best completed trial at the highest level (a low-level value is biased); else the first of :meth:`ranked`."""
        top = [t for t in self.trials if t.status == "completed" and t.objective is not None
               and abs(self.fidelity(t) - self.target_fidelity) <= 1e-9]
        if top:
            return max(top, key=lambda t: t.objective.value)
        ranked = self.ranked()
        return ranked[0] if ranked else None



def is_multi_fidelity(proposer: Any) -> bool:
    """Whether a campaign with this proposer is a :class:`MultiFidelityCampaign`."""
    from microdesign.optim.multi_fidelity import MultiFidelityProposer

    return isinstance(proposer, MultiFidelityProposer)


def check_fidelity_levels(cfg: Any, proposer: Any, objective: Any) -> None:
    """Fidelity levels and the multi-fidelity optimiser go together, for a scalar objective.

    (``optimiser=multi_fidelity`` without levels is refused by the proposer, naming ``fidelity_levels.levels``.)

    Raises:
        ConfigError: levels with another optimiser (``fidelity_levels``), or the multi-fidelity
            optimiser with a vector objective (``optimiser``).
    """
    from omegaconf import OmegaConf

    from microdesign.errors import ConfigError

    multi = is_multi_fidelity(proposer)
    if OmegaConf.select(cfg, "fidelity_levels.levels") is not None and not multi:
        raise ConfigError("fidelity_levels", "levels", "optimiser=multi_fidelity to run trials at several levels "
                          "(or fidelity_levels=single)")
    if multi and int(getattr(objective, "m", 1)) > 1:
        raise ConfigError("optimiser", "multi_fidelity", "a scalar objective (a vector objective has no "
                          "multi-fidelity proposer)")
