"""Run the case studies: compose each campaign of a study, run (or resume) it, then build the report.

A study (``conf/case_study.yaml: studies.<name>``) is a list of campaigns, each
``conf/campaign.yaml`` + ``experiment=<experiment>`` + its overrides + the profile's overrides and
replaced nodes (``profiles.<profile>.set``), with the evaluation budget of the profile. Campaign files
go to ``<output_dir>/<profile>/<study>/<label>.h5``; an existing file is resumed (no completed
evaluation is repeated), so a study killed half-way continues where it stopped. Single-objective
campaigns and the Pareto study both open through :func:`microdesign.campaign.build.open_campaign`,
which runs :class:`~microdesign.campaign.loop.MultiObjectiveCampaign` for a vector objective.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from microdesign.errors import ConfigError

log = logging.getLogger(__name__)

STUDIES = ("cs1", "cs2", "cs3", "pareto", "robust")


@dataclass
class CampaignRun:
    """One campaign of a study, after it ran (or was found on disk).

    Attributes:
        study: study name (``cs3``).
        label: campaign label (``energy_cell``).
        path: campaign file.
        spec: the campaign's entry of the study config (plain dict).
        multi_objective: whether it is a vector-objective campaign.
        head: the campaign file header (``CampaignStore.load``).
        trials: every trial (without volumes).
        validations: the campaign's final re-evaluations of its best designs (``/validation``).
        wall_s: wall time of this run [s] (0 when only loaded).
    """

    study: str
    label: str
    path: Path
    spec: dict[str, Any]
    multi_objective: bool = False
    head: dict[str, Any] = field(default_factory=dict)
    trials: list[Any] = field(default_factory=list)
    validations: list[Any] = field(default_factory=list)
    wall_s: float = 0.0

    def optimum(self) -> Any | None:
        """The campaign's optimum: its recommended design (best validated value) where the campaign
        validated its best designs, else the best design found; None without a completed trial."""
        from microdesign.campaign.loop import best_trial
        from microdesign.campaign.validation import recommended

        rec = recommended(self.trials, self.validations)
        return rec[0] if rec is not None else best_trial(self.trials)

    def validated(self, index: int) -> Any | None:
        """The final re-evaluation of trial ``index``, or None."""
        return next((v for v in self.validations if v.index == index), None)

    @property
    def config(self) -> DictConfig:
        """The campaign's stored, resolved config."""
        return OmegaConf.create(self.head["config_yaml"])


def check(cfg: DictConfig) -> list[str]:
    """Names of the studies to run; validates the case-study config before any work.

    Raises:
        ConfigError: unknown study or profile, a profile borrowing the budgets of an unknown one, or a bad budget.
    """
    name = str(cfg.name)
    if name not in (*STUDIES, "all"):
        raise ConfigError("name", name, f"one of {[*STUDIES, 'all']}")
    if str(cfg.profile) not in cfg.profiles:
        raise ConfigError("profile", cfg.profile, f"one of {list(cfg.profiles)}")
    budgets = OmegaConf.select(cfg, f"profiles.{cfg.profile}.budgets", default=None)
    if budgets is not None and str(budgets) not in cfg.profiles:  # else every campaign would be skipped silently
        raise ConfigError(f"profiles.{cfg.profile}.budgets", budgets, f"another profile's name, one of {list(cfg.profiles)}")
    ev = cfg.budget.evaluations
    if ev is not None and int(ev) < 1:
        raise ConfigError("budget.evaluations", ev, "an integer >= 1 or null")
    names = list(STUDIES) if name == "all" else [name]
    for n in names:
        if n not in cfg.studies:
            raise ConfigError("studies", n, "a study defined in conf/case_study.yaml")
    return names


def evaluations(cfg: DictConfig, spec: Any) -> int:
    """Evaluation budget of one campaign under the current profile (0: skipped in this profile).

    A profile with ``budgets: <other profile>`` uses that profile's budgets.
    """
    budgets = OmegaConf.select(cfg, f"profiles.{cfg.profile}.budgets", default=None) or cfg.profile
    n = int(OmegaConf.select(spec, f"evaluations.{budgets}", default=0) or 0)
    if n == 0:
        return 0
    return int(cfg.budget.evaluations) if cfg.budget.evaluations is not None else n


