"""Case studies of Kench et al., Matter 2024 (energy vs power, Ragone plot) and a multi-objective front.

* :mod:`~microdesign.case_studies.stages` - stage adapters: the synthetic line as generator, a
  memoising characteriser, the half cell of case study 1, a cell discharged at several powers.
* :mod:`~microdesign.case_studies.runner` - compose, run or resume each study's campaigns.
* :mod:`~microdesign.case_studies.report` - Ragone sweeps, crossover power, Markdown + PNG reports.

Command: ``microdesign case-study name=cs1|cs2|cs3|pareto|all profile=cpu|gpu``.
"""
