"""BoTorch proposers for the campaign loop (docs/campaign.md).

:class:`BotorchProposer` (Sobol initial design, then ``SingleTaskGP`` +
``qLogNoisyExpectedImprovement``) and the :class:`SobolProposer` baseline turn a history into the next
``q x d`` designs, proposed in the free unit cube of a :class:`microdesign.design.DesignSpace` (fixed
parameters held, linear constraints).
"""

from microdesign.optim.proposers import (BotorchProposer, GPFitError, Proposal, Proposer, SobolProposer, fit_gp,
                                        sobol_points)

__all__ = ["BotorchProposer", "GPFitError", "Proposal", "Proposer", "SobolProposer", "fit_gp", "sobol_points"]


def build_proposer(optimiser_cfg, design_space_cfg, seed: int | None = None) -> Proposer:
    """Instantiate ``optimiser`` config (``_target_``) with the :class:`~microdesign.design.DesignSpace` of ``design_space``.

    ``optimiser.linear_constraints`` goes to the design space; ``optimiser.seed: null`` takes ``seed``.

    Raises:
        ConfigError: bad bounds, fixed values or constraints (see :meth:`DesignSpace.from_config`).
    """
    from hydra.utils import instantiate
    from omegaconf import OmegaConf

    from microdesign.design import DesignSpace

    cfg = OmegaConf.to_container(optimiser_cfg, resolve=True)
    cons = cfg.pop("linear_constraints", None) or []
    space = DesignSpace.from_config(OmegaConf.to_container(design_space_cfg, resolve=True)
                                    if not isinstance(design_space_cfg, dict) else design_space_cfg, cons)
    if cfg.get("seed") is None:
        cfg["seed"] = seed
    # partial: Hydra would turn the design space into a config node if passed as a kwarg
    return instantiate(cfg, _partial_=True)(space=space)


__all__ += ["build_proposer"]
