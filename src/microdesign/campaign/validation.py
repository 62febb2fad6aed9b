"""Final validation: re-evaluate the best designs of a campaign with fresh cubes (by default more of them).

The best value a campaign found is a maximum over noisy evaluations, so it is biased upwards, and a
design near a failure boundary (a pore network that percolates in 3 cubes of 48³ but not in every
cube) can win by luck. Measured on the real pipeline with the generator
``synth3p_small`` (``docs/campaign.md``, "Sample efficiency"): re-evaluated with 12 fresh cubes, three of
five qLogNEI "best" designs at porosity 0.25 failed (1 or 2 of 12 cubes did not percolate). A campaign therefore ends by re-evaluating its ``top_k`` best completed designs with
``n_cubes`` cubes drawn with new seeds, records each re-evaluation in the campaign file
(``/validation/<trial index>``) and recommends the design with the best *validated* value. The
re-evaluations never enter the surrogate: they are a check, not extra observations.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np

from microdesign.errors import ConfigError
from microdesign.storage import TrialRecord

log = logging.getLogger(__name__)


def validation_seed(campaign_seed: int, index: int) -> int:
    """Seed of the re-evaluation of trial ``index``: ``SeedSequence([campaign_seed, 2000003, index])`` -> uint32,
    independent of the trial's own seed (fresh cubes)."""
    return int(np.random.SeedSequence([int(campaign_seed), 2_000_003, int(index)]).generate_state(1)[0])


@dataclass(frozen=True)
class FinalValidation:
    """Which designs are re-evaluated at the end of a campaign, and with how many cubes.

    Attributes:
        top_k: the ``top_k`` best completed trials (by objective) are re-evaluated (0: off).
        n_cubes: cubes per re-evaluation, a fixed count (no adaptive stop) [-].

    Raises:
        ConfigError: ``top_k < 0`` or ``n_cubes < 2``.
    """

    top_k: int = 3
    n_cubes: int = 12

    def __post_init__(self) -> None:
        if int(self.top_k) < 0:
            raise ConfigError("campaign.validation.top_k", self.top_k, "an integer >= 0 (0: no final validation)")
        if int(self.n_cubes) < 2:
            raise ConfigError("campaign.validation.n_cubes", self.n_cubes, "an integer >= 2 (a CI needs two cubes)")

    def candidates(self, trials: list[TrialRecord], validated: set[int]) -> list[TrialRecord]:
        """The ``top_k`` best completed trials (maximised objective) not yet in ``validated``."""
        done = [t for t in trials if t.status == "completed" and t.objective is not None]
        top = sorted(done, key=lambda t: -t.objective.value)[: int(self.top_k)]
        return [t for t in top if t.index not in validated]

    def evaluate(self, trial: TrialRecord, evaluator: Any, campaign_seed: int,
                 seed_index: int | None = None) -> TrialRecord:
        """Re-evaluate ``trial``'s design with ``n_cubes`` fresh cubes; the result as a ``TrialRecord``
        (same index and inputs, ``method = "validation"``, its own seed; status completed or failed).

        ``evaluator.fixed_cubes(n)`` (:class:`~microdesign.campaign.evaluate.TrialEvaluator`) sets the
        cube count; an evaluator without it is used as it is. Never raises: an exception becomes a
        failed record with the reason.

        Args:
            trial: the completed trial.
            evaluator: its evaluator.
            campaign_seed: the campaign seed.
            seed_index: the index the seed is drawn for (:func:`validation_seed`); None: ``trial.index``.
                A campaign passes the design's position among the proposed designs
                (:meth:`~microdesign.campaign.loop.Campaign.design_ordinal`), so that a re-run after a
                kill is validated with the cubes the uninterrupted campaign would use.
        """
        import time

        from microdesign.campaign.evaluate import Evaluation

        seed = validation_seed(campaign_seed, trial.index if seed_index is None else int(seed_index))
        t0 = time.time()
        try:
            fixed = getattr(evaluator, "fixed_cubes", None)
            ev = (fixed(int(self.n_cubes)) if fixed is not None else evaluator).evaluate(trial.inputs, seed)
        except Exception as exc:  # noqa: BLE001 - a check never raises through the campaign
            log.warning("validation of trial %d raised %s: %s", trial.index, type(exc).__name__, exc)
            ev = Evaluation("failed", f"validation: {type(exc).__name__}: {exc}")
        rec = TrialRecord(index=trial.index, batch=trial.batch, status=ev.status, method="validation",
                          inputs=dict(trial.inputs), seed=seed, reason=ev.reason, metrics=ev.metrics, cell=ev.cell,
                          objective=ev.objective, timings=dict(ev.timings), volume=ev.volume,
                          voxel_size_m=ev.voxel_size_m, created_unix=t0, started_unix=t0, finished_unix=time.time())
        if rec.status == "completed":
            log.info("validation of trial %d (%d cubes): %.4g (found %.4g)", trial.index, self.n_cubes,
                     rec.objective.raw_value, trial.objective.raw_value)
        else:
            log.warning("validation of trial %d (%d cubes) failed: %s", trial.index, self.n_cubes, rec.reason)
        return rec


def recommended(trials: list[TrialRecord], validations: list[TrialRecord]) -> tuple[TrialRecord, TrialRecord] | None:
    """``(trial, its validation)`` with the best validated objective, or None if no validation completed."""
    ok = [v for v in validations if v.status == "completed" and v.objective is not None]
    if not ok:
        return None
    best = max(ok, key=lambda v: v.objective.value)
    return next(t for t in trials if t.index == best.index), best
