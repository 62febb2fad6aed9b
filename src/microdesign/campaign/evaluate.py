"""One evaluation: design -> generator -> characterisation -> cell -> objective, timed, never raising.

The stages are injected (small protocols below), so the loop can be tested with stub stages
(:mod:`microdesign.campaign.stubs`) and run with the real ones built from config.
"""

from __future__ import annotations

import logging
import math
import time
import traceback
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from microdesign.optim.cost import FIDELITY_KEY

log = logging.getLogger(__name__)

#: What an adaptive evaluation's CI target is judged on (:class:`TrialEvaluator` ``adaptive_target``).
ADAPTIVE_TARGETS = ("auto", "every_metric", "objective")


def configured_adaptive_target(campaign: Mapping[str, Any]) -> str:
    """The ``adaptive_target`` of a ``campaign`` config node; ``"every_metric"`` (the rule such campaigns
    ran under) for one written before the key existed."""
    return str(campaign.get("adaptive_target", "every_metric"))


def resolve_adaptive_target(adaptive_target: str, objective: Any) -> str:
    """``"every_metric"`` or ``"objective"`` for an evaluator's ``adaptive_target`` and objective.

    ``"objective"`` needs a scalar objective whose noise is the metrics' CIs propagated through the cell
    model (:class:`~microdesign.objective.CellQuantity` with ``noise`` other than ``"none"``): a robust
    statistic adds Monte Carlo error that more cubes do not reduce, a vector objective has no single CI,
    and without propagated noise the CI is 0 whatever the cubes. ``"auto"`` is ``"objective"`` for such
    an objective and ``"every_metric"`` otherwise.

    Raises:
        ConfigError: naming ``campaign.adaptive_target``: an unknown value, or ``"objective"`` with
            another objective.
    """
    from microdesign.errors import ConfigError
    from microdesign.objective import CellQuantity

    if adaptive_target not in ADAPTIVE_TARGETS:
        raise ConfigError("campaign.adaptive_target", adaptive_target, f"one of {list(ADAPTIVE_TARGETS)}")
    judged = (isinstance(objective, CellQuantity) and not getattr(objective, "uses_manufacturing", False)
              and getattr(objective, "noise", "none") != "none")
    if adaptive_target == "objective" and not judged:
        raise ConfigError("campaign.adaptive_target", adaptive_target,
                          f"'every_metric' or 'auto' with the objective {type(objective).__name__} (its noise is not "
                          "the metrics' CIs alone)")
    if adaptive_target == "auto":
        return "objective" if judged else "every_metric"
    return adaptive_target


class VolumeGenerator(Protocol):
    """``microdesign.generator.Generator`` or a stand-in."""

    voxel_size_m: float

    def sample(self, params: Mapping[str, float], n: int, size_voxels: int, seed: int) -> np.ndarray:
        """``n x L x L x L`` uint8 labels for the microstructure parameters ``params``."""


class MetricsCharacteriser(Protocol):
    """``microdesign.characterise.Characteriser`` or a stand-in."""

    def characterise(self, volumes: np.ndarray, voxel_size_m: float, seed: int | None = None) -> Any:
        """``MicrostructureMetrics`` of ``n x L x L x L`` cubes."""


class CellSimulator(Protocol):
    """``microdesign.cell.CellModel`` or a stand-in."""

    def simulate(self, metrics: Any, cathode_thickness_m: float, protocol: Any = None) -> Any:
        """``CellResult`` of one design."""


