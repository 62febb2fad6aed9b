"""Error of a campaign's evaluation against the reference evaluation (docs/reference_error.md).

:func:`compare` re-evaluates the designs of a reference data file (:mod:`microdesign.analysis.reference`)
with a candidate evaluation setting (a campaign config: generator, cube size and count,
characterisation, the same cell model and objective) at each reference power, over several seeds,
and :func:`summarise` gives, per metric and for the objective, the bias (mean relative error), the
spread (standard deviation of the relative error over designs and seeds), the mean absolute
relative error, the failure count and the CPU seconds per evaluation.

:func:`estimated_error` looks a campaign's settings up in the measured table shipped with the
package (``reference_error.json`` beside this module, written by ``scripts/reference_error.py``);
:func:`error_note` is the line the campaign summary and report print beside the objective's CI.
Settings that were not measured say so: no number is extrapolated.
"""

from __future__ import annotations

import copy
import json
import logging
import math
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from microdesign.characterise.metrics import TORTUOSITY_THROUGH_PLANE
from microdesign.errors import ConfigError

log = logging.getLogger(__name__)

#: The measured error table shipped with the package (``scripts/reference_error.py`` writes it).
ERROR_TABLE_PATH = Path(__file__).with_name("reference_error.json")

#: Structure sources of :func:`compare`.
SOURCES = ("generator", "line", "generator-coarse2", "line-coarse2", "line-voxel2")

#: Objective row name in the summaries.
OBJECTIVE = "objective"


def _plain(cfg: Any) -> dict[str, Any]:
    """A campaign config as a plain dict (DictConfig, dict, or its YAML text)."""
    from omegaconf import DictConfig, OmegaConf

    if isinstance(cfg, str):
        cfg = OmegaConf.create(cfg)
    if isinstance(cfg, DictConfig):
        return OmegaConf.to_container(cfg, resolve=True)
    return dict(cfg)


def evaluation_settings(cfg: Any) -> dict[str, Any]:
    """The settings of a campaign config that decide how one design is evaluated (the error table's key).

    Generator checkpoint, cube size, adaptive sampling (CI target, cap and what the target is judged on,
    ``adaptive_target``: ``"every_metric"`` for a config without the key) or fixed cube count, the
    characteriser's solver (and, for the MG-CG solver, whether its conductivity solve is deflated),
    ``min_percolating_fraction`` and ``tau_estimator`` (the estimator of the pore
    tortuosity factor over the cubes; ``"mean"``, the class default, for a config without the key, e.g.
    of an older campaign file), the generator's labelling in use (``phase_fractions``, ``"auto"``
    resolved for the checkpoint by :func:`microdesign.generator.sampler.resolve_phase_fractions`;
    ``"argmax"``, the class default, for a config without the key) and the carbon-to-binder weight ratio
    its design fractions use (1.0 without the key) and, for ``"design"``, the ``pore_neighbour_penalty`` of the
    labelling (0.0 without the key and under the argmax, where it is unused), the design-space bounds, the cell model
    (protocol aside), the objective quantity and the discharge power [W] (``None`` for a protocol that
    is not constant power).

    Args:
        cfg: a campaign config (DictConfig, plain dict, or the YAML stored in a campaign file).
    """
    c = _plain(cfg)
    camp, gen, prot = c.get("campaign", {}) or {}, c.get("generator", {}) or {}, (c.get("cell", {}) or {}).get("protocol")
    from microdesign.cell.protocols import protocol_from_config

    power = None
    try:
        p = protocol_from_config(dict(prot)) if isinstance(prot, Mapping) else None
        power = float(getattr(p, "power_W")) if hasattr(p, "power_W") else None
    except (ConfigError, TypeError, ValueError):
        power = None
    adaptive = bool(camp.get("adaptive", True))
    from microdesign.generator.sampler import labelling_record

    labelling = labelling_record(_phase_fractions_in_use(gen), gen.get("pore_neighbour_penalty", 0.0))
    out = {"generator": str(gen.get("checkpoint", gen.get("_target_", ""))),
           "cube_size_voxels": int(camp.get("cube_size_voxels", 0)), "adaptive": adaptive,
           "min_percolating_fraction": float((c.get("characterise", {}) or {}).get("min_percolating_fraction", 1.0)),
           "tau_estimator": str((c.get("characterise", {}) or {}).get("tau_estimator", "mean")),
           "phase_fractions": labelling["phase_fractions"],
           "carbon_to_binder_weight_ratio": float(gen.get("carbon_to_binder_weight_ratio", 1.0)),
           "pore_neighbour_penalty": labelling["pore_neighbour_penalty"],
           "objective": str((c.get("objective", {}) or {}).get("quantity", "")), "power_W": power}
    params = (c.get("design_space", {}) or {}).get("parameters", {}) or {}
    out["design_space"] = {k: [v.get("lower"), v.get("upper"), v.get("fixed")] for k, v in sorted(params.items())}
    out["cell"] = {k: v for k, v in (c.get("cell", {}) or {}).items() if k != "protocol"}
    solver = ((c.get("characterise", {}) or {}).get("solver", {}) or {})
    out["solver"] = str(solver.get("_target_", ""))
    if out["solver"].endswith("MgcgSolver"):  # the class default where the key is absent
        out["deflation"] = bool(solver.get("deflation", True))
    out["metric_calibration"] = _metric_calibration_in_use(camp, gen, out)
    if adaptive:
        out["target_relative_ci"] = camp.get("target_relative_ci")
        out["max_cubes"] = camp.get("max_cubes")
        out["adaptive_target"] = _adaptive_target_in_use(camp, c.get("objective"))
    else:
        out["n_cubes"] = int(camp.get("n_cubes", 0))
    return out


