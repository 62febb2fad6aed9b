"""The full cell: a PyBaMM DFN of a whole cell (default 4680) built from measured metrics.

:class:`CellModel` is the stage object (built from ``conf/cell/*.yaml`` with ``_target_``). One
call of :meth:`CellModel.simulate` turns ``MicrostructureMetrics`` + cathode thickness + a
single-discharge protocol (:mod:`microdesign.cell.protocols`) into one
:class:`~microdesign.cell.result.CellResult`; :meth:`CellModel.sweep` runs a sweep (a list of them).

Speed: PyBaMM cannot re-mesh a built model, so a model is built (and discretised once by the IDAKLU
solver) per geometry ``(L_p, L_n, R_eff, area)`` and per drive (current/power) and kept in a small
LRU cache; the positive electrode's porosity, AM fraction, tortuosity factor and conductivity and
the current or power are ``[input]`` parameters, so every discharge of a power sweep re-uses one
build.
"""

from __future__ import annotations

import logging
import math
import time
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from microdesign.cell.chemistry import load_parameter_values
from microdesign.cell.formats import CellFormat
from microdesign.cell.geometry import CellGeometry, Materials, Stack, VolumeFractions, cell_geometry
from microdesign.cell.parameters import (
    BaseChemistry,
    CathodeStructure,
    base_chemistry,
    parameter_values,
    thickness_m,
)
from microdesign.cell.protocols import (
    C10_CAPACITY_KEY,
    RETENTION_KEY,
    SWEEPS,
    ConstantCurrent,
    ConstantPower,
    PowerSweep,
    Protocol,
    RateSweep,
    protocol_from_config,
)
from microdesign.cell.result import CellResult
from microdesign.characterise.metrics import MicrostructureMetrics
from microdesign.errors import ConfigError, require

log = logging.getLogger(__name__)


# ---------------------------------------------------------------------------------------------------
# The model
# ---------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Design:
    """Everything fixed for one (metrics, thickness) pair."""

    cathode: CathodeStructure
    stack: Stack
    geometry: CellGeometry
    nominal_capacity_Ah: float  # theoretical, initial state -> y_0
    am_mass_kg: float


