"""Run a closed-loop optimisation campaign (design -> generator -> characterisation -> cell -> BoTorch).

Examples:
    microdesign campaign                                   # embedded default (CPU, shipped generator)
    microdesign campaign experiment=gpu optimiser.q=4      # a preset, batch of 4
    microdesign campaign campaign.budget.max_evaluations=40 output=runs/mine.h5
    microdesign campaign resume=runs/mine.h5               # continue a killed or finished campaign
"""

NAME = "campaign"
HELP = "closed-loop BoTorch optimisation of the electrode microstructure, stored in an HDF5 campaign file"
CONFIG_NAME = "campaign"


def run(cfg) -> int:
    from microdesign.campaign.build import run_campaign

    return run_campaign(cfg)