def _adaptive_target_in_use(camp: Mapping[str, Any], objective: Any) -> str:
    """The campaign's ``adaptive_target`` (``"every_metric"`` without the key), ``"auto"`` resolved for its
    objective (:func:`microdesign.campaign.evaluate.resolve_adaptive_target`); kept as written where the
    objective cannot be built."""
    from microdesign.campaign.build import instantiate
    from microdesign.campaign.evaluate import configured_adaptive_target, resolve_adaptive_target

    target = configured_adaptive_target(camp)
    try:
        return resolve_adaptive_target(target, instantiate(dict(objective or {}), "objective"))
    except Exception:  # noqa: BLE001 - a key for a table lookup, never an error
        return target


def _metric_calibration_in_use(camp: Mapping[str, Any], gen: Mapping[str, Any], settings: Mapping[str, Any]) -> str:
    """``"none"``, or ``"sha256:<12 digits>"`` of the content of the metric calibration file the campaign
    evaluates with (``"auto"`` resolved as :func:`microdesign.characterise.calibration.resolve_metric_calibration`
    does, from the checkpoint's metadata and the ``settings`` so far, without loading the weights)."""
    from types import SimpleNamespace

    from microdesign.characterise.calibration import (CalibrationData, MetricCalibration, calibration_file_for,
                                                      configured_metric_calibration)
    from microdesign.generator.checkpoint import CheckpointError, load_metadata, sha256_file

    setting = configured_metric_calibration(camp)
    if setting == "none":
        return "none"
    path = calibration_file_for(gen.get("checkpoint"), settings["cube_size_voxels"]) if setting == "auto" else Path(setting)
    if path is None or not path.is_file():
        return "none"
    try:
        meta = load_metadata(str(gen.get("checkpoint")))
        stand_in = SimpleNamespace(name=meta.name, metadata=meta, labelling={
            "phase_fractions": settings["phase_fractions"], "pore_neighbour_penalty": settings["pore_neighbour_penalty"]})
        MetricCalibration.check_validity(CalibrationData.load(path), stand_in, settings["cube_size_voxels"],
                                         settings["tau_estimator"])
    except (CheckpointError, ConfigError):
        return "none"
    return f"sha256:{sha256_file(path)[:12]}"


