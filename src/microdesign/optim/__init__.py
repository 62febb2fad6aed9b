"""BoTorch proposers for the campaign loop (docs/campaign.md).

:class:`BotorchProposer` (Sobol initial design, then ``SingleTaskGP`` +
``qLogNoisyExpectedImprovement``) and the :class:`SobolProposer` baseline turn a history into the next
``q x d`` designs, proposed in the free unit cube of a :class:`microdesign.design.DesignSpace` (fixed
parameters held, linear constraints). :class:`microdesign.optim.multi_fidelity.MultiFidelityProposer`
also chooses the fidelity level of each design (docs/multi_fidelity.md), with the per-level cost model
of :mod:`microdesign.optim.cost`.
"""

from microdesign.optim.proposers import (BotorchProposer, GPFitError, Proposal, Proposer, SobolProposer, fit_gp,
                                        sobol_points)

__all__ = ["BotorchProposer", "GPFitError", "Proposal", "Proposer", "SobolProposer", "fit_gp", "sobol_points"]


def build_proposer(optimiser_cfg, space, seed: int | None = None) -> Proposer:
    """Instantiate ``optimiser`` config (``_target_``) over ``space``, a :class:`~microdesign.design.DesignSpace`.

    ``optimiser.linear_constraints`` are added to the space (:meth:`DesignSpace.with_constraints`);
    ``optimiser.seed: null`` takes ``seed``.

    Raises:
        ConfigError: bad constraints (see :class:`~microdesign.design.DesignSpace`) or a bad optimiser setting.
    """
    from hydra.utils import instantiate
    from omegaconf import OmegaConf

    cfg = OmegaConf.to_container(optimiser_cfg, resolve=True)
    space = space.with_constraints(cfg.pop("linear_constraints", None))
    if cfg.get("seed") is None:
        cfg["seed"] = seed
    # partial: Hydra would turn the design space into a config node if passed as a kwarg
    return instantiate(cfg, _partial_=True)(space=space)


__all__ += ["build_proposer"]