@dataclass(frozen=True)
class Evaluation:
    """What one evaluation produced.

    Attributes:
        status: ``"completed"`` or ``"failed"``.
        reason: ``"<stage>: <why>"`` when failed.
        metrics, cell, objective: stage results (None where the stage did not run).
        volume: one representative cube ``L x L x L`` uint8 (the first characterised), or None.
        voxel_size_m: its voxel size [m].
        cathode_thickness_m: thickness from the mass loading [m] (0 if not computed).
        timings: stage -> wall time [s] (``generator``, ``characterise``, ``cell``, ``objective``; with
            the CI target judged on the objective, ``cell`` holds every cell and noise run made to judge
            it but the last one's objective, which is ``objective``), and ``cpu``: process CPU time of the
            whole evaluation [s].
    """

    status: str
    reason: str | None = None
    metrics: Any = None
    cell: Any = None
    objective: Any = None
    volume: np.ndarray | None = None
    voxel_size_m: float = 0.0
    cathode_thickness_m: float = 0.0
    timings: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class ManufacturingContext:
    """What a robust objective needs beyond the cell result (:mod:`microdesign.objective.robust`).

    Attributes:
        design: the trial's ``MappedDesign`` (settings, generator parameters, process outputs).
        design_map: the ``ManufacturingDesign`` (process model with its tolerances).
        simulate: ``(metrics, cathode_thickness_m) -> CellResult``.
        thickness_m: ``(mass_loading_mg_cm2, metrics) -> thickness [m]`` (the evaluator's rule).
        seed: the trial's seed (tolerance draws derive from it).
    """

    design: Any
    design_map: Any
    simulate: Any
    thickness_m: Any
    seed: int