def _phase_fractions_in_use(gen: Mapping[str, Any]) -> str:
    """The labelling a generator config gives (``"argmax"`` or ``"design"``); ``"auto"`` is resolved with the
    checkpoint's parameters (or the config's, for an untrained network), and stays ``"auto"`` where
    neither can be read."""
    from microdesign.generator.checkpoint import CheckpointError, load_metadata
    from microdesign.generator.sampler import resolve_phase_fractions

    mode = str(gen.get("phase_fractions", "argmax"))
    if mode != "auto":
        return mode
    try:
        if gen.get("checkpoint") is not None:
            meta = load_metadata(str(gen["checkpoint"]))
            names, units = meta.parameter_names, meta.parameter_units
        else:
            names, units = list(gen.get("parameter_names", [])), gen.get("parameter_units")
        return resolve_phase_fractions(mode, names, units)
    except (CheckpointError, ConfigError):
        return mode


#: Settings added to :func:`evaluation_settings` after table entries were measured, with the value those
#: entries were measured under (an entry without the key was measured with it).
SETTINGS_ADDED: dict[str, Any] = {"tau_estimator": "mean", "phase_fractions": "argmax",
                                  "carbon_to_binder_weight_ratio": 1.0, "pore_neighbour_penalty": 0.0,
                                  "deflation": False, "adaptive_target": "every_metric", "metric_calibration": "none"}


def same_settings(stored: Mapping[str, Any], current: Mapping[str, Any], ignore: Sequence[str] = ()) -> bool:
    """Whether a table entry's stored settings are ``current`` (keys in ``ignore`` aside); a key of
    :data:`SETTINGS_ADDED` the stored settings lack takes the value the entry was measured under."""
    a = {**SETTINGS_ADDED, **dict(stored)}
    b = {**SETTINGS_ADDED, **dict(current)}
    for k in ignore:
        a.pop(k, None)
        b.pop(k, None)
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


def _rel(a: float, ref: float) -> float:
    return (a - ref) / abs(ref) if ref else float("nan")