def campaign_path(cfg: DictConfig, study: str, label: str) -> Path:
    return Path(str(cfg.output_dir)) / str(cfg.profile) / study / f"{label}.h5"


def campaign_config(cfg: DictConfig, study: str, spec: Any) -> DictConfig:
    """The composed campaign config of one campaign of ``study`` (profile applied).

    Raises:
        ConfigError: an unknown experiment or a bad override.
    """
    from microdesign.config import compose

    prof = cfg.profiles[str(cfg.profile)]
    path = campaign_path(cfg, study, str(spec.label))
    n = evaluations(cfg, spec) or 1
    overrides = [f"experiment={spec.experiment}", f"seed={int(cfg.seed)}",
                 f"campaign.progress={str(bool(cfg.progress)).lower()}",
                 *[str(o) for o in prof.overrides], *[str(o) for o in spec.overrides],
                 f"campaign.budget.max_evaluations={n}", f"output={path}"]
    if path.exists():
        overrides.append(f"resume={path}")
    try:
        c = compose("campaign", overrides)
    except Exception as exc:  # noqa: BLE001 - Hydra's composition errors become ConfigError
        raise ConfigError(f"studies.{study}.campaigns[{spec.label}]", overrides, f"a composable campaign ({exc})") from exc
    node_set = prof.get("set")
    sets = OmegaConf.to_container(node_set, resolve=True) if node_set else {}
    for key, node in sets.items():
        OmegaConf.update(c, key, node, merge=False, force_add=True)
    if cfg.get("executor") is not None:  # every campaign runs on the study's executor (local or Ray workers)
        OmegaConf.update(c, "executor", cfg.executor, merge=False, force_add=True)
    return c


def run_campaign(cfg: DictConfig, study: str, spec: Any) -> CampaignRun:
    """Run (or resume, or only load when ``cfg.run`` is false) one campaign of ``study``."""
    from microdesign.campaign.build import close_campaign, open_campaign, validate
    from microdesign.storage import CampaignStore

    label = str(spec.label)
    path = campaign_path(cfg, study, label)
    mo = bool(spec.get("multi_objective", False))
    run = CampaignRun(study, label, path, OmegaConf.to_container(spec, resolve=True), mo)
    t0 = time.perf_counter()
    if bool(cfg.run):
        c = campaign_config(cfg, study, spec)
        setup = validate(c)
        campaign = open_campaign(setup)  # the multi-objective loop where the objective is a vector
        log.info("case study %s / %s: %s (%d evaluations)", study, label, path, setup.budget.max_evaluations)
        try:
            campaign.run()
        finally:
            close_campaign(campaign)
        run.wall_s = time.perf_counter() - t0
    if path.exists():
        store = CampaignStore(path)
        run.head, run.trials = store.load(volumes=False)
        run.validations = store.load_validations()
    return run


def run_study(cfg: DictConfig, study: str) -> dict[str, CampaignRun]:
    """Every campaign of ``study`` with a budget in this profile (label -> run)."""
    out = {}
    for spec in cfg.studies[study].campaigns:
        if evaluations(cfg, spec) == 0:
            log.info("case study %s / %s: no budget in profile %s, skipped", study, spec.label, cfg.profile)
            continue
        out[str(spec.label)] = run_campaign(cfg, study, spec)
    return out


def load_study(cfg: DictConfig, study: str) -> dict[str, CampaignRun]:
    """The campaigns of ``study`` found on disk (nothing is run)."""
    c = OmegaConf.merge(cfg, {"run": False})
    return run_study(c, study)


def run_case_study(cfg: DictConfig) -> int:
    """Run the studies named by ``cfg.name`` and write their reports. Returns 0."""
    names = check(cfg)
    done: dict[str, dict[str, CampaignRun]] = {}
    for study in names:
        done[study] = run_study(cfg, study)
        if not bool(cfg.get("write_report", True)):
            continue
        from microdesign.case_studies.report import write_report

        md = write_report(cfg, study, done[study], load=lambda s: done.get(s) or load_study(cfg, s))
        log.info("case study %s: report %s", study, md)
    return 0
