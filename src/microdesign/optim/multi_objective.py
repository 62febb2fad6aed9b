"""Multi-objective proposer: the whole Pareto front of several objectives in one campaign (docs/campaign.md).

:class:`HypervolumeProposer` follows the :class:`~microdesign.optim.proposers.Proposer` protocol with
``Y`` of shape ``n x m`` (every objective maximised): the same scrambled Sobol points as the
single-objective proposer for an initial design of ``n_initial`` trials, then one ``SingleTaskGP``
per objective (``Normalize`` / ``Standardize``, observed noise from the characterisation CI; a
``ModelListGP``) and ``qLogNoisyExpectedHypervolumeImprovement`` with a fixed reference point,
optimised by ``optimize_acqf``. Sources: Daulton et al., "Parallel Bayesian optimization of multiple
noisy objectives with expected hypervolume improvement", NeurIPS 2021 (qNEHVI); Ament et al.,
NeurIPS 2023 (the log form); BoTorch's multi-objective tutorial for the defaults (reference point
slightly worse than the worst acceptable value of each objective).

:func:`pareto_mask` and :func:`hypervolume` are thin wrappers of BoTorch's utilities, in
float64 on the CPU.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence

import numpy as np
import torch

from microdesign.design.space import DTYPE, DesignSpace
from microdesign.errors import ConfigError
from microdesign.logs import warnings_to_log
from microdesign.optim.proposers import (
    Proposal,
    check_proposer_options,
    fit_gp,
    model_based_or_sobol,
    pending_unit,
    sobol_points,
)

log = logging.getLogger(__name__)


def pareto_mask(Y: np.ndarray) -> np.ndarray:
    """Which rows of ``Y`` (``n x m``, maximised) are not dominated by another row (bool, shape ``n``)."""
    from botorch.utils.multi_objective.pareto import is_non_dominated

    Y = np.asarray(Y, float).reshape(len(Y), -1)
    if Y.shape[0] == 0:
        return np.zeros(0, bool)
    return is_non_dominated(torch.as_tensor(Y, dtype=DTYPE), deduplicate=False).numpy()


def hypervolume(Y: np.ndarray, ref_point: Sequence[float]) -> float:
    """Hypervolume dominated by the rows of ``Y`` (``n x m``, maximised) above ``ref_point`` (shape ``m``).

    Raises:
        ConfigError: ``ref_point`` of the wrong length.
    """
    from botorch.utils.multi_objective.hypervolume import Hypervolume

    Y = np.asarray(Y, float).reshape(len(Y), -1) if len(Y) else np.zeros((0, len(ref_point)))
    ref = torch.as_tensor(np.asarray(ref_point, float), dtype=DTYPE)
    if Y.shape[1] != ref.numel():
        raise ConfigError("ref_point", list(ref_point), f"{Y.shape[1]} values, one per objective")
    Yt = torch.as_tensor(Y, dtype=DTYPE)
    Yt = Yt[(Yt > ref).all(-1)]
    if Yt.shape[0] == 0:
        return 0.0
    Yt = Yt[pareto_mask(Yt.numpy())]
    return float(Hypervolume(ref_point=ref).compute(Yt))


class HypervolumeProposer:
    """Sobol initial design, then per-objective ``SingleTaskGP`` + ``qLogNoisyExpectedHypervolumeImprovement``.

    Args:
        space: the design space.
        ref_point: reference point, shape ``m``, in the maximised objectives' units (e.g.
            ``[400, 100]`` W.h.L-1 for energy density at 10 W and 200 W): only designs better than
            it in every objective add hypervolume.
        q: default batch size.
        n_initial: Sobol trials before the first model-based proposal (2 d).
        num_restarts, raw_samples, mc_samples, maxiter: as :class:`~microdesign.optim.BotorchProposer`
            (qNEHVI is costlier per sample: 128 MC samples, BoTorch's tutorial value).
        noise: ``"observed"`` (``train_Yvar``) or ``"inferred"``.
        min_noise_variance: floor on the observed noise, relative to each objective's variance.
        seed: Sobol scrambling seed (the campaign passes its own).

    Raises:
        ConfigError: fewer than two objectives, ``q < 1``, ``n_initial < 1`` or an unknown noise mode.
    """

    name = "qLogNEHVI"

    def __init__(self, space: DesignSpace, ref_point: Sequence[float], q: int = 1, n_initial: int = 8,
                 num_restarts: int = 8, raw_samples: int = 256, mc_samples: int = 128, noise: str = "observed",
                 min_noise_variance: float = 1e-6, maxiter: int = 200, seed: int | None = None):
        ref = [float(r) for r in ref_point]
        if len(ref) < 2 or not all(np.isfinite(ref)):
            raise ConfigError("optimiser.ref_point", list(ref_point), "two or more finite values (one per objective)")
        check_proposer_options(q, n_initial, noise)
        self.space, self.ref_point, self.q, self.n_initial = space, ref, int(q), int(n_initial)
        self.num_restarts, self.raw_samples, self.mc_samples = int(num_restarts), int(raw_samples), int(mc_samples)
        self.noise, self.min_noise_variance, self.maxiter, self.seed = noise, float(min_noise_variance), int(maxiter), seed

    @property
    def m(self) -> int:
        return len(self.ref_point)

    def propose(self, X: np.ndarray, Y: np.ndarray, Yvar: np.ndarray | None, n_proposed: int, q: int,
                seed: int, X_pending: np.ndarray | None = None) -> Proposal:
        """Next ``q`` designs.

        Args:
            X: observed physical designs ``n x d``.
            Y: their objectives ``n x m`` (maximised).
            Yvar: noise variances ``n x m`` (None: inferred).
            n_proposed: trials proposed so far (position in the Sobol sequence).
            q: batch size.
            seed: seed of this proposal.
            X_pending: physical designs being evaluated now, ``p x d`` (BoTorch's ``X_pending``:
                asynchronous batch BO); None or empty: none.

        Raises:
            ConfigError: ``Y`` without ``m`` columns.
        """
        t0 = time.perf_counter()
        s = self.seed if self.seed is not None else seed
        X = np.zeros((0, self.space.d)) if X is None else np.asarray(X, np.float64).reshape(-1, self.space.d)
        Y = np.zeros((0, self.m)) if Y is None or np.size(Y) == 0 else np.asarray(Y, np.float64)
        Y = Y.reshape(X.shape[0], -1) if Y.size else Y.reshape(0, self.m)
        if Y.shape[1] != self.m:
            raise ConfigError("Y", Y.shape, f"n x {self.m} objectives (the reference point's length)")
        flat = Y.shape[0] < 2 or np.any(np.ptp(Y, axis=0) == 0)
        if n_proposed < self.n_initial or flat:
            Z = sobol_points(self.space, n_proposed, q, s)
            return Proposal(self.space.from_free_unit(Z), "sobol", None, time.perf_counter() - t0)
        return model_based_or_sobol(self.space, lambda: self._model_based(X, Y, Yvar, q, seed, X_pending), "qLogNEHVI",
                                    n_proposed, q, s, t0)

    def _model_based(self, X: np.ndarray, Y: np.ndarray, Yvar: np.ndarray | None, q: int,
                     seed: int, X_pending: np.ndarray | None = None) -> tuple[torch.Tensor, float]:
        """Per-objective GPs + qLogNEHVI + optimize_acqf; returns (``q x d_free`` unit-cube candidates, value)."""
        from botorch.acquisition.multi_objective.logei import qLogNoisyExpectedHypervolumeImprovement
        from botorch.models import ModelListGP
        from botorch.optim import optimize_acqf
        from botorch.sampling import SobolQMCNormalSampler

        with torch.random.fork_rng():
            torch.manual_seed(int(seed))
            Zt = self.space.to_free_unit(X)
            models = []
            for k in range(self.m):
                yk = torch.as_tensor(Y[:, k], dtype=DTYPE).unsqueeze(-1)
                vk = None
                if self.noise == "observed" and Yvar is not None:
                    vk = torch.as_tensor(np.asarray(Yvar, np.float64).reshape(X.shape[0], -1)[:, k],
                                         dtype=DTYPE).unsqueeze(-1)
                models.append(fit_gp(Zt, yk, vk, self.min_noise_variance))
            model = ModelListGP(*models)
            sampler = SobolQMCNormalSampler(sample_shape=torch.Size([self.mc_samples]), seed=int(seed))
            acq = qLogNoisyExpectedHypervolumeImprovement(
                model=model, ref_point=torch.as_tensor(self.ref_point, dtype=DTYPE), X_baseline=Zt,
                sampler=sampler, prune_baseline=True, X_pending=pending_unit(self.space, X_pending))
            cons = self.space.unit_inequality_constraints() or None
            with warnings_to_log(log, "qLogNEHVI optimisation"):
                cand, value = optimize_acqf(acq, bounds=self.space.unit_bounds(), q=q, num_restarts=self.num_restarts,
                                            raw_samples=self.raw_samples, inequality_constraints=cons,
                                            options={"maxiter": self.maxiter, "batch_limit": 4}, sequential=True)
        value = float(value.sum()) if value.numel() > 1 else float(value)
        return cand.detach(), value