def compare(reference: Mapping[str, Any], cfg: Any, seeds: Sequence[int] = (0, 1), source: str = "generator",
            indices: Sequence[int] | None = None) -> list[dict[str, Any]]:
    """Evaluate the reference designs with a candidate setting; one row per (design, seed, power).

    Args:
        reference: a reference data file's content (:func:`microdesign.analysis.reference.load_reference`);
            only its completed designs are used.
        cfg: the candidate's campaign config (``microdesign.config.compose("campaign", overrides)``); its
            cell protocol is replaced by constant power at each reference power.
        seeds: evaluation seeds; design ``i`` with seed ``r`` uses ``100000 + 1000 r + i`` (not a reference seed).
        source: ``"generator"`` (the config's generator), ``"line"`` (the reference's synthetic line:
            isolates the characterisation error from the generator's) or ``"generator-coarse2"``
            (generated cubes of twice the edge, coarse-grained to the cube size at twice the voxel
            size: :class:`CoarseGrained`), ``"line-coarse2"`` (the line so coarse-grained) or
            ``"line-voxel2"`` (the line generated directly at twice the voxel size). A metric calibration of
            the config applies to ``"generator"`` only.
        indices: reference design indices (None: all completed).

    Returns:
        Rows ``{index, seed, power_W, status, reason, objective_rel_error, metrics_rel_error: {key: e},
        cpu_s, percolating_fraction, solid_percolating_fraction}`` (the shares of cubes whose pore and
        whose solid span axis 0); ``objective_rel_error`` is ``(candidate - reference) / reference``.

    Raises:
        ConfigError: an unknown ``source``.
    """
    from omegaconf import OmegaConf

    from microdesign.analysis.reference import LineVolumes, SharedStructure
    from microdesign.campaign.build import build_evaluator, instantiate
    from microdesign.characterise.metrics import (PERCOLATING_FRACTIONS, PORE_PERCOLATING_FRACTION,
                                                  SOLID_PERCOLATING_FRACTION)
    from microdesign.config import conf_dir
    from microdesign.generator.reference import training_line_reference

    if source not in SOURCES:
        raise ConfigError("source", source, f"one of {SOURCES}")
    powers = [float(p) for p in reference["settings"]["powers_W"]]
    base = build_evaluator(cfg)
    if source != "generator":  # a metric calibration is of the generator's own cubes, not of these
        base.metric_calibration = None
    line = None
    if source.startswith("line"):
        fallback = OmegaConf.to_container(OmegaConf.load(conf_dir() / "synth" / "default.yaml"), resolve=True)
        ref = training_line_reference(base.generator, "auto", candidates=["data/synth_default.h5"], fallback=fallback)
        line = LineVolumes(ref.line(), ref.voxel_size_m)
    gen = volume_source(source, base.generator, line)
    cells = {}
    for p in powers:
        node = OmegaConf.create(OmegaConf.to_container(cfg.cell, resolve=True))
        node.protocol.kind, node.protocol.power_W = "constant_power", p
        cells[p] = instantiate(node, "cell")
    rows = []
    for d in reference["designs"]:
        i = int(d["index"])
        if indices is not None and i not in set(indices):
            continue
        ref_metrics = d.get("metrics", {}).get("estimates", {})
        for r in seeds:
            seed = 100000 + 1000 * int(r) + i
            shared = SharedStructure(gen, base.characteriser)
            for p in powers:
                refp = d["powers"].get(f"{p:g}", {})
                if "objective" not in refp:
                    continue
                ev_eval = copy.copy(base)  # the campaign's evaluator, stages swapped (as TrialEvaluator.fixed_cubes)
                ev_eval.generator, ev_eval.characteriser, ev_eval.cell = shared, shared, cells[p]
                before = dict(shared.cpu_s)
                ev = ev_eval.evaluate(d["inputs"], seed)
                # this evaluation's structures: every cube generated for the design so far (the powers run in
                # the reference's order, ascending; a later power uses the earlier one's cubes) and the
                # characterisation it used
                struct_cpu = shared.cpu_s["generator"] + shared.characterise_cpu_s
                cell_cpu = ev.timings.get("cpu", 0.0) - (sum(shared.cpu_s.values()) - sum(before.values()))
                row = {"index": i, "seed": seed, "power_W": p, "status": ev.status, "reason": ev.reason,
                       "cpu_s": struct_cpu + max(cell_cpu, 0.0), "objective_rel_error": None,
                       "metrics_rel_error": {}, "percolating_fraction": None}
                m = ev.metrics if ev.metrics is not None else shared.metrics  # calibrated where the evaluator is
                if m is not None and m.ok:
                    row["metrics_rel_error"] = {k: _rel(e.mean, ref_metrics[k]["mean"]) for k, e in m.estimates.items()
                                                if k in ref_metrics and k not in PERCOLATING_FRACTIONS}
                    if PORE_PERCOLATING_FRACTION in m.estimates:
                        row["percolating_fraction"] = m[PORE_PERCOLATING_FRACTION].mean
                    if SOLID_PERCOLATING_FRACTION in m.estimates:
                        row["solid_percolating_fraction"] = m[SOLID_PERCOLATING_FRACTION].mean
                    ref_tau = ref_metrics.get(TORTUOSITY_THROUGH_PLANE, {}).get("mean")
                    if ref_tau:
                        row["tau_estimators_rel_error"] = {k: _rel(v, ref_tau) for k, v in tau_estimators(m).items()}
                    row["n_cubes"], row["cube_size_voxels"] = int(m.n_cubes), int(m.cube_size_voxels)
                if ev.status == "completed":
                    row["objective_rel_error"] = _rel(ev.objective.raw_value, refp["objective"]["raw_value"])
                    row["objective_relative_ci"] = 1.96 * math.sqrt(max(ev.objective.variance, 0.0)) / abs(
                        ev.objective.raw_value) if ev.objective.raw_value else float("nan")
                log.info("design %d seed %d %g W: %s, objective error %s, %.1f CPU s", i, seed, p, ev.status,
                         row["objective_rel_error"], row["cpu_s"])
                rows.append(row)
    return rows


