"""The closed loop: propose -> record candidates -> evaluate each (running -> completed/failed) -> repeat.

Every state change is written to the campaign file before the next step (crash-safe transactions,
:mod:`microdesign.storage`), so a killed campaign resumes without losing or repeating a finished
evaluation: trials found ``running`` are marked ``abandoned`` and, with ``on_resume_running: rerun``,
queued again with the same inputs and seed; ``candidate`` trials are evaluated; the Sobol sequence and
the proposal seeds continue from the count of proposed designs (re-runs not counted), and a re-run takes
the place of the trial it repeats in the evaluation order and in the surrogate's data: a campaign killed
and resumed proposes and evaluates the same designs with the same seeds as one that ran through.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from microdesign.errors import ConfigError
from microdesign.objective import direction_sign, observations_for_model
from microdesign.storage import CampaignStore, TrialRecord

log = logging.getLogger(__name__)

STAGES = ("propose", "generator", "characterise", "cell", "objective")


@dataclass(frozen=True)
class Budget:
    """When to stop.

    Attributes:
        max_evaluations: finished trials (completed + failed) in the whole campaign, resumes included.
        max_wall_time_s: wall time of this run [s] (a resume counts afresh); the trial in progress
            finishes (None: no limit).
        convergence_patience: stop when the best value has not improved by more than
            ``convergence_rel_tol`` x |best| over this many finished trials after the initial
            design (None: off).
        convergence_rel_tol: relative improvement that counts.
    """

    max_evaluations: int = 20
    max_wall_time_s: float | None = None
    convergence_patience: int | None = None
    convergence_rel_tol: float = 1e-3

    def __post_init__(self) -> None:
        if int(self.max_evaluations) < 1:
            raise ConfigError("campaign.budget.max_evaluations", self.max_evaluations, "an integer >= 1")
        if self.max_wall_time_s is not None and not self.max_wall_time_s > 0:
            raise ConfigError("campaign.budget.max_wall_time_s", self.max_wall_time_s, "a time > 0 [s] or null")
        if self.convergence_patience is not None and int(self.convergence_patience) < 1:
            raise ConfigError("campaign.budget.convergence_patience", self.convergence_patience, "an integer >= 1 or null")


def trial_seed(campaign_seed: int, index: int) -> int:
    """Seed of the ``index``-th proposed design (0-based; re-runs keep the seed of the trial they repeat,
    so this equals the trial index in a campaign without re-runs): ``SeedSequence([campaign_seed, index])``
    -> uint32 (independent streams)."""
    return int(np.random.SeedSequence([int(campaign_seed), int(index)]).generate_state(1)[0])


def batch_seed(campaign_seed: int, batch: int) -> int:
    """Seed of proposal batch ``batch`` (acquisition MC samples, restarts)."""
    return int(np.random.SeedSequence([int(campaign_seed), 1_000_003, int(batch)]).generate_state(1)[0])


def best_so_far(trials: Sequence[TrialRecord], direction: str | None = None) -> np.ndarray:
    """Running best objective over the finished trials, in finishing order (NaN before the first completed one).

    The one best-so-far curve of the package: the loop's convergence budget, the campaign report and
    the case-study reports read it.

    Args:
        trials: the campaign's trials (any order).
        direction: None: on the scale the optimiser maximises (:attr:`ObjectiveValue.value`);
            ``"maximize"`` / ``"minimize"``, the campaign file's stored ``direction``: in the
            objective's own sign and unit (the best trial's ``raw_value``).

    Returns:
        One value per finished trial (completed or failed), shape ``n_finished``.

    Raises:
        ConfigError: an unknown ``direction``.
    """
    sign = 1.0 if direction is None else direction_sign(direction)
    out, best = [], -math.inf
    for t in sorted((t for t in trials if t.finished), key=lambda t: (t.finished_unix, t.index)):
        if t.status == "completed" and t.objective is not None:
            best = max(best, t.objective.value)
        out.append(sign * best if math.isfinite(best) else math.nan)
    return np.asarray(out, float)


def best_trial(trials: Sequence[TrialRecord]) -> TrialRecord | None:
    """The completed trial with the best objective (the first of equals), or None without one."""
    done = [t for t in trials if t.status == "completed" and t.objective is not None]
    return max(done, key=lambda t: t.objective.value) if done else None


class Campaign:
    """One campaign: the loop over injected proposer, evaluator and store.

    Args:
        store: writer of the campaign file (created or opened).
        names: parameter names in design-space order.
        proposer: ``propose(X, Y, Yvar, n_proposed, q, seed) -> Proposal``.
        evaluator: ``evaluate(inputs, seed) -> Evaluation``.
        budget: stopping rules.
        seed: campaign seed.
        q: batch size.
        on_failure: ``"exclude"`` or ``"penalise"`` failed trials for the surrogate.
        penalty: penalty value (maximised scale) or None (automatic).
        n_initial: initial-design size (convergence is judged after it).
        trials: trials already in the file (resume).
        on_resume_running: ``"rerun"`` or ``"abandon"`` trials found running.
        validate: design dict -> complete design dict (raises ConfigError); every proposal passes it.
        progress: callback ``(event, campaign)`` for the display (events ``"start"``, ``"trial"``,
            ``"validation"``, ``"end"``).
        final_validation: re-evaluate the best designs with more cubes when the campaign ends
            (:class:`~microdesign.campaign.validation.FinalValidation`); None: off.
        validations: re-evaluations already in the file (resume).
        executor: where evaluations run when not in this process: an object with ``run(campaign)``
            that drives the trials over parallel workers (:class:`microdesign.campaign.executor.RayExecutor`,
            asynchronous or synchronous batches); None (``executor=local``): one trial at a time in
            this process.
    """

    def __init__(self, store: CampaignStore, names: list[str], proposer: Any, evaluator: Any, budget: Budget,
                 seed: int = 0, q: int = 1, on_failure: str = "exclude", penalty: float | None = None,
                 n_initial: int = 0, trials: list[TrialRecord] | None = None, on_resume_running: str = "rerun",
                 validate: Callable[[dict[str, float]], dict[str, float]] | None = None,
                 progress: Callable[[str, Campaign], None] | None = None, final_validation: Any = None,
                 validations: list[TrialRecord] | None = None, executor: Any = None):
        if on_resume_running not in ("rerun", "abandon"):
            raise ConfigError("campaign.on_resume_running", on_resume_running, "'rerun' or 'abandon'")
        self.store, self.names, self.proposer, self.evaluator = store, list(names), proposer, evaluator
        self.budget, self.seed, self.q = budget, int(seed), int(q)
        self.on_failure, self.penalty, self.n_initial = on_failure, penalty, int(n_initial)
        self.trials: list[TrialRecord] = [t.with_(volume=None) for t in (trials or [])]
        self.on_resume_running, self.validate, self.progress = on_resume_running, validate, progress
        self.stop_reason = ""
        self.session_start = time.time()
        self.propose_seconds: list[float] = []
        self.current: TrialRecord | None = None
        self.final_validation = final_validation
        self.validations: list[TrialRecord] = [v.with_(volume=None) for v in (validations or [])]
        self.executor = executor

    # ------------------------------------------------------------------ state
    @property
    def finished(self) -> list[TrialRecord]:
        """Finished trials in proposal order: a re-run takes the place of the trial it repeats (so a
        killed and resumed campaign shows the surrogate the same data in the same order)."""
        return sorted((t for t in self.trials if t.finished), key=lambda t: (self.original_index(t), t.index))

    def original_index(self, t: TrialRecord) -> int:
        """Index of the trial that first proposed ``t``'s design (a re-run's ``rerun_of`` chain followed back)."""
        by_index = {x.index: x for x in self.trials} if t.rerun_of is not None else {}
        while t.rerun_of is not None and t.rerun_of in by_index:
            t = by_index[t.rerun_of]
        return t.index

    def design_ordinal(self, t: TrialRecord) -> int:
        """Position of ``t``'s design among the proposed designs (0-based; re-runs not counted): the
        index its seeds are drawn for (:func:`trial_seed`; equal to ``t.index`` without re-runs)."""
        first = self.original_index(t)
        return sum(1 for x in self.trials if x.method != "rerun" and x.index < first)

    @property
    def n_finished(self) -> int:
        return len(self.finished)

    def best(self) -> TrialRecord | None:
        return best_trial(self.trials)

    def _replace(self, t: TrialRecord) -> None:
        self.trials[[x.index for x in self.trials].index(t.index)] = t.with_(volume=None)

    def _event(self, name: str) -> None:
        if self.progress is not None:
            try:
                self.progress(name, self)
            except Exception as exc:  # noqa: BLE001 - a display problem never stops a campaign
                log.debug("progress display failed: %s", exc)

    # ------------------------------------------------------------------ resume
    def recover(self) -> None:
        """Mark trials left ``running`` by a dead process ``abandoned`` (and queue re-runs)."""
        running = [t for t in self.trials if t.status == "running"]
        if not running:
            return
        now = time.time()
        changed: list[TrialRecord] = []
        next_index = max(t.index for t in self.trials) + 1
        for t in running:
            a = t.with_(status="abandoned", reason="the campaign process ended while this trial was running",
                        finished_unix=now)
            changed.append(a)
            if self.on_resume_running == "rerun":
                changed.append(TrialRecord(index=next_index, batch=t.batch, status="candidate", method="rerun",
                                           inputs=dict(t.inputs), seed=t.seed, rerun_of=t.index, created_unix=now))
                next_index += 1
        self.store.write_trials(changed)
        for c in changed:
            if any(x.index == c.index for x in self.trials):
                self._replace(c)
            else:
                self.trials.append(c)
        log.info("resume: %d running trial(s) marked abandoned%s", len(running),
                 " and queued again" if self.on_resume_running == "rerun" else "")

    # ------------------------------------------------------------------ stopping
    def _should_stop(self) -> str:
        if self.n_finished >= self.budget.max_evaluations:
            return f"evaluation budget reached ({self.budget.max_evaluations})"
        if self._wall_time_spent():
            return f"wall-time budget reached ({self.budget.max_wall_time_s:g} s)"
        p = self.budget.convergence_patience
        if p is not None:
            curve = best_so_far(self.trials)[self.n_initial:]
            if len(curve) > p and math.isfinite(curve[-p - 1]):
                ref = curve[-p - 1]
                if curve[-1] - ref <= self.budget.convergence_rel_tol * abs(ref):
                    return f"converged (no relative improvement > {self.budget.convergence_rel_tol:g} in {p} evaluations)"
        return ""

    # ------------------------------------------------------------------ proposing
    def _observations(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(X n x d, Y n x m, Yvar n x m)`` of the finished trials as the proposer sees them
        (failed trials excluded or penalised per ``on_failure``). Subclasses with vector objectives
        override this only."""
        done = self.finished
        values = [t.objective if t.objective is not None else _FAILED for t in done]
        mask, Y, Yvar = observations_for_model(values, self.on_failure, self.penalty)
        rows = [self._model_row(t) for t, m in zip(done, mask) if m]
        X = np.array(rows, float).reshape(len(rows), -1) if rows else np.zeros((0, len(self.names)))
        return X, Y, Yvar

    # hooks of a campaign whose trials carry more than the design (campaign/multi_fidelity.py: the level)
    def _model_row(self, t: TrialRecord) -> list[float]:
        """A trial as the proposer sees it: its parameters in design-space order."""
        return [t.inputs[n] for n in self.names]

    def _proposer_kwargs(self) -> dict[str, Any]:
        """Further keyword arguments of ``propose`` (none here)."""
        return {}

    def _candidate_inputs(self, prop: Any, k: int) -> dict[str, float]:
        """Inputs recorded with the ``k``-th design of a proposal beyond its parameters (none here)."""
        return {}

    def _validation_candidates(self, validated: set[int]) -> list[TrialRecord]:
        """The trials the final validation re-evaluates next (their inputs are evaluated as they are)."""
        return self.final_validation.candidates(self.trials, validated)

    def _propose(self, q: int | None = None, pending: Sequence[TrialRecord] = ()) -> list[TrialRecord]:
        """Propose, record and return the next candidates.

        Args:
            q: batch size (None: the campaign's ``q``), capped by the evaluations left.
            pending: trials being evaluated now; their designs go to the proposer as ``X_pending``
                (asynchronous batch BO), and they count against the evaluations left.
        """
        remaining = self.budget.max_evaluations - self.n_finished - len(pending)
        q = max(1, min(self.q if q is None else int(q), remaining))
        X, Y, Yvar = self._observations()
        batch = 1 + max((t.batch for t in self.trials), default=-1)
        n_proposed = sum(1 for t in self.trials if t.method != "rerun")
        extra = {}
        if pending:  # only then: a proposer without X_pending still works in-process
            extra["X_pending"] = np.array([self._model_row(t) for t in pending], float)
        prop = self.proposer.propose(X, Y, Yvar, n_proposed=n_proposed, q=q, seed=batch_seed(self.seed, batch), **extra,
                                     **self._proposer_kwargs())
        self.propose_seconds.append(prop.seconds)
        now = time.time()
        start = 1 + max((t.index for t in self.trials), default=-1)
        new = []
        for k, x in enumerate(prop.X):
            inputs = {n: float(v) for n, v in zip(self.names, x)}
            if self.validate is not None:
                inputs = self.validate(inputs)
            inputs.update(self._candidate_inputs(prop, k))
            idx = start + k
            new.append(TrialRecord(index=idx, batch=batch, status="candidate", method=prop.method, inputs=inputs,
                                   seed=trial_seed(self.seed, n_proposed + k), created_unix=now,
                                   timings={"propose": prop.seconds / len(prop.X)}, note=prop.note))
        self.store.write_trials(new)
        self.trials.extend(new)
        log.info("batch %d: %d candidate(s) by %s in %.2f s", batch, len(new), prop.method, prop.seconds)
        return new

    # ------------------------------------------------------------------ running
    def _run_trial(self, t: TrialRecord) -> TrialRecord:
        t = self._start(t)
        return self._finish(t, self.evaluator.evaluate(t.inputs, t.seed))

    def _start(self, t: TrialRecord) -> TrialRecord:
        """Record ``t`` as running (now) and return it."""
        t = t.with_(status="running", started_unix=time.time())
        self.store.write_trials([t])
        self._replace(t)
        self.current = t
        self._event("running")
        return t

    def _finish(self, t: TrialRecord, ev: Any, worker: str | None = None) -> TrialRecord:
        """Record the evaluation ``ev`` of the running trial ``t`` (finished now; evaluated by ``worker``)."""
        done = t.with_(status=ev.status, reason=ev.reason, metrics=ev.metrics, cell=ev.cell, objective=ev.objective,
                       timings={**t.timings, **ev.timings}, volume=ev.volume, voxel_size_m=ev.voxel_size_m,
                       finished_unix=time.time(), worker=worker)
        self.store.write_trials([done])
        self._replace(done)
        self.current = None
        if done.status == "failed":
            log.warning("trial %d failed: %s", done.index, done.reason)
        else:
            log.info("trial %d: %.4g (+- %.2g) in %.1f s", done.index, done.objective.raw_value,
                     math.sqrt(done.objective.variance),
                     sum(v for k, v in ev.timings.items() if k != "cpu"))  # wall stages; "cpu" is process CPU time
        self._event("trial")
        return done

    def _worker_lost(self, t: TrialRecord, reason: str, worker: str | None, max_retries: int) -> TrialRecord:
        """The worker evaluating the running trial ``t`` died (process killed, node lost): ``t`` becomes
        ``abandoned`` and is queued again with the same inputs and seed, like a trial found running on
        resume; after ``max_retries`` re-runs of the same design it becomes ``failed`` with the reason.
        Returns the new candidate, or the failed trial."""
        now = time.time()
        by_index = {x.index: x for x in self.trials}
        attempts, x = 1, t
        while x.rerun_of is not None and x.rerun_of in by_index:
            attempts, x = attempts + 1, by_index[x.rerun_of]
        if attempts > max_retries:
            failed = t.with_(status="failed", finished_unix=now, worker=worker,
                             reason=f"worker lost {attempts} times on this design (retries: {max_retries}); last: {reason}")
            self.store.write_trials([failed])
            self._replace(failed)
            log.warning("trial %d failed: %s", t.index, failed.reason)
            self._event("trial")
            return failed
        lost = t.with_(status="abandoned", reason=f"worker lost: {reason}", finished_unix=now, worker=worker)
        again = TrialRecord(index=1 + max(x.index for x in self.trials), batch=t.batch, status="candidate",
                            method="rerun", inputs=dict(t.inputs), seed=t.seed, rerun_of=t.index, created_unix=now)
        self.store.write_trials([lost, again])
        self._replace(lost)
        self.trials.append(again)
        log.warning("trial %d: worker %s lost (%s); queued again as trial %d", t.index, worker, reason, again.index)
        return again

    def run(self) -> str:
        """Run until a budget stops it; returns the stop reason (also stored in the file)."""
        self.session_start = time.time()
        self.recover()
        self._event("start")
        if self.executor is not None:
            self.executor.run(self)
        else:
            self._run_serial()
        if self.final_validation is not None and not self._wall_time_spent():
            self._validate()
        self.store.set_attrs(stop_reason=self.stop_reason, last_session_end_unix=time.time())
        log.info("campaign stopped: %s", self.stop_reason)
        self._event("end")
        return self.stop_reason

    def _run_serial(self) -> None:
        """One trial at a time in this process (``executor=local``); sets :attr:`stop_reason`."""
        while True:
            self.stop_reason = self._should_stop()
            if self.stop_reason:
                break
            # proposal order: a re-run queued on resume goes where the trial it repeats was
            pending = sorted((t for t in self.trials if t.status == "candidate"), key=self.original_index)
            if not pending:
                pending = self._propose()
            for t in pending:
                self.stop_reason = self._should_stop()
                if self.stop_reason:
                    break
                self._run_trial(t)
            if self.stop_reason:
                break

    def _wall_time_spent(self) -> bool:
        limit = self.budget.max_wall_time_s
        return limit is not None and time.time() - self.session_start >= limit

    def _validate(self) -> None:
        """Re-evaluate the best designs not yet validated, each written to the file when it finishes;
        the wall-time budget is checked before each (a resume does the rest)."""
        done = {v.index for v in self.validations}
        for t in self._validation_candidates(done):
            if self._wall_time_spent():
                log.info("final validation: wall-time budget reached; the remaining designs are validated on resume")
                return
            self._event("validation")
            rec = self.final_validation.evaluate(t, self.evaluator, self.seed, seed_index=self.design_ordinal(t))
            self.store.write_validations([rec])
            self.validations.append(rec.with_(volume=None))
            self._event("validation")


class MultiObjectiveCampaign(Campaign):
    """:class:`Campaign` whose proposer sees ``n x m`` observations of a vector objective
    (:class:`microdesign.objective.CellQuantities`; proposer
    :class:`microdesign.optim.multi_objective.HypervolumeProposer`). Failed trials are excluded.

    Args:
        m: number of objectives.
        *args, **kwargs: :class:`Campaign` arguments.
    """

    def __init__(self, *args, m: int = 2, **kwargs):
        super().__init__(*args, **kwargs)
        self.m = int(m)

    def _observations(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        from microdesign.objective.vector import multi_objective_observations

        X, Y, Yvar, _ = multi_objective_observations(self.finished, self.names, self.m)
        return X, Y, Yvar


class _Failed:
    ok = False
    value = 0.0
    variance = 0.0


_FAILED = _Failed()