class CellModel:
    """PyBaMM DFN of a whole cell (default 4680) built from microstructure metrics.

    Args:
        cell_format: the format (a :class:`CellFormat`, or a config mapping for it).
        base_parameter_set: PyBaMM parameter set supplying everything but the cathode
            microstructure (default ``"Chen2020"``, Chen et al. 2020).
        n_p_ratio: anode capacity over usable cathode capacity; ``None`` = the base set's own
            (1.13 for Chen2020).
        lower_voltage_cutoff_V: discharge cut-off [V]; ``None`` = base set's (2.5 V for Chen2020).
        materials: densities for the cell mass (:class:`~microdesign.cell.geometry.Materials` keys).
        separator_thickness_m, positive_current_collector_thickness_m,
        negative_current_collector_thickness_m: ``None`` = base set's (12, 16, 12 um for Chen2020).
        protocol: default protocol (see :func:`protocol_from_config`).
        solver: IDAKLU options ``{rtol, atol}``.
        var_pts: PyBaMM mesh points ``{x_n, x_s, x_p, r_n, r_p}``; ``None`` = PyBaMM defaults.
        max_duration_factor: a discharge stops at ``factor x`` the theoretical duration (nominal
            energy / power, or 1 h / C-rate) if the cut-off is not reached first.
        cache_size: how many built models to keep.
        electrode_area_m2: the electrode area [m2] of every design instead of the one the format's
            winding gives (``None``); mass and volume keep the format's (see :meth:`design`).

    Raises:
        ConfigError: bad configuration (before any model is built).
    """

    def __init__(self, cell_format: CellFormat | Mapping[str, Any], base_parameter_set: str = "Chen2020",
                 n_p_ratio: float | None = None, lower_voltage_cutoff_V: float | None = None,
                 materials: Mapping[str, float] | None = None, separator_thickness_m: float | None = None,
                 positive_current_collector_thickness_m: float | None = None,
                 negative_current_collector_thickness_m: float | None = None,
                 protocol: Mapping[str, Any] | Protocol | None = None,
                 solver: Mapping[str, float] | None = None, var_pts: Mapping[str, int] | None = None,
                 max_duration_factor: float = 3.0, cache_size: int = 8, electrode_area_m2: float | None = None):
        self.cell_format = cell_format if isinstance(cell_format, CellFormat) else CellFormat.from_config(cell_format)
        try:
            self.materials = Materials(**dict(materials or {}))
        except TypeError as exc:
            raise ConfigError("materials", dict(materials or {}), f"keys of Materials ({exc})") from exc
        self.chemistry: BaseChemistry = base_chemistry(str(base_parameter_set))
        chem = self.chemistry
        self.n_p_ratio = float(chem.n_p_ratio if n_p_ratio is None else n_p_ratio)
        require(self.n_p_ratio >= chem.min_n_p_ratio(), "n_p_ratio", self.n_p_ratio,
                f">= {chem.min_n_p_ratio():.4f} so that the anode holds the lithium")
        self.lower_voltage_cutoff_V = lower_voltage_cutoff_V
        if lower_voltage_cutoff_V is not None:
            require(0 < lower_voltage_cutoff_V < 4.0, "lower_voltage_cutoff_V", lower_voltage_cutoff_V, "in (0, 4) V")
        self.separator_thickness_m = float(separator_thickness_m or chem.separator_thickness_m)
        self.positive_current_collector_thickness_m = float(
            positive_current_collector_thickness_m or chem.positive_current_collector_thickness_m)
        self.negative_current_collector_thickness_m = float(
            negative_current_collector_thickness_m or chem.negative_current_collector_thickness_m)
        for key in ("positive_current_collector_thickness_m", "negative_current_collector_thickness_m",
                    "separator_thickness_m"):
            require(getattr(self, key) > 0, key, getattr(self, key),
                    f"a thickness > 0 [m]: the base set {chem.name!r} gives none (BPX files and some PyBaMM sets "
                    f"have no current collectors), so set cell.{key}")
        if electrode_area_m2 is not None:
            require(math.isfinite(electrode_area_m2) and electrode_area_m2 > 0, "electrode_area_m2",
                    electrode_area_m2, "a finite area > 0 [m2] or null (the format's winding)")
        self.electrode_area_m2 = None if electrode_area_m2 is None else float(electrode_area_m2)
        self.protocol = protocol_from_config(protocol) if protocol is not None else ConstantPower(10.0)
        self.solver_options = {"rtol": 1e-6, "atol": 1e-6, **dict(solver or {})}
        self.var_pts = dict(var_pts) if var_pts else None
        require(max_duration_factor > 1, "max_duration_factor", max_duration_factor, "> 1")
        self.max_duration_factor = float(max_duration_factor)
        require(cache_size >= 1, "cache_size", cache_size, ">= 1")
        self.cache_size = int(cache_size)
        self._base_cutoff_V: float | None = None
        self._sims: OrderedDict[tuple, Any] = OrderedDict()
        self._c10: dict[tuple, tuple[float, str | None]] = {}
        self.n_builds = 0
        self.n_solves = 0

    @property
    def cutoff_V(self) -> float:
        """Lower cut-off voltage [V] (configured, else the base set's)."""
        if self.lower_voltage_cutoff_V is not None:
            return float(self.lower_voltage_cutoff_V)
        if self._base_cutoff_V is None:
            self._base_cutoff_V = float(load_parameter_values(self.chemistry.name)["Lower voltage cut-off [V]"])
        return self._base_cutoff_V

    # ---- structure ------------------------------------------------------------------------------
    def cathode_thickness_from_mass_loading(self, metrics: MicrostructureMetrics, mass_loading_mg_cm2: float) -> float:
        """Cathode coating thickness [m] of a design: h = ML / (PD 100), PD = X_AM rho_AM + X_CBD rho_CBD.

        The press density comes from the measured phase fractions and the material densities of
        ``materials`` (docs/process_model.md, "Linked parameters": PD = CD (1 - eps)).

        Raises:
            ConfigError: non-positive mass loading or bad metrics.
        """
        cathode = CathodeStructure.from_metrics(metrics)
        pd = cathode.press_density_g_cm3(self.materials.cathode_am_density_kg_m3 / 1000,
                                         self.materials.cathode_cbd_density_kg_m3 / 1000)
        return thickness_m(mass_loading_mg_cm2, pd)

    def design(self, metrics: MicrostructureMetrics, cathode_thickness_m: float,
               electrode_area_m2: float | None = None) -> _Design:
        """Cathode structure, stack, geometry and nominal capacity of one design (no PyBaMM model).

        Args:
            metrics: measured metrics.
            cathode_thickness_m: one cathode coating [m].
            electrode_area_m2: override the format's electrode area [m2] (base-point studies at a
                published set's own area; mass and volume then keep the format's values); ``None`` =
                the model's ``electrode_area_m2`` if set, else the format's winding.

        Raises:
            ConfigError: bad metrics or a non-positive thickness.
        """
        require(math.isfinite(cathode_thickness_m) and cathode_thickness_m > 0, "cathode_thickness_m",
                cathode_thickness_m, "a finite thickness > 0 [m]")
        cathode = CathodeStructure.from_metrics(metrics)
        chem = self.chemistry
        if electrode_area_m2 is None:
            electrode_area_m2 = self.electrode_area_m2
        L_n = chem.anode_thickness_m_for(cathode.am_volume_fraction, cathode_thickness_m, self.n_p_ratio)
        stack = Stack(cathode_thickness_m, L_n, self.positive_current_collector_thickness_m,
                      self.negative_current_collector_thickness_m, self.separator_thickness_m)
        fractions = VolumeFractions(cathode.porosity, cathode.am_volume_fraction, chem.anode_porosity,
                                    chem.anode_am_volume_fraction, chem.separator_porosity)
        geo = cell_geometry(self.cell_format, stack, fractions, self.materials)
        if electrode_area_m2 is not None:
            require(math.isfinite(electrode_area_m2) and electrode_area_m2 > 0, "electrode_area_m2",
                    electrode_area_m2, "a finite area > 0 [m2]")
            geo = CellGeometry(geo.status, geo.reason, geo.cell_format, geo.repeat_unit_thickness_m,
                               jelly_roll_length_m=electrode_area_m2 / (2 * self.cell_format.electrode_height_m),
                               electrode_height_m=self.cell_format.electrode_height_m,
                               electrode_area_m2=electrode_area_m2, n_turns=geo.n_turns, volume_L=geo.volume_L,
                               mass_breakdown_kg=_rescale_area_masses(geo.mass_breakdown_kg,
                                                                      electrode_area_m2 / geo.electrode_area_m2))
        nominal = chem.initial_capacity_Ah_m2(cathode.am_volume_fraction, cathode_thickness_m) * geo.electrode_area_m2
        am_mass = cathode.am_volume_fraction * self.materials.cathode_am_density_kg_m3 * cathode_thickness_m \
            * geo.electrode_area_m2
        return _Design(cathode, stack, geo, nominal, am_mass)

    # ---- PyBaMM ---------------------------------------------------------------------------------
    def parameter_values(self, design: _Design, drive: str = "current", fixed: bool = False) -> Any:
        """The PyBaMM ``ParameterValues`` of ``design`` (structure as inputs unless ``fixed``)."""
        geo = design.geometry
        pv = parameter_values(
            self.chemistry, cathode_thickness_m=design.stack.cathode_thickness_m,
            anode_thickness_m=design.stack.anode_thickness_m,
            particle_radius_m=design.cathode.effective_particle_radius_m,
            electrode_area_m2=geo.electrode_area_m2, electrode_height_m=geo.electrode_height_m,
            n_p_ratio=self.n_p_ratio, lower_voltage_cutoff_V=self.lower_voltage_cutoff_V,
            separator_thickness_m=self.separator_thickness_m,
            positive_current_collector_thickness_m=self.positive_current_collector_thickness_m,
            negative_current_collector_thickness_m=self.negative_current_collector_thickness_m,
            cathode=design.cathode if fixed else None, drive=drive)
        pv.update({"Nominal cell capacity [A.h]": design.nominal_capacity_Ah})
        return pv

    @staticmethod
    def _model(drive: str) -> Any:
        import pybamm

        options = {"transport efficiency": "tortuosity factor", "calculate discharge energy": "true"}
        if drive == "power":
            options["operating mode"] = "power"
        return pybamm.lithium_ion.DFN(options=options)

    def simulation(self, design: _Design, drive: str) -> Any:
        """A built ``pybamm.Simulation`` for ``design``'s geometry (LRU-cached)."""
        import pybamm

        key = (drive, *(round(v, 15) for v in (design.stack.cathode_thickness_m, design.stack.anode_thickness_m,
                                                design.cathode.effective_particle_radius_m,
                                                design.geometry.electrode_area_m2, design.nominal_capacity_Ah)))
        sim = self._sims.get(key)
        if sim is not None:
            self._sims.move_to_end(key)
            return sim
        solver = pybamm.IDAKLUSolver(rtol=self.solver_options["rtol"], atol=self.solver_options["atol"])
        sim = pybamm.Simulation(self._model(drive), parameter_values=self.parameter_values(design, drive),
                                solver=solver, var_pts=self.var_pts)
        self._sims[key] = sim
        self.n_builds += 1
        while len(self._sims) > self.cache_size:
            self._sims.popitem(last=False)
        return sim

    # ---- solving --------------------------------------------------------------------------------
    def _known(self, design: _Design) -> dict[str, Any]:
        geo = design.geometry
        return dict(jelly_roll_length_m=geo.jelly_roll_length_m, electrode_area_m2=geo.electrode_area_m2,
                    cathode_thickness_m=design.stack.cathode_thickness_m,
                    anode_thickness_m=design.stack.anode_thickness_m, cell_mass_kg=geo.mass_kg,
                    can_volume_L=geo.volume_L, cell_format=self.cell_format.name,
                    extra={"N/P ratio": self.n_p_ratio,
                           "Positive particle effective radius [m]": design.cathode.effective_particle_radius_m,
                           "Nominal capacity [A.h]": design.nominal_capacity_Ah,
                           "Repeat unit thickness [m]": geo.repeat_unit_thickness_m})

    def _run(self, design: _Design, drive: str, value: float, t_end_s: float, protocol: str,
             **labels: float) -> tuple[CellResult, Any]:
        """One discharge; failures become failed results. Returns (result, pybamm solution or None)."""
        known = {**self._known(design), "protocol": protocol, **labels}
        try:
            sim = self.simulation(design, drive)
        except Exception as exc:  # noqa: BLE001 - a build failure is a value
            log.warning("cell model build failed: %s", exc)
            return CellResult.failed(f"model build failed: {type(exc).__name__}: {exc}", **known), None
        inputs = design.cathode.inputs()
        inputs["Current function [A]" if drive == "current" else "Power function [W]"] = value
        t0 = time.perf_counter()
        try:
            sol = sim.solve([0.0, t_end_s], inputs=inputs)
        except Exception as exc:  # noqa: BLE001 - pybamm.SolverError and friends
            msg = f"{type(exc).__name__}: {str(exc)[:200]}"
            self.n_solves += 1
            if self._cut_off_at_t0(design, drive, value):
                reason = f"cut-off voltage reached at t = 0: no state above {self.cutoff_V:g} V delivers " \
                         f"{value:g} {'W' if drive == 'power' else 'A'} ({msg})"
            else:
                reason = f"solver failure: {msg}"
            log.info("%s: %s", protocol, reason)
            return CellResult.failed(reason, **known), None
        self.n_solves += 1
        log.debug("%s solved in %.3f s", protocol, time.perf_counter() - t0)
        t = np.asarray(sol["Time [s]"].entries, dtype=float)
        V = np.asarray(sol["Voltage [V]"].entries, dtype=float)
        I = np.asarray(sol["Current [A]"].entries, dtype=float)
        Q = float(sol["Discharge capacity [A.h]"].entries[-1])
        E = float(sol["Discharge energy [W.h]"].entries[-1])
        duration = float(t[-1] - t[0])
        termination = str(sol.termination)
        if not (np.all(np.isfinite(V)) and math.isfinite(Q) and math.isfinite(E)):
            return CellResult.failed("solver returned non-finite values", termination=termination, **known), sol
        if duration < 1.0 or Q <= 1e-6 * max(design.nominal_capacity_Ah, 1e-12) or E <= 0:
            return CellResult.failed(f"cut-off voltage reached at t = 0 (discharged {duration:.3g} s, "
                                     f"{Q:.3g} A.h; {termination})", termination=termination, **known), sol
        if "final time" in termination:
            log.warning("%s: time limit %.0f s reached before the cut-off", protocol, t_end_s)
        geo = design.geometry
        res = CellResult(
            status="ok", reason=None, termination=termination, current_A=Q * 3600 / duration,
            capacity_Ah=Q, energy_Wh=E, mean_voltage_V=E / Q, duration_s=duration,
            volumetric_energy_density_Wh_L=E / geo.volume_L, specific_energy_Wh_kg=E / geo.mass_kg,
            mean_power_W=E * 3600 / duration,
            cathode_capacity_mAh_g_am=Q * 1000 / (design.am_mass_kg * 1000),
            **known)
        _ = V, I  # time series stay on the solution
        return res, sol

    def _cut_off_at_t0(self, design: _Design, drive: str, value: float) -> bool:
        """After a failed solve: is the discharge infeasible from t = 0?

        Diagnosis: the largest current the protocol needs while the voltage stays above the cut-off
        is I = value (current drive) or P / V_cut (power drive). If a 1 ms discharge at that current
        fails, or starts below the cut-off, no initial state above the cut-off exists.
        """
        current = value if drive == "current" else value / self.cutoff_V
        try:
            sim = self.simulation(design, "current")
            inputs = {**design.cathode.inputs(), "Current function [A]": current}
            sol = sim.solve([0.0, 1e-3], inputs=inputs)
            self.n_solves += 1
            return bool(float(sol["Voltage [V]"].entries[0]) <= self.cutoff_V)
        except Exception:  # noqa: BLE001 - failing again at t = 0 is the answer
            return True

    def _t_end(self, design: _Design, hours: float) -> float:
        return self.max_duration_factor * hours * 3600.0

    def c10_capacity_Ah(self, design: _Design) -> float:
        """The design's own C/10 capacity [A.h] (discharge at nominal/10 A to the cut-off), cached per design.

        Returns 0.0 when that discharge fails or stops at the time limit before the cut-off (the
        capacity would then be the limit's, not the design's; :meth:`c10_failure` says why).
        """
        key = (design.cathode, design.stack, design.geometry.electrode_area_m2)
        if key not in self._c10:
            res, _ = self._run(design, "current", design.nominal_capacity_Ah / 10, self._t_end(design, 10.0),
                               f"C/10 reference ({design.nominal_capacity_Ah / 10:.4g} A) to {self.cutoff_V:g} V")
            if res.ok and "final time" in res.termination:
                res = replace(res, status="failed", reason=f"the C/10 reference did not reach {self.cutoff_V:g} V "
                                                           f"within {self.max_duration_factor * 10:g} h")
            self._c10[key] = (res.capacity_Ah if res.ok else 0.0, res.reason)
        return self._c10[key][0]

    def c10_failure(self, design: _Design) -> str | None:
        """Why the C/10 reference of ``design`` failed (after :meth:`c10_capacity_Ah`), else None."""
        key = (design.cathode, design.stack, design.geometry.electrode_area_m2)
        return self._c10.get(key, (0.0, None))[1]

    def run_protocol(self, design: _Design, protocol: ConstantPower | ConstantCurrent) -> tuple[CellResult, Any]:
        """One discharge of a built design; returns (result, pybamm solution or None)."""
        cutoff = self.cutoff_V
        if not design.geometry.ok:
            known = {k: v for k, v in self._known(design).items() if k != "jelly_roll_length_m"}
            return CellResult.failed(design.geometry.reason or "infeasible geometry", protocol=protocol.describe(cutoff),
                                     **known), None
        if isinstance(protocol, ConstantPower):
            nominal_Wh = design.nominal_capacity_Ah * 3.7
            return self._run(design, "power", protocol.power_W, self._t_end(design, nominal_Wh / protocol.power_W),
                             protocol.describe(cutoff), power_W=protocol.power_W)
        if protocol.current_A is not None:
            hours = design.nominal_capacity_Ah / protocol.current_A
            return self._run(design, "current", protocol.current_A, self._t_end(design, hours),
                             protocol.describe(cutoff))
        q10 = self.c10_capacity_Ah(design)
        if q10 <= 0:
            return CellResult.failed(f"the C/10 reference discharge failed: {self.c10_failure(design)}",
                                     protocol=protocol.describe(cutoff),
                                     c_rate=protocol.c_rate, **self._known(design)), None
        current = protocol.c_rate * q10
        res, sol = self._run(design, "current", current, self._t_end(design, 1.0 / protocol.c_rate),
                             f"{protocol.describe(cutoff)} ({current:.4g} A)", c_rate=protocol.c_rate)
        if res.ok:
            res = replace(res, extra={**res.extra, C10_CAPACITY_KEY: q10, RETENTION_KEY: res.capacity_Ah / q10})
        return res, sol

    def simulate(self, metrics: MicrostructureMetrics, cathode_thickness_m: float,
                 protocol: ConstantPower | ConstantCurrent | Mapping[str, Any] | None = None) -> CellResult:
        """Simulate one discharge of one design.

        Args:
            metrics: what characterisation measured (needs porosity, AM volume fraction, through-plane
                pore tortuosity factor, solid conductivity, AM-pore specific surface area).
            cathode_thickness_m: one cathode coating [m] (see :meth:`cathode_thickness_from_mass_loading`).
            protocol: :class:`~microdesign.cell.protocols.ConstantPower`,
                :class:`~microdesign.cell.protocols.ConstantCurrent` or a config mapping; ``None`` = the
                configured default. Sweeps go through :meth:`sweep`.

        Returns:
            One :class:`CellResult`. Failed metrics, infeasible geometry, failed solves and a cut-off
            at t = 0 are results with ``status == "failed"`` and a reason.

        Raises:
            ConfigError: missing or out-of-range metrics, bad thickness, a bad protocol or a sweep.
        """
        proto = self.protocol if protocol is None else protocol_from_config(protocol)
        if isinstance(proto, SWEEPS):
            raise ConfigError("protocol", proto, "one discharge (constant_power or constant_current); "
                              "run a power_sweep or rate_sweep with CellModel.sweep")
        return self.sweep(metrics, cathode_thickness_m, proto)[0]

    def sweep(self, metrics: MicrostructureMetrics, cathode_thickness_m: float,
              protocol: Protocol | Mapping[str, Any] | None = None) -> list[CellResult]:
        """Every discharge of a protocol for one design, one model build per drive.

        Args:
            metrics, cathode_thickness_m: as :meth:`simulate`.
            protocol: any protocol or config mapping; ``None`` = the configured default.

        Returns:
            ``p`` results, one per power of a :class:`~microdesign.cell.protocols.PowerSweep`, ``r``
            results, one per C-rate of a :class:`~microdesign.cell.protocols.RateSweep` (their C/10
            reference discharge is run once and shared), one result for a single-discharge protocol;
            failures are results with a reason.

        Raises:
            ConfigError: missing or out-of-range metrics, bad thickness or protocol.
        """
        proto = self.protocol if protocol is None else protocol_from_config(protocol)
        if isinstance(proto, PowerSweep):
            steps: list[ConstantPower | ConstantCurrent] = [ConstantPower(p) for p in proto.powers_W]
        elif isinstance(proto, RateSweep):
            steps = [ConstantCurrent(c) for c in proto.c_rates]
        else:
            steps = [proto]
        if not metrics.ok:
            reason = f"characterisation failed: {metrics.reason}"
            fail = CellResult.failed(reason, cathode_thickness_m=float(cathode_thickness_m) if
                                     math.isfinite(cathode_thickness_m) else 0.0,
                                     cell_format=self.cell_format.name, can_volume_L=self.cell_format.volume_L)
            if isinstance(proto, PowerSweep):
                return [replace(fail, power_W=p) for p in proto.powers_W]
            if isinstance(proto, RateSweep):
                return [replace(fail, c_rate=c) for c in proto.c_rates]
            return [fail]
        design = self.design(metrics, cathode_thickness_m)
        return [self.run_protocol(design, step)[0] for step in steps]

    def ragone(self, metrics: MicrostructureMetrics, cathode_thickness_m: float,
               powers_W: Sequence[float]) -> list[CellResult]:
        """Constant-power discharges at ``powers_W`` (shape ``p``): one design's Ragone curve."""
        return self.sweep(metrics, cathode_thickness_m, PowerSweep(tuple(float(p) for p in powers_W)))


def build_cell_model(cfg: Any) -> CellModel:
    """``hydra.utils.instantiate`` a ``conf/cell/*.yaml`` node, re-raising a wrapped :class:`ConfigError` as itself.

    Raises:
        ConfigError: bad configuration.
    """
    from hydra.errors import InstantiationException
    from hydra.utils import instantiate

    try:
        return instantiate(cfg, _convert_="all")
    except InstantiationException as exc:
        cause = exc.__cause__
        while cause is not None and not isinstance(cause, ConfigError):
            cause = cause.__cause__
        if isinstance(cause, ConfigError):
            raise cause from exc
        raise


#: Mass entries of :func:`~microdesign.cell.geometry.cell_geometry` that do not scale with electrode area.
_FIXED_MASSES = ("housing", "hardware")


def _rescale_area_masses(breakdown: dict[str, float], factor: float) -> dict[str, float]:
    """Scale every area-proportional mass (coatings, foils, separators, electrolyte) by ``factor``, so
    that specific energy stays consistent when a study overrides the electrode area; the housing and
    hardware keep the format's mass (the can volume also stays the format's)."""
    return {k: (v if k in _FIXED_MASSES else v * factor) for k, v in breakdown.items()}
