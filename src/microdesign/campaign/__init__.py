"""The closed loop (docs/campaign.md): proposals -> generator -> characterisation -> cell -> objective,
every trial recorded in the HDF5 campaign file, stopping on evaluation / wall-time / convergence
budgets, resumable after a kill."""

from microdesign.campaign.evaluate import Evaluation, TrialEvaluator
from microdesign.campaign.loop import Budget, Campaign, batch_seed, best_so_far, best_trial, trial_seed

__all__ = ["Budget", "Campaign", "Evaluation", "TrialEvaluator", "batch_seed", "best_so_far", "best_trial", "trial_seed"]
