"""The half cell: the measured cathode against a lithium-metal counter electrode.

:class:`HalfCellModel` is the "academic" electrode-level test (case study 1 of Kench et al., Matter
2024): PyBaMM's half-cell DFN (``{"working electrode": "positive"}``) at a constant C-rate; the
figure of merit is the capacity per gram of cathode active material
(``CellResult.cathode_capacity_mAh_g_am`` [mA.h.g-1]). It shares the full cell's configuration
(base chemistry, materials, cut-off, solver) and model cache (:class:`~microdesign.cell.full_cell.CellModel`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from microdesign.cell.chemistry import load_parameter_values
from microdesign.cell.full_cell import CellModel
from microdesign.cell.parameters import CathodeStructure
from microdesign.cell.result import CellResult
from microdesign.characterise.metrics import MicrostructureMetrics
from microdesign.errors import ConfigError, require


class HalfCellModel(CellModel):
    """The measured cathode against lithium metal at a constant C-rate.

    ``simulate`` runs :meth:`simulate_half_cell` (PyBaMM half-cell DFN, lithium-metal kinetics of
    Xu et al. 2019) at ``c_rate``; per-gram results do not depend on the area.

    Args:
        c_rate: discharge C-rate [h-1] relative to the cathode's nominal capacity (0.1 ... 3 in the
            case study, Kench et al. 2024).
        electrode_area_m2: electrode area of the 1D model [m2] (1 cm2; ``None`` = 1 cm2).
        upper_voltage_cutoff_V: upper cut-off of the half cell [V] (4.4 V vs Li/Li+).
        **kwargs: :class:`~microdesign.cell.full_cell.CellModel` arguments (cell format, base chemistry,
            materials, cut-off, solver).

    Raises:
        ConfigError: non-positive C-rate or area, or a bad cell configuration.
    """

    def __init__(self, c_rate: float = 1.0, electrode_area_m2: float | None = 1e-4,
                 upper_voltage_cutoff_V: float = 4.4, **kwargs: Any):
        if electrode_area_m2 is None:  # the full cell's config leaves it null
            electrode_area_m2 = 1e-4
        if not (math.isfinite(c_rate) and c_rate > 0):
            raise ConfigError("cell.c_rate", c_rate, "a finite C-rate > 0 [h-1]")
        if not (math.isfinite(electrode_area_m2) and electrode_area_m2 > 0):
            raise ConfigError("cell.electrode_area_m2", electrode_area_m2, "an area > 0 [m2]")
        super().__init__(electrode_area_m2=electrode_area_m2, **kwargs)
        self.c_rate = float(c_rate)
        self.upper_voltage_cutoff_V = float(upper_voltage_cutoff_V)

    def simulate(self, metrics: Any, cathode_thickness_m: float, protocol: Any = None) -> CellResult:
        """Half-cell discharge at ``c_rate`` (``protocol`` may be ``{"c_rate": x}`` to override it)."""
        rate = self.c_rate
        if isinstance(protocol, Mapping) and protocol.get("c_rate") is not None:
            rate = float(protocol["c_rate"])
        return self.simulate_half_cell(metrics, cathode_thickness_m, rate, electrode_area_m2=self.electrode_area_m2,
                                       upper_voltage_cutoff_V=self.upper_voltage_cutoff_V)

    def simulate_half_cell(self, metrics: MicrostructureMetrics, cathode_thickness_m: float, c_rate: float,
                           electrode_area_m2: float = 1e-4, upper_voltage_cutoff_V: float = 4.4) -> CellResult:
        """The "academic" electrode-level test: the cathode against a lithium-metal counter electrode.

        PyBaMM's half-cell DFN (``{"working electrode": "positive"}``) with the measured cathode, the
        base set's separator and electrolyte, and the lithium-metal exchange-current density and
        partial molar volume of PyBaMM's ``Xu2019`` set (Xu et al., J. Electrochem. Soc. 166 (2019)
        A3456). The current is ``c_rate`` times the cathode's nominal capacity
        ``F c_p,max X_AM L_p (y_0 - y_init) A`` (no cell format: per-gram results do not depend on area).
        The cell-level fields (volumetric energy density, specific energy, mass, volume) are 0.0.

        Returns:
            A :class:`CellResult` whose ``cathode_capacity_mAh_g_am`` is the discharged capacity per
            gram of cathode active material [mA.h.g-1]; failures are results with a reason.

        Raises:
            ConfigError: bad metrics, thickness, C-rate or area.
        """
        import pybamm

        require(math.isfinite(c_rate) and c_rate > 0, "c_rate", c_rate, "a finite C-rate > 0 [h-1]")
        require(math.isfinite(electrode_area_m2) and electrode_area_m2 > 0, "electrode_area_m2", electrode_area_m2,
                "> 0 [m2]")
        require(math.isfinite(cathode_thickness_m) and cathode_thickness_m > 0, "cathode_thickness_m",
                cathode_thickness_m, "a finite thickness > 0 [m]")
        label = f"half cell (Li metal) {c_rate:g}C to {self.cutoff_V:g} V"
        if not metrics.ok:
            return CellResult.failed(f"characterisation failed: {metrics.reason}", protocol=label, c_rate=c_rate,
                                     cathode_thickness_m=cathode_thickness_m, cell_format="half cell")
        cathode = CathodeStructure.from_metrics(metrics)
        chem = self.chemistry
        nominal = chem.initial_capacity_Ah_m2(cathode.am_volume_fraction, cathode_thickness_m) * electrode_area_m2
        am_mass_kg = cathode.am_volume_fraction * self.materials.cathode_am_density_kg_m3 * cathode_thickness_m \
            * electrode_area_m2
        key = ("half", round(cathode_thickness_m, 15), round(cathode.effective_particle_radius_m, 15),
               round(electrode_area_m2, 15))
        known = dict(protocol=label, c_rate=c_rate, cathode_thickness_m=cathode_thickness_m,
                     electrode_area_m2=electrode_area_m2, cell_format="half cell",
                     extra={"Positive particle effective radius [m]": cathode.effective_particle_radius_m})
        sim = self._sims.get(key)
        try:
            if sim is None:
                xu = pybamm.ParameterValues("Xu2019")
                pv = load_parameter_values(chem.name)
                b_s = float(pv.get("Separator Bruggeman coefficient (electrolyte)", 1.5))
                pv.update({
                    "Separator tortuosity factor (electrolyte)": chem.separator_porosity ** (1 - b_s),
                    "Positive electrode tortuosity factor (electrode)": 1.0,
                    "Positive electrode thickness [m]": cathode_thickness_m,
                    "Positive particle radius [m]": cathode.effective_particle_radius_m,
                    "Electrode height [m]": 0.01, "Electrode width [m]": electrode_area_m2 / 0.01,
                    "Initial concentration in positive electrode [mol.m-3]": chem.y_init * chem.c_p_max_mol_m3,
                    "Upper voltage cut-off [V]": upper_voltage_cutoff_V,
                    "Nominal cell capacity [A.h]": nominal,
                    "Exchange-current density for lithium metal electrode [A.m-2]":
                        xu["Exchange-current density for lithium metal electrode [A.m-2]"],
                    "Lithium metal partial molar volume [m3.mol-1]": xu["Lithium metal partial molar volume [m3.mol-1]"],
                    "Current function [A]": "[input]",
                    **{k: "[input]" for k in cathode.inputs()},
                }, check_already_exists=False)
                if self.lower_voltage_cutoff_V is not None:
                    pv.update({"Lower voltage cut-off [V]": self.lower_voltage_cutoff_V})
                model = pybamm.lithium_ion.DFN(options={"working electrode": "positive",
                                                        "transport efficiency": "tortuosity factor",
                                                        "calculate discharge energy": "true"})
                solver = pybamm.IDAKLUSolver(rtol=self.solver_options["rtol"], atol=self.solver_options["atol"])
                sim = pybamm.Simulation(model, parameter_values=pv, solver=solver)
                self._sims[key] = sim
                self.n_builds += 1
                while len(self._sims) > self.cache_size:
                    self._sims.popitem(last=False)
            current = c_rate * nominal
            sol = sim.solve([0.0, self.max_duration_factor * 3600.0 / c_rate],
                            inputs={**cathode.inputs(), "Current function [A]": current})
            self.n_solves += 1
        except Exception as exc:  # noqa: BLE001 - failures are values
            return CellResult.failed(f"half-cell solve failed: {type(exc).__name__}: {str(exc)[:200]}", **known)
        t = np.asarray(sol["Time [s]"].entries, dtype=float)
        Q = float(sol["Discharge capacity [A.h]"].entries[-1])
        E = float(sol["Discharge energy [W.h]"].entries[-1])
        duration = float(t[-1] - t[0])
        if duration < 1.0 or Q <= 0 or E <= 0 or not (math.isfinite(Q) and math.isfinite(E)):
            return CellResult.failed(f"cut-off voltage reached at t = 0 ({sol.termination})",
                                     termination=str(sol.termination), **known)
        return CellResult(status="ok", reason=None, termination=str(sol.termination), current_A=Q * 3600 / duration,
                          capacity_Ah=Q, energy_Wh=E, mean_voltage_V=E / Q, duration_s=duration,
                          mean_power_W=E * 3600 / duration, cathode_capacity_mAh_g_am=Q / am_mass_kg,
                          **known)