def volume_source(source: str, generator: Any, line: Any = None) -> Any:
    """The cube source of a :func:`compare` structure source.

    Args:
        source: one of :data:`SOURCES`.
        generator: the campaign's generator (``sample(params, n, size_voxels, seed)``, ``voxel_size_m``).
        line: the reference's synthetic line as a volume source
            (:class:`~microdesign.analysis.reference.LineVolumes`); required for the ``line*`` sources.

    Returns:
        ``generator``, ``line``, either coarse-grained twofold (:class:`CoarseGrained`), or for
        ``"line-voxel2"`` the line generated at twice its voxel size.

    Raises:
        ConfigError: an unknown ``source``, or a ``line*`` source without ``line``.
    """
    if source not in SOURCES:
        raise ConfigError("source", source, f"one of {SOURCES}")
    if not source.startswith("line"):
        return CoarseGrained(generator, 2) if source == "generator-coarse2" else generator
    if line is None:
        raise ConfigError("line", line, f"the reference's synthetic line for source {source!r}")
    if source == "line-voxel2":
        return type(line)(line.line, 2 * line.voxel_size_m)
    return CoarseGrained(line, 2) if source == "line-coarse2" else line


#: Estimators of the pore tortuosity factor over cubes compared in the error table (:func:`tau_estimators`):
#: the characteriser's two (:data:`microdesign.characterise.characteriser.TAU_ESTIMATORS`) and the median.
COMPARED_TAU_ESTIMATORS = ("mean", "median", "transport_averaged")


def tau_estimators(metrics: Any) -> dict[str, float]:
    """The through-plane pore tortuosity factor of a cube set by three estimators.

    ``mean``: the mean of the per-cube τ (the characteriser's ``tau_estimator="mean"``); ``median``: their median;
    ``transport_averaged``: ``mean(ε) / mean(ε/τ)``, the τ whose ε/τ is the mean effective transport
    of the cubes. All over the cubes whose pore network percolates (docs/characterisation.md).

    Args:
        metrics: ok :class:`~microdesign.characterise.metrics.MicrostructureMetrics` with per-cube values.
    """
    from microdesign.characterise.metrics import PORE_PERCOLATING_FRACTION, POROSITY, MetricEstimate

    tau = np.asarray(metrics[TORTUOSITY_THROUGH_PLANE].values, float)
    eps = np.asarray(metrics[POROSITY].values, float)
    if PORE_PERCOLATING_FRACTION in metrics.estimates:
        eps = eps[np.asarray(metrics[PORE_PERCOLATING_FRACTION].values, float) > 0.5]
    out = {"mean": float(tau.mean()), "median": float(np.median(tau))}
    usable = eps.size == tau.size > 0 and bool(np.all(np.isfinite(tau) & (tau > 0)) and np.all(eps > 0))
    # the characteriser's estimator (tau_estimator="transport_averaged"), the same arithmetic
    out["transport_averaged"] = (MetricEstimate.transport_averaged(TORTUOSITY_THROUGH_PLANE, tau, eps).mean
                                 if usable else float("nan"))
    return out


class CoarseGrained:
    """A volume source at ``factor`` times the voxel size: each cube of ``L³`` is a generated cube of
    ``(factor L)³`` with every ``factor³`` block replaced by its most frequent label (ties: the lower
    label, pore before AM before CBD; :func:`microdesign.generator.data.majority_downsample`, the
    coarse-graining of ``train-generator dataset.downsample``). Cheaper to characterise; the phase
    fractions move by the vote.

    Args:
        generator: ``sample(params, n, size_voxels, seed)`` and ``voxel_size_m``.
        factor: integer coarsening factor (2: 128³ at 0.398 µm -> 64³ at 0.796 µm).
    """

    def __init__(self, generator: Any, factor: int = 2):
        if int(factor) < 2:
            raise ConfigError("factor", factor, "an integer >= 2")
        self.generator, self.factor = generator, int(factor)
        self.voxel_size_m = float(generator.voxel_size_m) * self.factor

    def sample(self, params: Mapping[str, float], n: int, size_voxels: int, seed: int) -> np.ndarray:
        """``n x L x L x L`` uint8 labels at ``factor`` times the generator's voxel size."""
        from microdesign.generator.data import majority_downsample

        f, L = self.factor, int(size_voxels)
        fine = np.asarray(self.generator.sample(params, n, f * L, seed))
        if fine.shape[0] == 0:
            return np.zeros((0, L, L, L), np.uint8)
        return np.stack([majority_downsample(cube, f) for cube in fine])