class TrialEvaluator:
    """Runs the stages for one design.

    Args:
        generator: volume source (``sample``; ``voxel_size_m``).
        characteriser: ``characterise`` (and, for ``adaptive``, ``characterise_adaptive``).
        cell: ``simulate`` (optionally ``cathode_thickness_from_mass_loading``).
        objective: ``evaluate(cell, metrics, resimulate)``.
        microstructure_names: parameters passed to the generator.
        cube_size_voxels: cube side L [voxels] characterised.
        n_cubes: cubes per evaluation when ``adaptive`` is false.
        adaptive: add cubes until the CI target or the cap is met.
        target_relative_ci: adaptive target (relative 95% CI half-width); None: the characteriser's own.
        adaptive_target: what the adaptive target is judged on: ``"every_metric"`` (each metric's CI, the
            characteriser's rule), ``"objective"`` (the objective's CI: after each batch of cubes the
            cell model and the objective's noise propagation run on the metrics so far, and sampling stops
            once the objective's relative 95% CI meets the target; the last of these runs is the trial's
            cell and objective, not repeated) or ``"auto"`` (:func:`resolve_adaptive_target`). At low
            power, where the energy hardly depends on the transport metrics, the objective meets a target
            that the metrics' CIs do not. The class default is the characteriser's rule; the campaign
            config's (``conf/campaign/default.yaml``) is ``"auto"``. Used only with ``adaptive``.
        max_cubes: adaptive cap; None: the characteriser's own.
        mass_loading_name: design parameter holding the mass loading [mg.cm-2].
        cathode_thickness_m: used when there is no mass-loading parameter [m].
        am_density_g_cm3, cbd_density_g_cm3: material densities [g.cm-3] for the thickness fallback
            when the cell model has no ``cathode_thickness_from_mass_loading`` (None: the defaults of
            :class:`~microdesign.process.formulation.Formulation`, NMC811 4.75 and CBD 1.838).
        design_map: maps a manufacturing design to the generator's parameters and the mass loading
            (:class:`~microdesign.design.manufacturing.ManufacturingDesign`, ``map(inputs)``); None:
            the design's own microstructure parameters and mass loading are used. With a map, a
            design it refuses fails (``process: ...``) before the generator runs, the process outputs
            are added to the cell result's ``extra`` (``process_<name>``), and an objective with
            ``uses_manufacturing`` gets a :class:`ManufacturingContext`.
        levels: fidelity levels (:class:`~microdesign.optim.cost.FidelityLevel`) of a multi-fidelity
            campaign: a design whose inputs carry ``fidelity`` is evaluated with its level's cube
            side and count (:meth:`at_level`; docs/multi_fidelity.md). None: the settings above for
            every design.
        metric_calibration: a :class:`~microdesign.characterise.calibration.MetricCalibration` for this
            generator and cube side: the cell model and the objective get the measured metrics moved to
            the reference pipeline's (the trial's ``metrics`` are those, and the factors go into the cell
            result's ``extra``, ``metric_calibration_factor_*``); None: the measured metrics.

    Raises:
        ConfigError: ``adaptive_target`` unknown, or ``"objective"`` with an objective it cannot judge
            (:func:`resolve_adaptive_target`).
    """

    def __init__(self, generator: VolumeGenerator, characteriser: MetricsCharacteriser, cell: CellSimulator,
                 objective: Any, microstructure_names: Sequence[str], cube_size_voxels: int = 32,
                 n_cubes: int = 4, adaptive: bool = True, target_relative_ci: float | None = None,
                 max_cubes: int | None = None, adaptive_target: str = "every_metric",
                 mass_loading_name: str = "mass_loading_mg_cm2",
                 cathode_thickness_m: float | None = None, am_density_g_cm3: float | None = None,
                 cbd_density_g_cm3: float | None = None, design_map: Any = None, levels: Sequence[Any] | None = None,
                 metric_calibration: Any = None):
        from microdesign.process.formulation import NMC811_DENSITY_G_CM3, default_cbd_density_g_cm3

        self.generator, self.characteriser, self.cell, self.objective = generator, characteriser, cell, objective
        self.microstructure_names = tuple(microstructure_names)
        self.cube_size_voxels, self.n_cubes, self.adaptive = int(cube_size_voxels), int(n_cubes), bool(adaptive)
        self.target_relative_ci, self.max_cubes = target_relative_ci, max_cubes
        # a fixed cube count has no CI target: the setting is then not checked against the objective
        self.adaptive_target = resolve_adaptive_target(adaptive_target, objective) if self.adaptive else "every_metric"
        self.mass_loading_name = mass_loading_name
        self.fixed_thickness_m = cathode_thickness_m
        self.am_density_g_cm3 = NMC811_DENSITY_G_CM3 if am_density_g_cm3 is None else float(am_density_g_cm3)
        self.cbd_density_g_cm3 = default_cbd_density_g_cm3() if cbd_density_g_cm3 is None else float(cbd_density_g_cm3)
        self.design_map = design_map
        self.levels = None if levels is None else tuple(levels)
        self.metric_calibration = metric_calibration

    def fixed_cubes(self, n_cubes: int) -> TrialEvaluator:
        """A copy that characterises exactly ``n_cubes`` cubes per design (no adaptive stop); stages shared."""
        import copy

        other = copy.copy(self)
        other.n_cubes, other.adaptive = int(n_cubes), False
        return other

    def at_level(self, fidelity: float) -> TrialEvaluator:
        """A copy that evaluates at the level of ``fidelity``: the level's cube side and a fixed count of
        its cubes (where the level sets them; no adaptive stop); stages shared.

        Raises:
            ConfigError: no levels, or a fidelity that is no level's.
        """
        import copy

        from microdesign.errors import ConfigError
        from microdesign.optim.cost import level_index

        if self.levels is None:
            raise ConfigError("fidelity", fidelity, "an evaluator with fidelity levels (fidelity_levels=two_level)")
        level = self.levels[int(level_index(self.levels, fidelity)[0])]
        other = copy.copy(self)
        other.levels = None
        if level.cube_size_voxels is not None:
            other.cube_size_voxels = int(level.cube_size_voxels)
        if self.metric_calibration is not None and other.cube_size_voxels != self.metric_calibration.cube_size_voxels:
            other.metric_calibration = None  # made for another cube side: that level is evaluated as measured
        if level.n_cubes is not None:
            other.n_cubes, other.adaptive = int(level.n_cubes), False
        return other

    # ------------------------------------------------------------------ thickness
    def thickness_m(self, inputs: Mapping[str, float], metrics: Any) -> float:
        """Cathode coating thickness [m] from the design's mass loading and the measured structure.

        ``h = ML/(PD·100)`` with press density ``PD = X_AM ρ_AM + X_CBD ρ_CBD`` (docs/process_model.md,
        "Linked parameters": ``PD = CD(1 − ε)``; :func:`microdesign.process.linked.measured_press_density_g_cm3`,
        the cell model's formula); the cell model's own method is used when it has one.
        """
        if self.mass_loading_name not in inputs:
            if self.fixed_thickness_m is None:
                raise ValueError(f"no {self.mass_loading_name!r} in the design and no campaign.cathode_thickness_m")
            return float(self.fixed_thickness_m)
        ml = float(inputs[self.mass_loading_name])
        own = getattr(self.cell, "cathode_thickness_from_mass_loading", None)
        if own is not None:
            return float(own(metrics, ml))
        from microdesign.characterise.metrics import AM_VOLUME_FRACTION, CBD_VOLUME_FRACTION, POROSITY
        from microdesign.process.linked import measured_press_density_g_cm3, thickness_m

        pd = measured_press_density_g_cm3(metrics[POROSITY].mean, metrics[AM_VOLUME_FRACTION].mean,
                                          metrics[CBD_VOLUME_FRACTION].mean, self.am_density_g_cm3,
                                          self.cbd_density_g_cm3)
        return float(thickness_m(ml, pd))

    # ------------------------------------------------------------------ evaluation
    def evaluate(self, inputs: Mapping[str, float], seed: int) -> Evaluation:
        """Evaluate one design; every stage failure or exception becomes a ``failed`` evaluation.

        Args:
            inputs: the complete physical design (fixed parameters included).
            seed: seed of the generator's latent draws (characterisation batches spawn from it).
                With fidelity levels, ``inputs["fidelity"]`` selects the level (:meth:`at_level`).
        """
        if self.levels is not None and FIDELITY_KEY in inputs:
            try:
                at_level = self.at_level(float(inputs[FIDELITY_KEY]))
            except Exception as exc:  # noqa: BLE001 - an unknown level is a failed trial, never raised
                return Evaluation("failed", _reason("fidelity", exc))
            return at_level.evaluate(inputs, seed)
        timings: dict[str, float] = {}
        cpu0 = time.process_time()
        voxel = float(getattr(self.generator, "voxel_size_m", 0.0))
        design = None
        if self.design_map is not None:  # manufacturing settings -> generator parameters + mass loading
            try:
                design = self.design_map.map(inputs)
            except Exception as exc:  # noqa: BLE001 - refused before any work: a failed trial
                return Evaluation("failed", _reason("process", exc), voxel_size_m=voxel,
                                  timings={"cpu": time.process_time() - cpu0})
            micro = dict(design.generator_params)
            inputs = {**inputs, self.mass_loading_name: design.mass_loading_mg_cm2}
        else:
            micro = {k: float(inputs[k]) for k in self.microstructure_names}
        first: list[np.ndarray] = []
        gen_time = [0.0]

        def sample_cubes(n: int, s: int) -> np.ndarray:
            t0 = time.perf_counter()
            vols = np.asarray(self.generator.sample(micro, n=int(n), size_voxels=self.cube_size_voxels, seed=int(s)))
            gen_time[0] += time.perf_counter() - t0
            if not first and vols.size:
                first.append(np.array(vols[0], dtype=np.uint8, copy=True))
            return vols

        def result(status: str, reason: str | None = None, **kw: Any) -> Evaluation:
            # "cpu": process CPU time of the whole evaluation [s] (all threads), load-independent cost
            return Evaluation(status, reason, volume=first[0] if first else None, voxel_size_m=voxel,
                              timings={**timings, "cpu": time.process_time() - cpu0}, **kw)

        def calibrated(m: Any) -> tuple[Any, dict[str, float]]:  # the metrics the cell model gets, and the record
            if self.metric_calibration is None:
                return m, {}
            return self.metric_calibration.apply(m, micro)

        def with_record(cell: Any, record: Mapping[str, float]) -> Any:  # process outputs and calibration factors
            added = {**(design.extra() if design is not None else {}), **record}
            if not added:
                return cell
            from dataclasses import replace

            return replace(cell, extra={**(cell.extra or {}), **added})

        def objective_kw() -> dict[str, Any]:
            if design is not None and getattr(self.objective, "uses_manufacturing", False):
                return {"manufacturing": ManufacturingContext(
                    design, self.design_map, self.cell.simulate,
                    lambda ml, m: self.thickness_m({self.mass_loading_name: float(ml)}, m), int(seed))}
            return {}

        def cell_and_objective(m: Any) -> tuple[str | None, dict[str, Any], float, float | None]:
            """The cell and objective stages on metrics ``m``: (why it failed or None, the Evaluation fields
            they made, cell seconds, objective seconds or None where the objective did not run)."""
            out: dict[str, Any] = {"metrics": m}
            t = time.perf_counter()
            try:
                m, record = calibrated(m)
            except Exception as exc:  # noqa: BLE001 - a stage never raises through the loop
                return _reason("metric_calibration", exc), out, time.perf_counter() - t, None
            out["metrics"] = m
            try:
                thick = self.thickness_m(inputs, m)
                cell = with_record(self.cell.simulate(m, thick), record)
            except Exception as exc:  # noqa: BLE001 - a stage never raises through the loop
                return _reason("cell", exc), out, time.perf_counter() - t, None
            cell_s = time.perf_counter() - t
            out.update(cell=cell, cathode_thickness_m=thick)
            if not cell.ok:
                return f"cell: {cell.reason}", out, cell_s, None
            t = time.perf_counter()
            try:
                # the thickness follows the perturbed metrics (h = ML/(PD·100), PD from the measured fractions),
                # so the noise includes the thickness route of each metric, not only its direct one
                obj = self.objective.evaluate(
                    cell, m, resimulate=lambda x: self.cell.simulate(x, self.thickness_m(inputs, x)), **objective_kw())
            except Exception as exc:  # noqa: BLE001
                return _reason("objective", exc), out, cell_s, time.perf_counter() - t
            obj_s = time.perf_counter() - t
            out["objective"] = obj
            if not obj.ok or not (math.isfinite(obj.value) and math.isfinite(obj.variance)):
                return obj.reason or "objective: not finite", out, cell_s, obj_s
            return None, out, cell_s, obj_s

        # adaptive_target="objective": the stages run on the metrics of each batch; the last run is the trial's
        judged: dict[str, Any] = {}
        spent = [0.0]  # wall time of those runs, inside the characterisation

        def objective_relative_ci(m: Any) -> float:
            t = time.perf_counter()
            reason, out, _, obj_s = cell_and_objective(m)
            spent[0] += time.perf_counter() - t
            judged.update(n_cubes=int(m.n_cubes), reason=reason, out=out, objective_s=obj_s)
            obj = out.get("objective")
            if reason is not None or obj.value == 0:
                return math.inf
            return 1.96 * math.sqrt(obj.variance) / abs(obj.value)

        def characterisation_timings(t_start: float) -> None:  # the judging runs count as the cell's
            timings["generator"] = gen_time[0]
            timings["characterise"] = time.perf_counter() - t_start - gen_time[0] - spent[0]
            if spent[0]:
                timings["cell"] = spent[0]

        # generator + characterisation
        t0 = time.perf_counter()
        try:
            if self.adaptive and hasattr(self.characteriser, "characterise_adaptive"):
                kw = {k: v for k, v in (("target_relative_ci", self.target_relative_ci),
                                        ("max_cubes", self.max_cubes)) if v is not None}
                if self.adaptive_target == "objective":
                    kw["relative_ci"] = objective_relative_ci
                metrics = self.characteriser.characterise_adaptive(sample_cubes, voxel, seed=int(seed), **kw)
            else:
                vols = sample_cubes(self.n_cubes, int(seed))
                timings["generator"] = gen_time[0]
                metrics = self.characteriser.characterise(vols, voxel, seed=int(seed))
        except Exception as exc:  # noqa: BLE001 - a stage never raises through the loop
            characterisation_timings(t0)
            stage = "characterise" if first else "generator"
            return result("failed", _reason(stage, exc))
        characterisation_timings(t0)
        if not metrics.ok:
            return result("failed", f"characterise: {metrics.reason}", metrics=metrics)
        if judged and judged["n_cubes"] == int(metrics.n_cubes):  # judged on these very cubes: not run again
            reason, obj_s = judged["reason"], judged["objective_s"]
            out = {**judged["out"], "metrics": calibrated(metrics)[0] if "cell" in judged["out"] else metrics}
            if obj_s is not None:
                timings["cell"], timings["objective"] = spent[0] - obj_s, obj_s
        else:
            reason, out, cell_s, obj_s = cell_and_objective(metrics)
            timings["cell"] = spent[0] + cell_s
            if obj_s is not None:
                timings["objective"] = obj_s
        return result("failed" if reason else "completed", reason, **out)


def _reason(stage: str, exc: BaseException) -> str:
    log.warning("%s stage raised %s: %s\n%s", stage, type(exc).__name__, exc,
                "".join(traceback.format_exception(exc)[-3:]))
    return f"{stage}: {type(exc).__name__}: {exc}"
