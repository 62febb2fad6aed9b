"""Proposers: history of evaluated designs -> the next ``q`` designs.

Two proposers share one protocol (:class:`Proposer`):

* :class:`SobolProposer` — the baseline: points of one scrambled Sobol sequence in the free unit
  cube, in order, so that the ``k``-th proposal of a campaign is the same on resume.
* :class:`BotorchProposer` — the same Sobol points for an initial design of ``n_initial`` trials,
  then a ``SingleTaskGP`` (``Normalize`` inputs, ``Standardize`` outcome, observed noise
  ``train_Yvar`` from the characterisation CI) with ``qLogNoisyExpectedImprovement`` optimised by
  ``optimize_acqf``. Source of these choices: BoTorch/Ax defaults (Balandat et al., NeurIPS 2020;
  Ament et al., "Unexpected improvements to expected improvement", NeurIPS 2023, for LogEI);
  Kench et al., Matter 2024, used a GP + EI loop on the same problem.

Everything runs in float64 on the CPU (BoTorch recommends double precision for GP fitting;
docs/campaign.md). The objective
is maximised.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import torch

from microdesign.design.space import DTYPE, DesignSpace
from microdesign.errors import ConfigError
from microdesign.logs import warnings_to_log

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Proposal:
    """``q`` designs to evaluate next.

    Attributes:
        X: physical designs, shape ``q x d`` (design-space order, fixed parameters filled in).
        method: how they were chosen (``"sobol"``, ``"qLogNEI"``, ``"qLogNEHVI"``, or
            ``"sobol-fallback"`` where the model-based proposal failed).
        acquisition_value: value of the acquisition function at the batch (None for Sobol).
        seconds: wall time spent proposing [s].
        note: why a fallback was used (exception type and message), else None; stored with the trial.
    """

    X: np.ndarray
    method: str
    acquisition_value: float | None = None
    seconds: float = 0.0
    note: str | None = None


class GPFitError(RuntimeError):
    """The GP hyperparameter fit failed (BoTorch's ``fit_gpytorch_mll`` gave up after its retries)."""


class Proposer(Protocol):
    """What the campaign needs from an optimiser."""

    q: int

    def propose(self, X: np.ndarray, Y: np.ndarray, Yvar: np.ndarray | None, n_proposed: int, q: int,
                seed: int, X_pending: np.ndarray | None = None) -> Proposal:
        """Next ``q`` designs.

        Args:
            X: observed physical designs, ``n x d`` (trials that count for the model).
            Y: their objective values, shape ``n`` (maximised).
            Yvar: observation noise variances, shape ``n`` (None: unknown).
            n_proposed: number of trials proposed so far in the campaign (all statuses); the
                position in the Sobol sequence.
            q: batch size.
            seed: seed of this proposal (the campaign derives it from its seed and the batch index).
            X_pending: physical designs being evaluated now, ``p x d`` (asynchronous batch BO:
                the acquisition function integrates over their unknown outcomes, BoTorch's
                ``X_pending``); None or empty: none. Only passed by the campaign when not empty.
        """


def sobol_points(space: DesignSpace, start: int, q: int, seed: int) -> torch.Tensor:
    """Points ``start .. start + q - 1`` of one scrambled Sobol sequence in the free unit cube, ``q x d_free``.

    Points violating the linear constraints are skipped (rejection), so the sequence of feasible
    points is still deterministic in ``seed``.
    """
    from torch.quasirandom import SobolEngine

    engine = SobolEngine(space.d_free, scramble=True, seed=int(seed))
    chunk = max(64, 2 * (start + q))
    feasible: list[torch.Tensor] = []
    n_feasible = 0
    for _ in range(64):
        Z = engine.draw(chunk, dtype=DTYPE)
        Z = Z[space.feasible_mask(Z)]
        feasible.append(Z)
        n_feasible += Z.shape[0]
        if n_feasible >= start + q:
            break
    Z = torch.cat(feasible)
    if Z.shape[0] < start + q:
        raise ConfigError("optimiser.linear_constraints", "feasible fraction too small",
                          "constraints that leave a usable share of the design space")
    return Z[start:start + q]


def check_proposer_options(q: int, n_initial: int | None = None, noise: str | None = None) -> None:
    """Check the options the proposers share (None: not checked).

    Raises:
        ConfigError: ``optimiser.q`` or ``optimiser.n_initial`` below 1, or ``optimiser.noise`` not
            ``"observed"`` or ``"inferred"``.
    """
    if int(q) < 1:
        raise ConfigError("optimiser.q", q, "an integer >= 1")
    if n_initial is not None and int(n_initial) < 1:
        raise ConfigError("optimiser.n_initial", n_initial, "an integer >= 1")
    if noise is not None and noise not in ("observed", "inferred"):
        raise ConfigError("optimiser.noise", noise, "'observed' or 'inferred'")


class SobolProposer:
    """Baseline: the next ``q`` points of a scrambled Sobol sequence (ignores observations).

    Args:
        space: the design space.
        q: default batch size.
        seed: Sobol scrambling seed; the campaign passes its own seed.
    """

    name = "sobol"

    def __init__(self, space: DesignSpace, q: int = 1, seed: int | None = None):
        check_proposer_options(q)
        self.space, self.q, self.seed = space, int(q), seed

    def propose(self, X, Y, Yvar, n_proposed: int, q: int, seed: int, X_pending=None) -> Proposal:
        t0 = time.perf_counter()
        s = self.seed if self.seed is not None else seed
        Z = sobol_points(self.space, n_proposed, q, s)  # running designs took earlier points of the sequence
        return Proposal(self.space.from_free_unit(Z), "sobol", None, time.perf_counter() - t0)


def pending_unit(space: DesignSpace, X_pending: np.ndarray | None) -> torch.Tensor | None:
    """Physical pending designs ``p x d`` -> free unit-cube tensor ``p x d_free`` (None when there are none)."""
    if X_pending is None or np.size(X_pending) == 0:
        return None
    return space.to_free_unit(np.asarray(X_pending, dtype=np.float64).reshape(-1, space.d))


def fit_gp(Z: torch.Tensor, Y: torch.Tensor, Yvar: torch.Tensor | None, min_noise_variance: float = 1e-6,
           data_fidelities: list[int] | None = None):
    """Fit a ``SingleTaskGP`` (or, with ``data_fidelities``, a ``SingleTaskMultiFidelityGP``) on unit-cube inputs.

    Args:
        Z: inputs ``n x d_free`` in the unit cube (float64).
        Y: outcomes ``n x 1`` (maximised).
        Yvar: observed noise variances ``n x 1`` or None (then a homoscedastic noise is inferred).
        min_noise_variance: floor on ``Yvar`` relative to the sample variance of ``Y`` (a zero noise
            makes the kernel matrix singular for repeated designs).
        data_fidelities: input columns holding a fidelity in [0, 1] (``SingleTaskMultiFidelityGP``,
            docs/multi_fidelity.md); None: a plain ``SingleTaskGP``.

    Returns:
        The fitted model (eval mode).

    Raises:
        GPFitError: the marginal-likelihood fit failed; a model on its prior hyperparameters is not
            returned, because it would steer the campaign without having seen the data.
    """
    from botorch.fit import fit_gpytorch_mll
    from botorch.models import SingleTaskGP
    from botorch.models.transforms import Normalize, Standardize
    from gpytorch.mlls import ExactMarginalLogLikelihood

    d = Z.shape[-1]
    bounds = torch.stack([torch.zeros(d, dtype=DTYPE), torch.ones(d, dtype=DTYPE)])
    kwargs = {}
    if Yvar is not None:
        scale = float(Y.var()) if Y.shape[0] > 1 and float(Y.var()) > 0 else 1.0
        kwargs["train_Yvar"] = Yvar.clamp_min(min_noise_variance * scale)
    if data_fidelities:
        from botorch.models import SingleTaskMultiFidelityGP

        kwargs["data_fidelities"] = list(data_fidelities)
        model_cls = SingleTaskMultiFidelityGP
    else:
        model_cls = SingleTaskGP
    model = model_cls(Z, Y, input_transform=Normalize(d, bounds=bounds), outcome_transform=Standardize(1), **kwargs)
    mll = ExactMarginalLogLikelihood(model.likelihood, model)
    with warnings_to_log(log, "GP fit"):
        try:
            fit_gpytorch_mll(mll)
        except Exception as exc:  # noqa: BLE001 - any fit failure becomes one error type
            raise GPFitError(f"GP hyperparameter fit failed on {Z.shape[0]} observations: "
                             f"{type(exc).__name__}: {exc}") from exc
    model.eval()
    return model


def model_based_or_sobol(space: DesignSpace, model_based: Callable[[], tuple[torch.Tensor, float]], method: str,
                         n_proposed: int, q: int, seed: int, t0: float, threads: int | None = None) -> Proposal:
    """Run a model-based proposal; if it raises, propose the next Sobol points instead.

    Numerical trouble (a failed GP fit, a singular kernel matrix, an acquisition optimisation error)
    must not stop a campaign, and must not pass unnoticed either: the fallback batch is labelled
    ``"sobol-fallback"`` and carries the exception in :attr:`Proposal.note`, which the campaign
    stores with each trial.

    Args:
        space: the design space.
        model_based: returns ``(candidates, acquisition value)``, candidates ``q x d_free`` in the unit cube.
        method: the label of a successful proposal (``"qLogNEI"``, ``"qLogNEHVI"``).
        n_proposed, q, seed: position in the Sobol sequence, batch size and Sobol seed of the fallback.
        t0: ``time.perf_counter()`` at the start of the proposal.
        threads: torch CPU threads during the model-based proposal (restored afterwards); None: unchanged.

    Returns:
        The :class:`Proposal`.
    """
    previous = torch.get_num_threads()
    try:
        if threads is not None:
            torch.set_num_threads(threads)
        cand, value = model_based()
    except Exception as exc:  # noqa: BLE001 - numerical trouble must not stop a campaign
        note = f"{type(exc).__name__}: {exc}"
        log.warning("%s proposal failed (%s); proposing Sobol points instead", method, note)
        log.debug("%s proposal failure", method, exc_info=True)
        Z = sobol_points(space, n_proposed, q, seed)
        return Proposal(space.from_free_unit(Z), "sobol-fallback", None, time.perf_counter() - t0, note)
    finally:
        torch.set_num_threads(previous)
    return Proposal(space.from_free_unit(cand), method, value, time.perf_counter() - t0)


class BotorchProposer:
    """Sobol initial design, then ``SingleTaskGP`` + ``qLogNoisyExpectedImprovement`` (maximisation).

    Args:
        space: the design space (bounds, fixed parameters, linear constraints).
        q: default batch size (``optimiser.q``).
        n_initial: number of Sobol trials before the first model-based proposal (Ax uses
            ``max(5, 2 d)``; the default config uses 2 d).
        num_restarts: ``optimize_acqf`` multi-start count.
        raw_samples: raw samples for the initial conditions of ``optimize_acqf``.
        mc_samples: quasi-MC samples of the acquisition function.
        noise: ``"observed"`` (``train_Yvar`` from the objective's variance) or ``"inferred"``.
        min_noise_variance: floor on observed noise, relative to the variance of Y.
        maxiter: L-BFGS-B iterations per restart.
        seed: Sobol scrambling seed of the initial design (the campaign passes its own seed).
        threads: torch CPU threads while fitting and optimising (restored afterwards); None keeps
            torch's setting. 1 avoids thread oversubscription on a small shared CPU, where the
            small GP gains nothing from several threads.

    Raises:
        ConfigError: ``q < 1``, ``n_initial < 1`` or an unknown ``noise``.
    """

    name = "qLogNEI"

    def __init__(self, space: DesignSpace, q: int = 1, n_initial: int = 8, num_restarts: int = 8,
                 raw_samples: int = 256, mc_samples: int = 256, noise: str = "observed",
                 min_noise_variance: float = 1e-6, maxiter: int = 200, seed: int | None = None,
                 threads: int | None = 1):
        check_proposer_options(q, n_initial, noise)
        self.space, self.q, self.n_initial = space, int(q), int(n_initial)
        self.num_restarts, self.raw_samples, self.mc_samples = int(num_restarts), int(raw_samples), int(mc_samples)
        self.noise, self.min_noise_variance, self.maxiter, self.seed = noise, float(min_noise_variance), int(maxiter), seed
        if threads is not None and int(threads) < 1:
            raise ConfigError("optimiser.threads", threads, "an integer >= 1 or null")
        self.threads = None if threads is None else int(threads)

    def propose(self, X, Y, Yvar, n_proposed: int, q: int, seed: int, X_pending=None) -> Proposal:
        t0 = time.perf_counter()
        s = self.seed if self.seed is not None else seed
        X = np.zeros((0, self.space.d)) if X is None else np.asarray(X, dtype=np.float64).reshape(-1, self.space.d)
        Y = np.zeros(0) if Y is None else np.asarray(Y, dtype=np.float64).reshape(-1)
        if n_proposed < self.n_initial or X.shape[0] < 2 or np.ptp(Y) == 0:
            Z = sobol_points(self.space, n_proposed, q, s)
            return Proposal(self.space.from_free_unit(Z), "sobol", None, time.perf_counter() - t0)
        return model_based_or_sobol(self.space, lambda: self._model_based(X, Y, Yvar, q, seed, X_pending), self.name,
                                    n_proposed, q, s, t0, self.threads)

    def _model_based(self, X: np.ndarray, Y: np.ndarray, Yvar: np.ndarray | None, q: int,
                     seed: int, X_pending: np.ndarray | None = None) -> tuple[torch.Tensor, float]:
        """GP fit + qLogNEI (pending designs as ``X_pending``) + optimize_acqf; returns (``q x d_free``
        unit-cube candidates, acquisition value)."""
        from botorch.acquisition.logei import qLogNoisyExpectedImprovement
        from botorch.optim import optimize_acqf
        from botorch.sampling import SobolQMCNormalSampler

        with torch.random.fork_rng():
            torch.manual_seed(int(seed))
            Zt = self.space.to_free_unit(X)
            Yt = torch.as_tensor(Y, dtype=DTYPE).unsqueeze(-1)
            Yv = None
            if self.noise == "observed" and Yvar is not None:
                Yv = torch.as_tensor(np.asarray(Yvar, dtype=np.float64).reshape(-1), dtype=DTYPE).unsqueeze(-1)
            model = fit_gp(Zt, Yt, Yv, self.min_noise_variance)
            sampler = SobolQMCNormalSampler(sample_shape=torch.Size([self.mc_samples]), seed=int(seed))
            acq = qLogNoisyExpectedImprovement(model=model, X_baseline=Zt, sampler=sampler, prune_baseline=True,
                                               X_pending=pending_unit(self.space, X_pending))
            cons = self.space.unit_inequality_constraints() or None
            with warnings_to_log(log, "qLogNEI optimisation"):
                cand, value = optimize_acqf(
                    acq, bounds=self.space.unit_bounds(), q=q, num_restarts=self.num_restarts,
                    raw_samples=self.raw_samples, inequality_constraints=cons,
                    options={"maxiter": self.maxiter, "batch_limit": 8},
                )
        return cand.detach(), float(value)
