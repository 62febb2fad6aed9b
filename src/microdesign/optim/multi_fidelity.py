"""Multi-fidelity proposer: cheap evaluations explore, representative ones decide.

An evaluation can run at one of several *levels* (:class:`microdesign.optim.cost.FidelityLevel`): a
few small cubes (cheap, biased, noisy) or the representative cube set (expensive). The GP sees the
level as one more input, the fidelity ``s`` in ``(0, 1]`` (highest level ``s = 1``), and the
acquisition function values a candidate (design, level) by what it teaches about the optimum *at the
highest level* per second spent:

* model: BoTorch's ``SingleTaskMultiFidelityGP`` (``data_fidelities=[d]``: a Matérn-5/2 kernel on
  the design times a ``LinearTruncatedFidelityKernel`` in ``s``; Wu et al., "Practical multi-fidelity
  Bayesian optimization for hyperparameter tuning", UAI 2019), observed noise from the
  characterisation CI as in :class:`microdesign.optim.BotorchProposer`;
* acquisition: ``qMultiFidelityMaxValueEntropy`` (default; Takeno et al., ICML 2020: the
  information gained about the maximum at ``s = 1``) or ``qMultiFidelityKnowledgeGradient`` (Wu et
  al. 2019; BoTorch's multi-fidelity tutorials), each divided by the cost through
  ``InverseCostWeightedUtility`` over the campaign's per-level cost model
  (:class:`microdesign.optim.cost.LevelCostModel`: prior seconds refitted from the recorded
  timings), with ``project_to_target_fidelity`` (the value is judged at ``s = 1``);
* levels are discrete: ``optimize_acqf_mixed`` optimises the design at each level's fixed fidelity
  and keeps the best (sequential greedy for ``q > 1``);
* recommendation (:meth:`MultiFidelityProposer.recommend`): the evaluated design with the largest
  posterior mean at the highest fidelity;
* validation of the recommendation (``validate_recommendation``): when the recommended design has
  been evaluated only at lower levels, the model expects it to beat every highest-level observation,
  and the search has converged on it -- the expected shortfall of its posterior mean to the sampled
  maximum at the highest fidelity, ``E[(y* - mu(x_rec))+]``, is no larger than its posterior standard
  deviation there -- the next evaluation is that design at the highest level instead of the
  acquisition's choice. This is the stopping rule of Makarova et al., "Automatic termination for
  hyperparameter optimization", AutoML 2022 (stop when the regret bound falls below the statistical
  error of the evaluation), applied to the cheap levels' search: once further search is expected to
  gain less than the uncertainty about the recommendation, resolve the recommendation where it counts;
* cost (``cost_includes_proposal``): every evaluation also costs the proposal that chose it, so the
  median seconds of the recent model-based proposals is added to each level's cost (the proposal's
  cost does not depend on the level; it narrows the cost ratio of the levels).

The observation arrays carry the fidelity as one extra last column: ``X`` is ``n x (d + 1)``
(physical design in design-space order, then ``s``). The Sobol initial design, the GP fit
(:func:`microdesign.optim.proposers.fit_gp`) and the Sobol fallback on numerical trouble
(:func:`microdesign.optim.proposers.model_based_or_sobol`) are the single-fidelity proposer's.
When multi-fidelity pays, and when it does not: docs/multi_fidelity.md.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from microdesign.design.space import DTYPE, DesignSpace
from microdesign.errors import require
from microdesign.logs import warnings_to_log
from microdesign.optim.cost import FidelityLevel, LevelCostModel, level_index, parse_levels
from microdesign.optim.proposers import GPFitError, Proposal, fit_gp, model_based_or_sobol, sobol_points

log = logging.getLogger(__name__)

PROPOSAL_WINDOW = 5  # recent model-based proposals whose median seconds is added to each level's cost


def proposal_overhead(proposal_seconds: Sequence[float]) -> float:
    """Seconds one more proposal is expected to take: the median of the last ``PROPOSAL_WINDOW``
    finite, non-negative values of ``proposal_seconds`` (oldest first) [s]; 0 when there are none."""
    v = np.asarray(list(proposal_seconds), dtype=np.float64).reshape(-1)
    v = v[np.isfinite(v) & (v >= 0)][-PROPOSAL_WINDOW:]
    return float(np.median(v)) if v.size else 0.0


@dataclass(frozen=True)
class MultiFidelityProposal(Proposal):
    """``q`` designs and the level to evaluate each at.

    Attributes:
        fidelity: fidelity value of each design, shape ``q`` (exactly a level's).
        level: level name of each design, length ``q``.
        cost_s: predicted cost of each evaluation by the cost model [s], shape ``q``.
    """

    fidelity: np.ndarray | None = None
    level: tuple[str, ...] = ()
    cost_s: np.ndarray | None = None


@dataclass(frozen=True)
class Recommendation:
    """The design the campaign recommends.

    Attributes:
        index: row of the observation arrays.
        design: the physical design, shape ``d``.
        predicted_value: posterior mean of the objective at the highest fidelity (objective units).
        method: ``"posterior-mean"`` or, where the GP fit failed, ``"best-observed"`` (the best value
            observed at the highest level, else at any level).
    """

    index: int
    design: np.ndarray
    predicted_value: float
    method: str


class MultiFidelityProposer:
    """Sobol initial design, then multi-fidelity GP + cost-weighted multi-fidelity knowledge gradient.

    Args:
        space: the design space of the design (without the fidelity).
        levels: two or more fidelity levels (``[{name, fidelity, cost_s, n_cubes, cube_size_voxels}]``
            or :class:`FidelityLevel`), e.g. ``fidelity_levels.levels`` of conf/fidelity_levels/two_level.yaml.
        q: default batch size.
        n_initial: Sobol trials before the first model-based proposal.
        n_initial_high: how many of them (the first ones) run at the highest level; the rest run at
            the lowest. At least one high-level point anchors the GP's correlation between levels.
        acquisition: ``"mes"`` (``qMultiFidelityMaxValueEntropy``; Takeno et al., "Multi-fidelity
            Bayesian optimization with max-value entropy search", ICML 2020) or ``"kg"``
            (``qMultiFidelityKnowledgeGradient``, one-shot; about ten times slower per proposal here).
        num_fantasies: fantasy models: of the knowledge gradient (BoTorch's tutorial: 128), or of
            the pending designs for max-value entropy (BoTorch's default: 16).
        num_candidates: Sobol designs on which max-value entropy samples the maximum (BoTorch's
            tutorial: 1000-10000; the default 500, with 2 restarts, 32 raw samples and 50 iterations,
            chose the same level in 6 of 6 replayed proposals at about half the CPU time,
            docs/multi_fidelity.md).
        num_mv_samples: sampled maxima of max-value entropy (BoTorch's default: 10).
        num_restarts: ``optimize_acqf`` multi-starts per level.
        raw_samples: raw samples for the initial conditions, per level.
        noise: ``"observed"`` (``train_Yvar``) or ``"inferred"``.
        min_noise_variance: floor on observed noise, relative to the variance of Y.
        maxiter: L-BFGS-B iterations per restart.
        cost_prior_count: weight of each level's prior cost, in pseudo-observations
            (:class:`LevelCostModel`).
        refit_costs: refit the cost model from the campaign's timings before each proposal (False:
            the prior ``cost_s`` throughout; proposals then do not depend on measured times, so a
            campaign is reproducible run to run).
        cost_includes_proposal: add the median seconds of the last ``PROPOSAL_WINDOW`` model-based
            proposals (``propose(proposal_seconds=...)``) to every level's cost (only when
            ``refit_costs``).
        validate_recommendation: evaluate the recommendation at the highest level when it has only
            been seen at lower levels, is predicted to beat every highest-level observation, and the
            expected shortfall to the sampled maximum is within its posterior standard deviation
            (module docstring; Makarova et al., AutoML 2022).
        seed: Sobol scrambling seed of the initial design (the campaign passes its own seed).
        threads: torch CPU threads while fitting and optimising (restored afterwards); None: unchanged.

    Raises:
        ConfigError: bad levels (:func:`microdesign.optim.cost.parse_levels`), ``q < 1``,
            ``n_initial < 1``, ``n_initial_high`` outside ``[0, n_initial]``, an unknown
            ``acquisition`` or ``noise``, or a sample/restart/iteration count < 1.
    """

    def __init__(self, space: DesignSpace, levels: Sequence[Mapping[str, Any] | FidelityLevel], q: int = 1,
                 n_initial: int = 8, n_initial_high: int = 1, acquisition: str = "mes", num_fantasies: int = 16,
                 num_candidates: int = 500, num_mv_samples: int = 10, num_restarts: int = 2,
                 raw_samples: int = 32, noise: str = "observed", min_noise_variance: float = 1e-6,
                 maxiter: int = 50, cost_prior_count: float = 1.0, refit_costs: bool = True,
                 cost_includes_proposal: bool = True, validate_recommendation: bool = True, seed: int | None = None,
                 threads: int | None = 1):
        self.levels = parse_levels(levels, "fidelity_levels.levels")
        require(int(q) >= 1, "optimiser.q", q, "an integer >= 1")
        require(int(n_initial) >= 1, "optimiser.n_initial", n_initial, "an integer >= 1")
        require(0 <= int(n_initial_high) <= int(n_initial), "optimiser.n_initial_high", n_initial_high,
                f"an integer in [0, n_initial = {n_initial}]")
        require(acquisition in ("mes", "kg"), "optimiser.acquisition", acquisition, "'mes' or 'kg'")
        for key, v in (("num_fantasies", num_fantasies), ("num_candidates", num_candidates),
                       ("num_mv_samples", num_mv_samples), ("num_restarts", num_restarts),
                       ("raw_samples", raw_samples), ("maxiter", maxiter)):
            require(int(v) >= 1, f"optimiser.{key}", v, "an integer >= 1")
        require(noise in ("observed", "inferred"), "optimiser.noise", noise, "'observed' or 'inferred'")
        require(threads is None or int(threads) >= 1, "optimiser.threads", threads, "an integer >= 1 or null")
        self.space, self.q = space, int(q)
        self.n_initial, self.n_initial_high = int(n_initial), int(n_initial_high)
        self.acquisition, self.name = acquisition, ("qMFMES" if acquisition == "mes" else "qMFKG")
        self.num_fantasies, self.num_restarts, self.raw_samples = int(num_fantasies), int(num_restarts), int(raw_samples)
        self.num_candidates, self.num_mv_samples = int(num_candidates), int(num_mv_samples)
        self.noise, self.min_noise_variance, self.maxiter = noise, float(min_noise_variance), int(maxiter)
        self.cost_model = LevelCostModel(self.levels, cost_prior_count)
        self.refit_costs = bool(refit_costs)
        self.cost_includes_proposal = bool(cost_includes_proposal)
        self.validate_recommendation = bool(validate_recommendation)
        self.seed = seed
        self.threads = None if threads is None else int(threads)

    # ------------------------------------------------------------------ levels
    @property
    def fidelities(self) -> np.ndarray:
        """Fidelity of each level, increasing (the last is 1)."""
        return np.array([lv.fidelity for lv in self.levels])

    @property
    def target_fidelity(self) -> float:
        return float(self.levels[-1].fidelity)

    def level_of(self, fidelity: np.ndarray | float) -> list[FidelityLevel]:
        """The level of each fidelity value (ConfigError for a value that is no level's)."""
        return [self.levels[i] for i in level_index(self.levels, fidelity)]

    def initial_fidelity(self, positions: Sequence[int]) -> np.ndarray:
        """Fidelity of the initial-design trials at these campaign positions (also of the Sobol fallback).

        The first ``n_initial_high`` positions run at the highest level, every other at the lowest.
        """
        return np.array([self.levels[-1].fidelity if k < self.n_initial_high else self.levels[0].fidelity
                         for k in positions])

    # ------------------------------------------------------------------ proposal
    def propose(self, X, Y, Yvar, n_proposed: int, q: int, seed: int, X_pending=None,
                timings: tuple[np.ndarray, np.ndarray] | None = None,
                proposal_seconds: Sequence[float] | None = None, X_failed=None) -> MultiFidelityProposal:
        """Next ``q`` (design, level) pairs.

        Args:
            X: observed designs with their fidelity, ``n x (d + 1)`` (physical design, then ``s``).
            Y: objective values, shape ``n`` (maximised), each at its own level.
            Yvar: observation noise variances, shape ``n`` (None: unknown).
            n_proposed: trials proposed so far (all statuses): the position in the Sobol sequence.
            q: batch size.
            seed: seed of this proposal.
            X_pending: designs being evaluated now, with their fidelity, ``p x (d + 1)``; None: none.
            timings: ``(fidelity, seconds)`` of the campaign's finished evaluations, failed ones
                included (they cost time too), two arrays of one length [-, s]; refits the cost
                model before proposing when ``refit_costs`` (None: the prior costs; a non-finite
                time: unknown).
            proposal_seconds: seconds spent proposing each design of the campaign's model-based
                proposals, oldest first [s]; with ``cost_includes_proposal`` and ``refit_costs`` the
                median of the last ``PROPOSAL_WINDOW`` is added to every level's cost (None or
                empty: nothing added).
            X_failed: designs with their fidelity whose evaluation failed, ``f x (d + 1)`` (None: none);
                a recommendation that failed at the highest level is not sent there again.

        Returns:
            A :class:`MultiFidelityProposal`: ``X`` is ``q x d`` (physical designs), ``fidelity`` and
            ``level`` the level of each.

        Raises:
            ConfigError: a fidelity in ``X``, ``X_pending``, ``X_failed`` or ``timings`` that is no level's, or
                ``timings`` arrays of different lengths.
        """
        t0 = time.perf_counter()
        s = self.seed if self.seed is not None else seed
        d = self.space.d
        X = np.zeros((0, d + 1)) if X is None else np.asarray(X, dtype=np.float64)
        require(X.size == 0 or (X.ndim == 2 and X.shape[1] == d + 1), "X", X.shape,
                f"n x {d + 1}: the {d} design parameters, then the fidelity")
        X = X.reshape(-1, d + 1)
        Y = np.zeros(0) if Y is None else np.asarray(Y, dtype=np.float64).reshape(-1)
        level_index(self.levels, X[:, d])  # bad fidelities are a ConfigError here, not a Sobol fallback

        def rows_with_fidelity(A) -> np.ndarray | None:
            """``A`` as ``k x (d + 1)`` with checked fidelities; None when empty."""
            if A is None or np.size(A) == 0:
                return None
            A = np.asarray(A, dtype=np.float64).reshape(-1, d + 1)
            level_index(self.levels, A[:, d])
            return A

        pending, failed = rows_with_fidelity(X_pending), rows_with_fidelity(X_failed)
        cost_model = self.cost_model.refit(*timings) if timings is not None and self.refit_costs else self.cost_model
        if self.refit_costs and self.cost_includes_proposal and proposal_seconds is not None:
            cost_model = cost_model.with_overhead(proposal_overhead(proposal_seconds))

        if n_proposed < self.n_initial or X.shape[0] < 2 or np.ptp(Y) == 0:
            Z = sobol_points(self.space, n_proposed, q, s)
            fid = self.initial_fidelity(range(n_proposed, n_proposed + q))
            return self._proposal(self.space.from_free_unit(Z), fid, cost_model, "sobol", None, t0, None)

        chosen: dict[str, torch.Tensor] = {}

        def model_based() -> tuple[torch.Tensor, float]:
            cand, value, validated = self._model_based(X, Y, Yvar, q, seed, pending, cost_model, failed)
            chosen["fidelity"], chosen["validated"] = cand[:, -1], validated
            return cand[:, :-1], value

        p = model_based_or_sobol(self.space, model_based, self.name, n_proposed, q, s, t0, self.threads)
        note = p.note
        if p.method == self.name:
            fid = self.fidelities[level_index(self.levels, chosen["fidelity"].numpy())]
            if chosen["validated"] is not None:
                design = ", ".join(f"{n}={v:.4g}" for n, v in zip(self.space.free_names, X[chosen["validated"], :d]))
                note = (f"design 0: the recommendation ({design}, seen only at lower levels) evaluated at the "
                        "highest level")
        else:  # the Sobol fallback runs where the initial design would: cheap unless among the first points
            fid = self.initial_fidelity(range(n_proposed, n_proposed + q))
        return self._proposal(p.X, fid, cost_model, p.method, p.acquisition_value, t0, note)

    def _proposal(self, X: np.ndarray, fid: np.ndarray, cost_model: LevelCostModel, method: str,
                  value: float | None, t0: float, note: str | None) -> MultiFidelityProposal:
        names = tuple(lv.name for lv in self.level_of(fid))
        return MultiFidelityProposal(X, method, value, time.perf_counter() - t0, note, fidelity=np.asarray(fid, float),
                                     level=names, cost_s=cost_model.seconds(fid))

    def _unit_with_fidelity(self, X: np.ndarray) -> torch.Tensor:
        """``n x (d + 1)`` physical designs with fidelity -> ``n x (d_free + 1)`` model inputs."""
        d = self.space.d
        s = torch.as_tensor(X[:, d], dtype=DTYPE).unsqueeze(-1)
        return torch.cat([self.space.to_free_unit(X[:, :d]), s], dim=-1)

    def _fit(self, X: np.ndarray, Y: np.ndarray, Yvar: np.ndarray | None):
        Zt = self._unit_with_fidelity(X)
        Yt = torch.as_tensor(Y, dtype=DTYPE).unsqueeze(-1)
        Yv = None
        if self.noise == "observed" and Yvar is not None:
            Yv = torch.as_tensor(np.asarray(Yvar, dtype=np.float64).reshape(-1), dtype=DTYPE).unsqueeze(-1)
        return Zt, fit_gp(Zt, Yt, Yv, self.min_noise_variance, data_fidelities=[self.space.d_free])

    def _model_based(self, X: np.ndarray, Y: np.ndarray, Yvar: np.ndarray | None, q: int, seed: int,
                     pending: np.ndarray | None, cost_model: LevelCostModel, failed: np.ndarray | None = None
                     ) -> tuple[torch.Tensor, float, int | None]:
        """MF-GP fit + cost-weighted qMFMES or qMFKG + ``optimize_acqf_mixed`` over the levels; returns
        (``q x (d_free + 1)`` candidates, the last column the fidelity; the sum of the sequential greedy
        acquisition values; the observation whose design is validated at the highest level as the first
        candidate, or None)."""
        from botorch.acquisition import PosteriorMean, qMultiFidelityKnowledgeGradient, qMultiFidelityMaxValueEntropy
        from botorch.acquisition.cost_aware import InverseCostWeightedUtility
        from botorch.acquisition.fixed_feature import FixedFeatureAcquisitionFunction
        from botorch.acquisition.utils import project_to_target_fidelity
        from botorch.optim import optimize_acqf, optimize_acqf_mixed

        k = self.space.d_free  # the fidelity column of the model inputs
        target = {k: self.target_fidelity}
        cons = self.space.unit_inequality_constraints() or None

        def project(Z: torch.Tensor) -> torch.Tensor:
            return project_to_target_fidelity(X=Z, target_fidelities=target, d=k + 1)

        with torch.random.fork_rng():
            torch.manual_seed(int(seed))
            _, model = self._fit(X, Y, Yvar)
            with warnings_to_log(log, f"{self.name} optimisation"):
                utility = InverseCostWeightedUtility(cost_model=cost_model.botorch_model(k))
                Zp = None if pending is None else self._unit_with_fidelity(pending)
                if self.acquisition == "kg":
                    # current value: the best posterior mean at the highest fidelity (the KG's baseline)
                    mean_high = FixedFeatureAcquisitionFunction(PosteriorMean(model), d=k + 1, columns=[k],
                                                                values=[self.target_fidelity])
                    _, current = optimize_acqf(mean_high, bounds=self.space.unit_bounds(), q=1,
                                               num_restarts=self.num_restarts, raw_samples=self.raw_samples,
                                               inequality_constraints=cons, options={"maxiter": self.maxiter})
                    acq = qMultiFidelityKnowledgeGradient(
                        model=model, num_fantasies=self.num_fantasies, current_value=current.detach(),
                        cost_aware_utility=utility, project=project, X_pending=Zp)
                else:  # max-value entropy: max values sampled on feasible Sobol designs at the highest fidelity
                    candidates = sobol_points(self.space, 0, self.num_candidates, int(seed))
                    acq = qMultiFidelityMaxValueEntropy(
                        model=model, candidate_set=candidates, num_fantasies=self.num_fantasies,
                        num_mv_samples=self.num_mv_samples, cost_aware_utility=utility, project=project,
                        X_pending=Zp)
                bounds = torch.cat([self.space.unit_bounds(), torch.tensor([[0.0], [1.0]], dtype=DTYPE)], dim=-1)
                # sequential greedy over the batch (max-value entropy takes one point at a time): each
                # chosen point joins the pending ones before the next is chosen
                chosen, values = [], []
                validated = None
                if self.validate_recommendation:
                    if self.acquisition == "mes":
                        maxima = acq.posterior_max_values
                    else:  # the knowledge gradient samples no maxima: max-value entropy's sampler, uncosted,
                        # on a forked random stream so that the knowledge gradient's own draws are unchanged
                        with torch.random.fork_rng():
                            maxima = qMultiFidelityMaxValueEntropy(
                                model=model, candidate_set=sobol_points(self.space, 0, self.num_candidates, int(seed)),
                                num_mv_samples=self.num_mv_samples, project=project).posterior_max_values
                    validated = self._recommendation_to_validate(X, Y, model, pending, maxima, failed)
                    if validated is not None:
                        z = self._unit_with_fidelity(X[validated:validated + 1])
                        z[:, -1] = self.target_fidelity
                        chosen.append(z)
                        values.append(0.0)
                        if q > 1:
                            acq.set_X_pending(torch.cat(([Zp] if Zp is not None else []) + chosen, dim=-2))
                for _ in range(q - len(chosen)):
                    c, v = optimize_acqf_mixed(
                        acq, bounds=bounds, q=1, num_restarts=self.num_restarts, raw_samples=self.raw_samples,
                        fixed_features_list=[{k: float(f)} for f in self.fidelities], inequality_constraints=cons,
                        options={"maxiter": self.maxiter, "batch_limit": 4, "init_batch_limit": self.raw_samples},
                    )
                    chosen.append(c.detach())
                    values.append(float(v))
                    if len(chosen) < q:
                        acq.set_X_pending(torch.cat(([Zp] if Zp is not None else []) + chosen, dim=-2))
        return torch.cat(chosen, dim=-2), float(np.sum(values)), validated

    def _recommendation_to_validate(self, X: np.ndarray, Y: np.ndarray, model, pending: np.ndarray | None,
                                    maxima: torch.Tensor, failed: np.ndarray | None = None) -> int | None:
        """The observation whose design is to be evaluated at the highest level next, or None.

        The recommendation (largest posterior mean ``mu`` at the highest fidelity among the observed
        designs) is validated when (1) no observation, pending evaluation or failed evaluation has its
        design at the highest level, (2) ``mu`` exceeds every highest-level observation, and (3) the expected
        shortfall ``E[(y* - mu)+]`` over the sampled maxima ``y*`` at the highest fidelity is at most
        the posterior standard deviation of the recommendation there (Makarova et al., AutoML 2022).

        Args:
            X: observations with fidelity, ``n x (d + 1)``; Y: values, shape ``n``.
            model: the fitted multi-fidelity GP.
            pending: pending evaluations with fidelity, ``p x (d + 1)``, or None.
            maxima: sampled maxima of the objective at the highest fidelity (any shape).
            failed: failed evaluations with fidelity, ``f x (d + 1)``, or None.
        """
        d, top = self.space.d, len(self.levels) - 1
        Z = self._unit_with_fidelity(X)
        Z[:, -1] = self.target_fidelity
        with torch.no_grad():
            post = model.posterior(Z)
            mu = post.mean.reshape(-1)
            sd = post.variance.clamp_min(0.0).sqrt().reshape(-1)
        i = int(torch.argmax(mu))
        high = level_index(self.levels, X[:, d]) == top
        rows = [X[high, :d]]
        if pending is not None:
            rows.append(pending[level_index(self.levels, pending[:, d]) == top, :d])
        if failed is not None:
            rows.append(failed[level_index(self.levels, failed[:, d]) == top, :d])
        seen = np.vstack(rows)
        if seen.size and np.any(np.all(np.isclose(seen, X[i, :d], rtol=1e-9, atol=1e-9), axis=1)):
            return None  # already known (being evaluated, or failed) at the highest level
        if high.any() and float(mu[i]) <= float(Y[high].max()):
            return None  # not predicted to beat what the highest level has already shown
        shortfall = float((maxima.detach().reshape(-1).to(mu) - mu[i]).clamp_min(0.0).mean())
        if shortfall > float(sd[i]):
            return None  # the search still expects more than the recommendation's own uncertainty
        log.debug("validating observation %d at the highest level: mu %.4g, sd %.3g, expected shortfall %.3g",
                  i, float(mu[i]), float(sd[i]), shortfall)
        return i

    # ------------------------------------------------------------------ recommendation
    def posterior_at_target(self, X, Y, Yvar=None) -> np.ndarray:
        """Posterior mean of the objective at the highest fidelity at each observed design, shape ``n``.

        Args:
            X: observed designs with fidelity, ``n x (d + 1)``; Y: values, shape ``n``; Yvar: noise variances.

        Raises:
            GPFitError: the GP fit failed. ConfigError: a fidelity that is no level's.
        """
        d = self.space.d
        X = np.asarray(X, dtype=np.float64).reshape(-1, d + 1)
        level_index(self.levels, X[:, d])
        with torch.random.fork_rng():
            torch.manual_seed(0)
            Zt, model = self._fit(X, np.asarray(Y, dtype=np.float64).reshape(-1), Yvar)
            Zt[:, -1] = self.target_fidelity
            with torch.no_grad():
                return model.posterior(Zt).mean.reshape(-1).numpy().copy()

    def recommend(self, X, Y, Yvar=None) -> Recommendation:
        """The evaluated design with the largest posterior mean at the highest fidelity.

        Args:
            X: observed designs with fidelity, ``n x (d + 1)``; Y: values, shape ``n``; Yvar: noise variances.

        Returns:
            A :class:`Recommendation`. Where the GP cannot be fitted (fewer than 2 observations, a
            constant Y, a failed fit), the best observed value at the highest level, else at any level.

        Raises:
            ConfigError: no observations, or a fidelity that is no level's.
        """
        d = self.space.d
        X = np.asarray(X, dtype=np.float64).reshape(-1, d + 1)
        Y = np.asarray(Y, dtype=np.float64).reshape(-1)
        require(X.shape[0] >= 1 and X.shape[0] == Y.shape[0], "observations", X.shape[0],
                "at least one observation, one value per design")
        high = level_index(self.levels, X[:, d]) == len(self.levels) - 1
        if X.shape[0] >= 2 and np.ptp(Y) > 0:
            try:
                mean = self.posterior_at_target(X, Y, Yvar)
                i = int(np.argmax(mean))
                return Recommendation(i, X[i, :d].copy(), float(mean[i]), "posterior-mean")
            except GPFitError as exc:
                log.warning("recommendation: %s; taking the best observed value instead", exc)
        pool = np.flatnonzero(high) if high.any() else np.arange(X.shape[0])
        i = int(pool[np.argmax(Y[pool])])
        return Recommendation(i, X[i, :d].copy(), float(Y[i]), "best-observed")

