"""Build a campaign from its config: validate everything first, then construct the stages and the loop.

Validation before any work (:func:`validate`): the design space (unknown fields, inverted bounds,
fixed values outside bounds), linear constraints, the objective's quantity, the generator (missing
checkpoint; parameters it does not condition on; a design space outside its training bounds), the
cell protocol (one protocol, not a sweep) and the budgets. Each problem is a
:class:`~microdesign.errors.ConfigError` naming the parameter, its value and what was expected.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from microdesign.errors import ConfigError

log = logging.getLogger(__name__)

#: Keys that a resume may take from the command line (everything else comes from the stored config).
RESUMABLE_KEYS = ("campaign.budget", "campaign.progress", "campaign.on_resume_running", "campaign.validation",
                  "executor")
#: Classes that moved after campaign files naming them were written: old -> new ``_target_``.
MOVED_TARGETS = {"microdesign.case_studies.multi_objective.CellQuantities": "microdesign.objective.vector.CellQuantities",
                 "microdesign.case_studies.stages.HalfCellModel": "microdesign.cell.HalfCellModel"}


def instantiate(node: Any, what: str, **kwargs: Any) -> Any:
    """``hydra.utils.instantiate`` that lets our ConfigError through instead of Hydra's wrapper.

    Raises:
        ConfigError: the target raised one, or the node has no ``_target_``.
    """
    from hydra.errors import InstantiationException
    from hydra.utils import instantiate as hydra_instantiate

    if node is None or "_target_" not in node:
        raise ConfigError(what, None if node is None else OmegaConf.to_container(node), "a config with _target_")
    try:
        return hydra_instantiate(node, **kwargs)
    except InstantiationException as exc:
        cause = exc.__cause__
        while cause is not None and not isinstance(cause, ConfigError) and cause.__cause__ is not None:
            cause = cause.__cause__
        if isinstance(cause, ConfigError):
            raise cause from None
        raise ConfigError(what, OmegaConf.to_container(node).get("_target_"), f"an instantiable config ({exc})") from exc


def check_generator(generator: Any, space: Any) -> None:
    """The generator conditions on exactly the microstructure parameters and was trained on their range.

    Args:
        generator: has ``training_bounds`` (``name -> (lower, upper)``; None: accepts anything).
        space: ``microdesign.design.DesignSpace``.

    Raises:
        ConfigError: a microstructure parameter the generator does not know, a generator parameter
            missing from the design space, or bounds (or a fixed value) outside the training bounds.
    """
    tb = getattr(generator, "training_bounds", None)
    if tb is None:
        return
    tb = dict(tb)
    micro = list(space.microstructure_names)
    unknown = [n for n in micro if n not in tb]
    if unknown:
        raise ConfigError(f"design_space.parameters.{unknown[0]}", unknown[0],
                          f"a parameter the generator conditions on: {sorted(tb)} (role: cell if it only changes the cell)")
    missing = [n for n in tb if n not in micro]
    if missing:
        raise ConfigError("design_space.parameters", micro, f"every generator parameter {sorted(tb)} (missing {missing})")
    for n in micro:
        p = space[n]
        lo, hi = (float(v) for v in tb[n])
        span = [p.fixed, p.fixed] if p.fixed is not None else [p.lower, p.upper]
        tol = 1e-9 * max(hi - lo, 1e-12)
        if span[0] < lo - tol or span[1] > hi + tol:
            raise ConfigError(f"design_space.parameters.{n}", span,
                              f"a range within the generator's training bounds [{lo}, {hi}]")


@dataclass
class Setup:
    """Everything a campaign needs, validated."""

    cfg: DictConfig
    space: Any
    proposer: Any
    evaluator: Any
    objective: Any
    budget: Any
    path: Path
    resume: bool
    final_validation: Any = None


def _merge_resume(cfg: DictConfig) -> DictConfig:
    """The stored config of ``cfg.resume`` with the command line's resumable keys.

    Raises:
        ConfigError: the file does not exist or is not a campaign file.
    """
    from microdesign.characterise.characteriser import upgrade_flat_config
    from microdesign.config import compose
    from microdesign.storage import load_campaign_file

    path = Path(str(cfg.resume))
    head = load_campaign_file(path, "resume")[0]  # the whole file reads (checksum, every trial) before any work
    _check_output_free(path, resume=True)
    text = head["config_yaml"]
    for old, new in MOVED_TARGETS.items():  # files written before a class moved still resume
        if f"_target_: {old}\n" in text:
            log.info("resume: %s is now %s", old, new)
            text = text.replace(f"_target_: {old}\n", f"_target_: {new}\n")
    stored = OmegaConf.create(text)
    if stored.get("characterise") is not None:  # files written while the characteriser's settings were flat
        stored.characterise = upgrade_flat_config(stored.characterise)
    default = compose("campaign", [])
    for key in RESUMABLE_KEYS:
        here, base = OmegaConf.select(cfg, key), OmegaConf.select(default, key)
        # a key the stored config lacks (a file from an older version) takes this run's value, default included
        if here is not None and (here != base or OmegaConf.select(stored, key) is None):
            OmegaConf.update(stored, key, here, merge=False)
            log.info("resume: %s taken from the command line", key)
    # the evaluation settings of the campaign (cube size and count, ...) are part of the stored config too
    fixed_campaign = [f"campaign.{k}" for k in (default.get("campaign") or {})
                      if not any(f"campaign.{k}" == r or f"campaign.{k}".startswith(r + ".") for r in RESUMABLE_KEYS)]
    ignored = [k for k in ("design_space", "generator", "characterise", "cell", "objective", "optimiser", "seed",
                           *fixed_campaign)
               if OmegaConf.select(cfg, k) != OmegaConf.select(default, k)
               and OmegaConf.select(cfg, k) != OmegaConf.select(stored, k)]
    if ignored:
        log.warning("resume: %s differ from the stored campaign and are ignored (the stored config is used)", ignored)
    if cfg.get("output") is not None and os.path.realpath(str(cfg.output)) != os.path.realpath(str(path)):
        log.warning("resume: output=%s is ignored: a resumed campaign goes on writing its own file %s", cfg.output, path)
    stored.resume = str(path)
    stored.output = str(path)
    return stored


def validate(cfg: DictConfig) -> Setup:
    """Validate ``cfg`` and build the stages (loads the generator checkpoint and the cell model; no evaluation).

    Raises:
        ConfigError: any invalid setting (module docstring).
    """
    from microdesign.campaign.executor import check_executor
    from microdesign.campaign.loop import Budget
    from microdesign.campaign.multi_fidelity import check_fidelity_levels
    from microdesign.campaign.validation import FinalValidation
    from microdesign.design import DesignSpace
    from microdesign.optim import build_proposer

    resume = cfg.get("resume") is not None
    if resume:
        cfg = _merge_resume(cfg)
    space = DesignSpace.from_config(cfg.design_space)
    seed = int(cfg.seed)
    proposer = build_proposer(cfg.optimiser, space, seed=seed)
    objective = instantiate(cfg.objective, "objective")
    if hasattr(objective, "check_quantity"):
        objective.check_quantity()
    check_fidelity_levels(cfg, proposer, objective)
    c = cfg.campaign
    b = c.budget
    budget = Budget(int(b.max_evaluations), None if b.max_wall_time_s is None else float(b.max_wall_time_s),
                    None if b.convergence_patience is None else int(b.convergence_patience),
                    float(b.convergence_rel_tol))
    v = c.get("validation") or {}
    final_validation = FinalValidation(int(v.get("top_k", 0)), int(v.get("n_cubes", 12)))
    if int(c.cube_size_voxels) < 4:
        raise ConfigError("campaign.cube_size_voxels", c.cube_size_voxels, "an integer >= 4 [voxels]")
    if not c.adaptive and int(c.n_cubes) < 2:
        raise ConfigError("campaign.n_cubes", c.n_cubes, "an integer >= 2 (a CI needs two cubes)")
    protocol = OmegaConf.select(cfg, "cell.protocol")
    if protocol is not None:  # the kind may also follow from the values set (cell.protocol.c_rates=[...])
        from microdesign.cell.protocols import SWEEPS, protocol_from_config

        if isinstance(protocol_from_config(OmegaConf.to_container(protocol, resolve=True)), SWEEPS):
            raise ConfigError("cell.protocol", OmegaConf.to_container(protocol, resolve=True),
                              "one protocol (constant_power or constant_current), not a power or rate sweep")
    unknown_cell = [n for n in space.cell_names if n != "mass_loading_mg_cm2"]
    if unknown_cell:
        raise ConfigError(f"design_space.parameters.{unknown_cell[0]}", unknown_cell[0],
                          "a cell-role parameter the campaign passes to the cell model: ['mass_loading_mg_cm2']")
    if "mass_loading_mg_cm2" not in space.names and not space.process_names and c.get("cathode_thickness_m") is None:
        raise ConfigError("campaign.cathode_thickness_m", None,
                          "a thickness [m] when the design space has no mass_loading_mg_cm2")
    if str(c.get("on_resume_running", "rerun")) not in ("rerun", "abandon"):
        raise ConfigError("campaign.on_resume_running", c.get("on_resume_running"), "'rerun' or 'abandon'")
    target_ci, max_cubes = c.get("target_relative_ci"), c.get("max_cubes")
    if c.adaptive and target_ci is not None and not 0 < float(target_ci) < 1:
        raise ConfigError("campaign.target_relative_ci", target_ci, "a relative 95% CI in (0, 1), or null")
    if c.adaptive and max_cubes is not None and int(max_cubes) < 2:
        raise ConfigError("campaign.max_cubes", max_cubes, "an integer >= 2 (a CI needs two cubes), or null")
    if c.adaptive:
        from microdesign.campaign.evaluate import configured_adaptive_target, resolve_adaptive_target

        resolve_adaptive_target(configured_adaptive_target(c), objective)
    if not resume and cfg.get("output") and Path(str(cfg.output)).suffix.lower() not in (".h5", ".hdf5"):
        raise ConfigError("output", str(cfg.output), "a campaign file path ending in .h5 or .hdf5 (HDF5)")
    if cfg.get("output"):  # before the stages are built: the file is new, or no other process writes it
        _check_output_free(Path(str(cfg.output)), resume)
    check_executor(cfg)
    evaluator = build_evaluator(cfg, space, objective)
    check_executor(cfg, evaluator.characteriser)  # split_cubes needs a characteriser it can fan out
    if cfg.get("output"):
        path = Path(str(cfg.output))
    else:
        path = Path("runs") / time.strftime("campaign-%Y%m%d-%H%M%S") / "campaign.h5"
    if not resume and path.exists():
        raise ConfigError("output", str(path), "a new file (to continue this campaign use resume=<file>)")
    return Setup(cfg, space, proposer, evaluator, objective, budget, path, resume, final_validation)


def build_evaluator(cfg: DictConfig, space: Any = None, objective: Any = None) -> Any:
    """The stages of one evaluation from a campaign config: generator (checked against the design
    space), characteriser, cell model and objective in a :class:`~microdesign.campaign.evaluate.TrialEvaluator`,
    with the metric calibration of ``campaign.metric_calibration`` where one applies
    (:func:`microdesign.characterise.calibration.resolve_metric_calibration`).

    :func:`validate` calls it in the campaign process; each Ray worker
    (:mod:`microdesign.campaign.executor`) calls it once on the stored config to build its own copy.

    Args:
        cfg: the resolved campaign config.
        space: its ``DesignSpace`` (None: built from ``cfg.design_space``).
        objective: the instantiated objective (None: instantiated from ``cfg.objective``).

    Raises:
        ConfigError: a stage that cannot be built, a generator that does not fit the design space, or a
            metric calibration file that does not fit the evaluation.
    """
    from microdesign.campaign.evaluate import TrialEvaluator, configured_adaptive_target
    from microdesign.design import DesignSpace

    space = DesignSpace.from_config(cfg.design_space) if space is None else space
    objective = instantiate(cfg.objective, "objective") if objective is None else objective
    c = cfg.campaign
    generator = instantiate(cfg.generator, "generator")
    design_map = None
    if space.process_names:  # manufacturing settings: the process model maps them (checked against the bounds)
        from microdesign.design.manufacturing import ManufacturingDesign

        design_map = ManufacturingDesign.from_config(OmegaConf.select(cfg, "design_space.process"), space, generator)
    else:
        check_generator(generator, space)
    if getattr(objective, "uses_manufacturing", False) and getattr(objective, "statistic", "nominal") != "nominal" \
            and design_map is None:
        raise ConfigError("objective.statistic", objective.statistic,
                          "'nominal', or design_space=manufacturing (the tolerances live in its process model)")
    characteriser = instantiate(cfg.characterise, "characterise")
    cell = instantiate(cfg.cell, "cell")
    levels = OmegaConf.select(cfg, "fidelity_levels.levels")  # multi-fidelity: each trial's level sets its cubes
    if levels is not None:
        from microdesign.optim.cost import parse_levels

        levels = parse_levels(OmegaConf.to_container(levels, resolve=True))
    from microdesign.characterise.calibration import configured_metric_calibration, resolve_metric_calibration

    calibration = resolve_metric_calibration(configured_metric_calibration(c), generator,
                                             OmegaConf.select(cfg, "generator.checkpoint"), int(c.cube_size_voxels),
                                             str(getattr(characteriser, "tau_estimator", "mean")))
    return TrialEvaluator(generator, characteriser, cell, objective, space.microstructure_names, design_map=design_map,
                          levels=levels, metric_calibration=calibration,
                          cube_size_voxels=int(c.cube_size_voxels), n_cubes=int(c.n_cubes),
                          adaptive=bool(c.adaptive), target_relative_ci=c.get("target_relative_ci"),
                          max_cubes=c.get("max_cubes"), adaptive_target=configured_adaptive_target(c),
                          cathode_thickness_m=c.get("cathode_thickness_m"))


def _check_output_free(path: Path, resume: bool) -> None:
    """A new campaign's ``output`` does not exist; no live process holds the writer lock of the file.

    Raises:
        ConfigError: naming ``output`` (or ``resume``), the file and the process that writes it.
    """
    from microdesign.storage.campaign_file import writer_pid

    from microdesign.data.files import require_writable

    option = "resume" if resume else "output"
    if not resume and path.exists():
        raise ConfigError("output", str(path), "a new file (to continue this campaign use resume=<file>)")
    if not resume:
        require_writable(path, "output")
    holder = writer_pid(path)
    if holder is not None:
        raise ConfigError(option, str(path), "a campaign file that no other process is writing "
                          f"(process {holder or '?'} holds its writer lock; wait for it or stop it)")


def _writer(setup: Setup) -> Any:
    """The campaign file's store with the writer lock taken.

    Raises:
        ConfigError: another process holds the lock (``output`` / ``resume``), or a new campaign's
            file appeared since :func:`validate` checked it (two campaigns started at once).
    """
    from microdesign.storage import CampaignFileError, CampaignStore

    option = "resume" if setup.resume else "output"
    try:
        store = CampaignStore(setup.path, writer=True)
    except CampaignFileError as exc:
        raise ConfigError(option, str(setup.path), f"a campaign file that no other process is writing ({exc})") from None
    if not setup.resume and setup.path.exists():
        store.close()
        raise ConfigError("output", str(setup.path), "a new file (another campaign created it since the check; "
                          "to continue it use resume=<file>)")
    return store


def generator_identity(generator: Any) -> dict[str, str]:
    """Name, weights SHA-256 and dataset hash of a checkpointed generator (empty for stand-ins)."""
    meta = getattr(generator, "metadata", None)
    if meta is None:
        return {"generator_name": type(generator).__name__}
    return {"generator_name": str(getattr(meta, "name", "")),
            "generator_weights_sha256": str(getattr(meta, "weights_sha256", "")),
            "generator_dataset_hash": str(getattr(meta, "dataset_hash", ""))}


def open_campaign(setup: Setup, progress: Any = None) -> Any:
    """Create (or reopen for resume) the campaign file and the :class:`Campaign` over it.

    The writer lock is taken first. A file created here is removed again when anything fails before
    the campaign exists (a bad setting found at the start leaves no empty campaign file behind).

    Raises:
        ConfigError: another process writes the file, or a new campaign's file appeared since
            :func:`validate` (naming ``output`` or ``resume``).
    """
    store = _writer(setup)
    try:
        return _open(setup, store, progress)
    except BaseException:
        if not setup.resume:
            store.discard()
        store.close()
        raise


def _open(setup: Setup, store: Any, progress: Any) -> Any:
    from microdesign import __version__
    from microdesign.campaign.loop import Campaign, MultiObjectiveCampaign
    from microdesign.campaign.multi_fidelity import MultiFidelityCampaign, is_multi_fidelity

    cfg, space = setup.cfg, setup.space
    trials, validations = [], []
    if setup.resume:
        _, trials = store.load(volumes=False)
        validations = store.load_validations()
        log.info("resume %s: %d trials (%d finished)", setup.path, len(trials), sum(t.finished for t in trials))
    else:
        params = [space[n] for n in space.names]
        store.create(OmegaConf.to_yaml(cfg, resolve=True), __version__, int(cfg.seed),
                     {"names": list(space.names), "units": [p.unit for p in params],
                      "lower": [p.lower for p in params], "upper": [p.upper for p in params],
                      "fixed": dict(space.fixed_values)},
                     {"name": getattr(setup.objective, "name", "objective"), "unit": getattr(setup.objective, "unit", ""),
                      "direction": getattr(setup.objective, "direction", "maximize")},
                     attrs=generator_identity(setup.evaluator.generator))  # one transaction: no file without it
    gen_id = generator_identity(setup.evaluator.generator)
    if setup.resume:
        head = store.read_header()
        stored = head.get("generator_weights_sha256", "")
        if stored and gen_id.get("generator_weights_sha256") not in (None, "", stored):
            log.warning("resume: the generator checkpoint changed since this campaign started (weights %s... -> %s...)",
                        stored[:12], gen_id["generator_weights_sha256"][:12])
        if "generator_name" not in head:  # a file killed between its creation and this record (older versions)
            store.set_attrs(**gen_id)
    obj = setup.objective
    m = int(getattr(obj, "m", 1))
    extra = {"m": m} if m > 1 else {}
    cls = MultiObjectiveCampaign if m > 1 else MultiFidelityCampaign if is_multi_fidelity(setup.proposer) else Campaign
    if m == 1 and setup.final_validation is not None and setup.final_validation.top_k > 0:
        # a "best" design is defined for a scalar objective only; a Pareto front is not re-ranked
        extra.update(final_validation=setup.final_validation, validations=validations)
    from microdesign.campaign.executor import build_executor

    executor = build_executor(cfg)  # None: in-process (executor=local); Ray workers build their own stages
    evaluator = setup.evaluator if executor is None else executor.remote_evaluator()
    return cls(store, list(space.names), setup.proposer, evaluator, setup.budget, seed=int(cfg.seed),
               q=int(setup.proposer.q), on_failure=getattr(obj, "on_failure", "exclude"),
               penalty=getattr(obj, "penalty", None), n_initial=int(getattr(setup.proposer, "n_initial", 0)),
               trials=trials, on_resume_running=str(cfg.campaign.on_resume_running),
               validate=space.validate, progress=progress, executor=executor, **extra)


def close_campaign(campaign: Any) -> None:
    """Release the campaign file's writer lock and stop the campaign's Ray workers (if any)."""
    try:
        if getattr(campaign, "executor", None) is not None:
            campaign.executor.shutdown()
    finally:
        campaign.store.close()


def run_campaign(cfg: DictConfig) -> int:
    """Validate, open and run a campaign from config; display progress and a summary. Returns 0."""
    from microdesign.campaign.display import RichDisplay

    setup = validate(cfg)
    obj = setup.objective
    display = RichDisplay(getattr(obj, "unit", ""), getattr(obj, "name", "objective"),
                          getattr(obj, "sign", 1.0)) if setup.cfg.campaign.progress else None
    campaign = open_campaign(setup, progress=display)
    try:
        campaign.run()
    except Exception:
        if not setup.resume:
            campaign.store.discard()  # stopped before its first trial (a bad setting): no empty file left behind
        raise
    finally:
        close_campaign(campaign)
    if display is not None:
        from rich.console import Console

        Console().print(display.summary(campaign, str(setup.path)))
    log.info("campaign file: %s  (report: microdesign report %s)", setup.path, setup.path)
    return 0
