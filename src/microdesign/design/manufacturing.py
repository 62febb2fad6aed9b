"""Manufacturing design space: the settings a process engineer sets, mapped to what the generator needs.

A design of ``design_space=manufacturing`` holds line settings (role ``process``): the AM weight
fraction and the carbon-to-binder weight ratio of the formulation, the calender line load [N.mm-1]
and the target dry coating loading [mg.cm-2], plus the material parameters the generator needs and
no process model predicts (CBD adhesion, role ``microstructure``). :class:`ManufacturingDesign`
runs them through the :class:`~microdesign.process.chain.ProcessModel` (formulation -> slot-die
coating -> drying -> calendering, docs/process_model.md) and returns a :class:`MappedDesign`:

* the generator's parameters: ``porosity`` = calendered porosity; ``am_weight_fraction`` = the
  *generator-equivalent* AM weight fraction, the one whose AM:CBD volume ratio under the generator's
  reference formulation (C65:PVDF 1:1, ρ_CBD = 1.838 g.cm-3,
  :func:`~microdesign.process.formulation.default_cbd_density_g_cm3`) equals the process's:
  ``w_eq = r ρ_AM / (r ρ_AM + ρ_CBD,ref)`` with ``r = X_AM/X_CBD``. With a 1:1 carbon:binder ratio
  ``w_eq`` is the AM weight fraction itself; another ratio changes ρ_CBD and hence the volume split;
* the mass loading that sets the cell's cathode thickness (the dry loading);
* every process output (porosity, thickness, phase fractions, the flow rate that gives the target
  loading at the configured web speed), stored with the trial.

The target dry loading is reached by the slot-die flow rate at a fixed web speed and coating width:
the dry loading is proportional to the flow rate (``m_dry = s ρ_slurry Q/(v w)``,
:mod:`microdesign.process.coating`), so ``Q = Q_base · m_target / m_dry(Q_base)``.

A setting whose mapped porosity or generator-equivalent AM weight fraction leaves the generator's
training bounds is refused before any work (:meth:`ManufacturingDesign.map` raises
:class:`~microdesign.errors.ConfigError`; the campaign records the trial as failed with that reason
before the generator runs), and :meth:`ManufacturingDesign.check_space` refuses a design space
whose corners map outside the bounds when the campaign is built (the maps are monotone in each
setting, so the corners bound them).
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from microdesign.errors import ConfigError

log = logging.getLogger(__name__)

#: Design parameters that are process inputs (role ``process``), by name.
PROCESS_SETTINGS: tuple[str, ...] = ("am_weight_fraction", "carbon_to_binder_weight_ratio", "line_load_N_mm",
                                     "dry_loading_mg_cm2", "flow_rate_mL_min")
#: Generator parameters the process model predicts.
MAPPED_GENERATOR_PARAMETERS: tuple[str, ...] = ("porosity", "am_weight_fraction")
#: Process outputs stored with each trial (the cell result's ``extra``, prefixed ``process_``).
STORED_OUTPUTS: tuple[str, ...] = ("porosity", "thickness_m", "am_volume_fraction", "cbd_volume_fraction",
                                   "dry_loading_mg_cm2", "coating_density_g_cm3", "dry_porosity")


@dataclass(frozen=True)
class MappedDesign:
    """One manufacturing setting mapped through the process chain.

    Attributes:
        settings: the design as given (physical units).
        generator_params: name -> value passed to the generator (porosity, generator-equivalent
            AM weight fraction, and the material parameters such as ``cbd_adhesion``).
        mass_loading_mg_cm2: dry loading that sets the cathode thickness [mg.cm-2].
        process_inputs: the full process-chain inputs (flow rate solved for the target loading).
        outputs: process outputs (:data:`~microdesign.process.chain.OUTPUTS`) plus
            ``flow_rate_mL_min`` and ``generator_am_weight_fraction``.
    """

    settings: dict[str, float]
    generator_params: dict[str, float]
    mass_loading_mg_cm2: float
    process_inputs: dict[str, float] = field(default_factory=dict)
    outputs: dict[str, float] = field(default_factory=dict)

    def extra(self) -> dict[str, float]:
        """Process outputs for the trial record (``process_<name>`` -> value)."""
        keys = (*STORED_OUTPUTS, "flow_rate_mL_min", "generator_am_weight_fraction")
        return {f"process_{k}": float(self.outputs[k]) for k in keys if k in self.outputs}


class ManufacturingDesign:
    """Maps manufacturing settings to the generator's parameters and the cell's mass loading.

    Args:
        process: the process model (base inputs, drying model, tolerances; ``conf/process``).
        training_bounds: the generator's ``name -> (lower, upper)`` (None: no check).
        material_names: design parameters passed to the generator unchanged (``cbd_adhesion``).

    Raises:
        ConfigError: a material parameter named like a process setting or a mapped generator parameter.
    """

    def __init__(self, process: Any, training_bounds: Mapping[str, tuple[float, float]] | None = None,
                 material_names: tuple[str, ...] = ("cbd_adhesion",)):
        self.process = process
        self.training_bounds = None if training_bounds is None else {k: (float(v[0]), float(v[1]))
                                                                      for k, v in dict(training_bounds).items()}
        clash = [n for n in material_names if n in PROCESS_SETTINGS or n in MAPPED_GENERATOR_PARAMETERS]
        if clash:
            raise ConfigError(f"design_space.parameters.{clash[0]}", clash[0],
                              "role: process (a setting the process model maps), not a material parameter of the "
                              f"generator; the process model predicts {list(MAPPED_GENERATOR_PARAMETERS)}")
        self.material_names = tuple(material_names)

    @classmethod
    def from_config(cls, process_cfg: Any, space: Any, generator: Any = None) -> ManufacturingDesign:
        """Build from ``design_space.process`` (a ``ProcessModel`` config) and the design space.

        Args:
            process_cfg: Hydra node with ``_target_`` (``conf/process/*.yaml``).
            space: the ``DesignSpace``; its ``microstructure`` parameters are the material parameters.
            generator: has ``training_bounds`` (or None).

        Raises:
            ConfigError: no process config, a process-role parameter that is not a process setting,
                or corners of the design space that map outside the training bounds (:meth:`check_space`).
        """
        from microdesign.campaign.build import instantiate

        if process_cfg is None:
            raise ConfigError("design_space.process", None, "a process model config (conf/process/*.yaml) "
                              "for a design space with process-role parameters")
        unknown = [n for n in space.process_names if n not in PROCESS_SETTINGS]
        if unknown:
            raise ConfigError(f"design_space.parameters.{unknown[0]}", unknown[0],
                              f"a process setting, one of {list(PROCESS_SETTINGS)}")
        if "dry_loading_mg_cm2" in space.process_names and "flow_rate_mL_min" in space.process_names:
            raise ConfigError("design_space.parameters", ["dry_loading_mg_cm2", "flow_rate_mL_min"],
                              "one of them (the loading is set through the flow rate)")
        tb = getattr(generator, "training_bounds", None)
        out = cls(instantiate(process_cfg, "design_space.process"), tb, tuple(space.microstructure_names))
        out.check_space(space)
        return out

    # ------------------------------------------------------------------ mapping
    def process_inputs(self, settings: Mapping[str, float]) -> dict[str, Any]:
        """Process-chain inputs of ``settings`` (floats or arrays): the base inputs with the settings
        applied, the flow rate solved for a target dry loading."""
        from microdesign.process.chain import evaluate_process

        x = {**self.process.inputs, **{k: v for k, v in settings.items() if k in PROCESS_SETTINGS
                                        and k != "dry_loading_mg_cm2"}}
        if "dry_loading_mg_cm2" in settings:
            m_base = evaluate_process(x, self.process.drying)["dry_loading_mg_cm2"]
            x["flow_rate_mL_min"] = np.asarray(x["flow_rate_mL_min"], float) * np.asarray(
                settings["dry_loading_mg_cm2"], float) / m_base
            if np.ndim(x["flow_rate_mL_min"]) == 0:
                x["flow_rate_mL_min"] = float(x["flow_rate_mL_min"])
        return x

    def outputs(self, process_inputs: Mapping[str, Any]) -> dict[str, Any]:
        """Process outputs of (possibly array-valued) inputs, with ``flow_rate_mL_min`` and
        ``generator_am_weight_fraction`` added."""
        from microdesign.process.chain import evaluate_process

        out = dict(evaluate_process(process_inputs, self.process.drying))
        out["flow_rate_mL_min"] = process_inputs["flow_rate_mL_min"]
        out["generator_am_weight_fraction"] = generator_am_weight_fraction(
            out["am_volume_fraction"], out["cbd_volume_fraction"], process_inputs["am_density_g_cm3"])
        return out

    def map(self, settings: Mapping[str, float], check: bool = True) -> MappedDesign:
        """Map one design (every parameter of the design space, physical units).

        Raises:
            ConfigError: an invalid process value, or (``check``) a mapped porosity or AM weight
                fraction outside the generator's training bounds (named, with the setting that led there).
        """
        settings = {k: float(v) for k, v in settings.items()}
        x = self.process_inputs(settings)
        out = {k: float(np.asarray(v)) for k, v in self.outputs(x).items()}
        gen = {"porosity": out["porosity"], "am_weight_fraction": out["generator_am_weight_fraction"]}
        gen.update({n: settings[n] for n in self.material_names if n in settings})
        if check:
            self.check_bounds(gen, settings)
        return MappedDesign(settings, gen, out["dry_loading_mg_cm2"],
                            {k: float(np.asarray(v)) for k, v in x.items()}, out)

    def check_bounds(self, generator_params: Mapping[str, float], settings: Mapping[str, float] | None = None) -> None:
        """Refuse generator parameters outside the training bounds.

        Raises:
            ConfigError: names the mapped parameter, its value and the bounds (and the settings).
        """
        if self.training_bounds is None:
            return
        for name, value in generator_params.items():
            if name not in self.training_bounds:
                continue
            lo, hi = self.training_bounds[name]
            tol = 1e-9 * max(hi - lo, 1e-12)
            if not lo - tol <= value <= hi + tol:
                where = "" if settings is None else f" (settings {dict(settings)})"
                raise ConfigError(f"mapped {name}", round(float(value), 6),
                                  f"within the generator's training bounds [{lo}, {hi}]{where}", "manufacturing design")

    def check_space(self, space: Any) -> None:
        """Every corner of the design space's process box maps inside the training bounds, and every
        generator parameter is either mapped or a material parameter of the space.

        Raises:
            ConfigError: the first corner that maps outside (named), or a generator parameter that
                neither the process model nor the design space provides.
        """
        if self.training_bounds is None:
            return
        provided = set(MAPPED_GENERATOR_PARAMETERS) | set(self.material_names)
        missing = [n for n in self.training_bounds if n not in provided]
        if missing:
            raise ConfigError("design_space.parameters", list(space.names),
                              f"every generator parameter {sorted(self.training_bounds)} (missing {missing})")
        fixed = space.fixed_values
        spans = []
        for n in space.names:
            p = space[n]
            spans.append([p.fixed] if n in fixed else [p.lower, p.upper])
        for corner in itertools.product(*spans):
            settings = dict(zip(space.names, corner))
            mapped = self.map(settings, check=False)
            try:
                self.check_bounds(mapped.generator_params, settings)
            except ConfigError as exc:
                raise ConfigError("design_space.parameters", settings,
                                  f"process settings that map inside the generator's training bounds ({exc})") from None

    # ------------------------------------------------------------------ tolerances
    def sample(self, design: MappedDesign, n_samples: int, seed: int) -> dict[str, np.ndarray]:
        """Monte Carlo of the process model's tolerances around one mapped design.

        Returns:
            Output name -> array ``n_samples`` (process outputs, ``flow_rate_mL_min``,
            ``generator_am_weight_fraction``), drawn with
            :func:`microdesign.process.tolerance.propagate` (seeded ``numpy.random.default_rng``).

        Raises:
            ConfigError: the process model has no tolerances, or a sampled value that the chain refuses.
        """
        from microdesign.process.tolerance import propagate

        if not self.process.tolerances:
            raise ConfigError("design_space.process.tolerances", {}, "at least one tolerance for a robust objective")
        base = dict(design.process_inputs)
        if "dry_porosity" in self.process.tolerances and "dry_porosity" not in base:
            base["dry_porosity"] = float(self.process.drying.dry_porosity(base))
        res = propagate(self.outputs, base, self.process.tolerances, n_samples=int(n_samples), seed=int(seed))
        return res.samples


def generator_am_weight_fraction(am_volume_fraction: Any, cbd_volume_fraction: Any, am_density_g_cm3: Any) -> Any:
    """AM weight fraction with the AM:CBD volume ratio ``r`` of the process under the generator's reference
    CBD density: ``w_eq = r ρ_AM/(r ρ_AM + ρ_CBD,ref)`` (module docstring; ρ_CBD,ref from
    :func:`~microdesign.process.formulation.default_cbd_density_g_cm3`). Floats or arrays."""
    from microdesign.process.formulation import default_cbd_density_g_cm3

    am_mass = np.asarray(am_volume_fraction, float) * am_density_g_cm3  # r ρ_AM X_CBD, free of r's 0/0
    w = am_mass / (am_mass + np.asarray(cbd_volume_fraction, float) * default_cbd_density_g_cm3())
    return float(w) if np.ndim(w) == 0 else w
