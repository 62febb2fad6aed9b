"""Reproduce the case studies of Kench et al., Matter 2024, and the multi-objective Pareto front.

Examples:
    microdesign case-study name=cs3                           # energy + power cell, Ragone plot (CPU budgets)
    microdesign case-study name=all budget.evaluations=6      # every study, 6 evaluations per campaign
    microdesign case-study name=pareto profile=gpu            # full scale on a GPU
    microdesign case-study name=cs1 run=false                 # rebuild the report from the campaign files
"""

NAME = "case-study"
HELP = "reproduce the energy-vs-power case studies (CS1-CS3, Ragone plot) and the Pareto front, with reports"
CONFIG_NAME = "case_study"


def run(cfg) -> int:
    from microdesign.case_studies.runner import run_case_study

    return run_case_study(cfg)
