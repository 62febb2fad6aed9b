"""BoTorch proposers for the campaign loop (docs/campaign.md).

:class:`SearchSpace` is the optimiser's view of the design space (free unit cube, fixed parameters,
linear constraints); :class:`BotorchProposer` (Sobol initial design, then ``SingleTaskGP`` +
``qLogNoisyExpectedImprovement``) and the :class:`SobolProposer` baseline turn a history into the next
``q x d`` designs.
"""

from microdesign.optim.proposers import (BotorchProposer, GPFitError, Proposal, Proposer, SobolProposer, fit_gp,
                                        sobol_points)
from microdesign.optim.space import DTYPE, LinearConstraint, SearchSpace

__all__ = ["DTYPE", "BotorchProposer", "GPFitError", "LinearConstraint", "Proposal", "Proposer", "SearchSpace", "SobolProposer",
           "fit_gp", "sobol_points"]


def build_proposer(optimiser_cfg, design_space_cfg, seed: int | None = None) -> Proposer:
    """Instantiate ``optimiser`` config (``_target_``) with the :class:`SearchSpace` of ``design_space``.

    ``optimiser.linear_constraints`` goes to the search space; ``optimiser.seed: null`` takes ``seed``.

    Raises:
        ConfigError: bad bounds, fixed values or constraints (see :meth:`SearchSpace.from_config`).
    """
    from hydra.utils import instantiate
    from omegaconf import OmegaConf

    cfg = OmegaConf.to_container(optimiser_cfg, resolve=True)
    cons = cfg.pop("linear_constraints", None) or []
    space = SearchSpace.from_config(OmegaConf.to_container(design_space_cfg, resolve=True)
                                    if not isinstance(design_space_cfg, dict) else design_space_cfg, cons)
    if cfg.get("seed") is None:
        cfg["seed"] = seed
    # partial: Hydra would turn the SearchSpace dataclass into a config node if passed as a kwarg
    return instantiate(cfg, _partial_=True)(space=space)


__all__ += ["build_proposer"]