def _stats(errors: Sequence[float]) -> dict[str, float]:
    e = np.asarray([x for x in errors if x is not None and math.isfinite(x)], float)
    if e.size == 0:
        return {"n": 0, "bias": float("nan"), "spread": float("nan"), "mean_abs": float("nan")}
    return {"n": int(e.size), "bias": float(e.mean()), "spread": float(e.std(ddof=1)) if e.size > 1 else 0.0,
            "mean_abs": float(np.abs(e).mean())}


def summarise(rows: Sequence[Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per power: objective and per-metric bias / spread / mean absolute relative error, failures, CPU s.

    Returns:
        ``{"<P>": {"objective": stats, "metrics": {key: stats}, "failed": k, "evaluations": n,
        "cpu_s_mean": s, "objective_relative_ci_mean": c}}`` with ``stats = {n, bias, spread, mean_abs}``
        (relative, e.g. 0.03 = 3 %).
    """
    out: dict[str, dict[str, Any]] = {}
    for p in sorted({float(r["power_W"]) for r in rows}):
        sub = [r for r in rows if float(r["power_W"]) == p]
        keys = sorted({k for r in sub for k in r["metrics_rel_error"]})
        cis = [r.get("objective_relative_ci") for r in sub if r.get("objective_relative_ci") is not None]
        out[f"{p:g}"] = {
            OBJECTIVE: _stats([r["objective_rel_error"] for r in sub]),
            "metrics": {k: _stats([r["metrics_rel_error"].get(k) for r in sub]) for k in keys},
            "failed": sum(r["status"] != "completed" for r in sub), "evaluations": len(sub),
            "designs": len({r["index"] for r in sub}),
            "tau_estimators": {k: _stats([(r.get("tau_estimators_rel_error") or {}).get(k) for r in sub])
                               for k in COMPARED_TAU_ESTIMATORS},
            "cpu_s_mean": float(np.mean([r["cpu_s"] for r in sub])) if sub else float("nan"),
            "objective_relative_ci_mean": float(np.mean(cis)) if cis else float("nan"),
        }
    return out


def objective_attribution(designs: Sequence[Mapping[str, Any]], rows: Sequence[Mapping[str, Any]], power_W: float,
                          objective_of: Any, min_abs_error: float = 0.02) -> list[dict[str, Any]]:
    """First-order attribution of a setting's objective error to its metric errors, design by design.

    For each reference design the objective is computed from the reference metrics (their means), then
    with one metric moved by the setting's mean relative error over its evaluations of that design at
    ``power_W`` (the other metrics at the reference), and with all metrics moved together. Comparing the
    changes with the measured objective error shows which metric's error sets it.

    Args:
        designs: completed reference designs (``index``, ``inputs``, ``metrics.estimates``).
        rows: the setting's rows (:func:`compare`).
        power_W: the power whose rows are read [W].
        objective_of: ``(inputs, means) -> objective`` for the reference's cell and objective at
            ``power_W``, ``means`` a ``metric key -> mean`` dict.
        min_abs_error: metrics whose mean relative error is below this are not moved alone (they are
            moved in ``all_metrics``).

    Returns:
        One dict per design that has completed rows at ``power_W`` (failed rows are left out):
        ``index``, ``measured`` (mean objective error of the rows), ``base`` (the objective on the
        reference metrics), ``all_metrics`` (relative change with every metric moved) and
        ``by_metric`` (``key -> {"metric_error", "objective_change", "n"}``, relative; a metric's error
        is the mean over the rows with a finite value of it, ``n`` of them; a metric without any stays
        at the reference).
    """
    out = []
    for d in designs:
        i = int(d["index"])
        rs = [r for r in rows if int(r["index"]) == i and float(r["power_W"]) == float(power_W)
              and r.get("metrics_rel_error") and r.get("objective_rel_error") is not None]
        if not rs:
            continue
        means = {k: float(v["mean"]) for k, v in d["metrics"]["estimates"].items()}
        values = {k: [float(r["metrics_rel_error"][k]) for r in rs if r["metrics_rel_error"].get(k) is not None
                      and math.isfinite(float(r["metrics_rel_error"][k]))] for k in means}
        err = {k: float(np.mean(v)) for k, v in values.items() if v}
        base = float(objective_of(d["inputs"], means))
        by_metric = {k: {"metric_error": e, "n": len(values[k]), "objective_change": _rel(
            float(objective_of(d["inputs"], {**means, k: means[k] * (1 + e)})), base)}
                     for k, e in err.items() if abs(e) >= min_abs_error}
        moved = {k: v * (1 + err.get(k, 0.0)) for k, v in means.items()}
        out.append({"index": i, "measured": float(np.mean([r["objective_rel_error"] for r in rs])), "base": base,
                    "all_metrics": _rel(float(objective_of(d["inputs"], moved)), base), "by_metric": by_metric})
    return out


def load_table(path: str | Path | None = None) -> list[dict[str, Any]]:
    """Entries of the measured error table: ``[{name, settings, source, summary}]`` (empty when absent)."""
    p = Path(path) if path is not None else ERROR_TABLE_PATH
    if not p.is_file():
        return []
    try:
        data = json.loads(p.read_text())
    except (OSError, ValueError) as exc:
        log.warning("error table %s unreadable: %s", p, exc)
        return []
    return list(data.get("entries", []))


def estimated_error(cfg: Any, table: Sequence[Mapping[str, Any]] | None = None) -> dict[str, Any] | None:
    """The measured error of a campaign's evaluation against the reference, or None if not measured.

    An entry applies when its evaluation settings (:func:`evaluation_settings`, power aside; :func:`same_settings`)
    equal the campaign's, it was measured with the generator (not the line), and it holds the campaign's power.

    Returns:
        ``{"name", "power_W", "mean_abs", "bias", "spread", "n", "designs"}`` (relative) or None.
    """
    table = load_table() if table is None else table
    want = evaluation_settings(cfg)
    power = want.pop("power_W")
    if power is None:
        return None
    for entry in table:
        if entry.get("source", "generator") != "generator" or not same_settings(entry.get("settings", {}), want,
                                                                               ignore=("power_W",)):
            continue
        s = entry.get("summary", {}).get(f"{power:g}")
        if s and s[OBJECTIVE]["n"] > 0:
            return {"name": entry.get("name", ""), "power_W": power, "designs": s.get("designs", 0), **s[OBJECTIVE]}
    return None


def error_note(cfg: Any, table: Sequence[Mapping[str, Any]] | None = None) -> str:
    """One line for the campaign summary and report: the objective's measured error against the reference.

    ``"estimated error vs reference: ±4.1 % (mean absolute; bias +3.0 %, spread 2.2 %; 8 designs at 10 W;
    docs/reference_error.md)"``, or ``"estimated error vs reference: not measured for these settings"``.
    """
    try:
        e = estimated_error(cfg, table)
    except Exception as exc:  # noqa: BLE001 - a note must never break a summary
        log.warning("error table lookup failed: %s", exc)
        e = None
    if e is None:
        return "estimated error vs reference: not measured for these settings (docs/reference_error.md)"
    return (f"estimated error vs reference: ±{100 * e['mean_abs']:.1f} % (mean absolute; bias {100 * e['bias']:+.1f} %, "
            f"spread {100 * e['spread']:.1f} %; {e['designs']} design{'' if e['designs'] == 1 else 's'} at "
            f"{e['power_W']:g} W; docs/reference_error.md)")


def now_utc() -> str:
    """UTC timestamp for the table's record."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
