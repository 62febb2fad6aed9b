"""From characterisation metrics and structure to PyBaMM parameter values.

The positive electrode of a base parameter set (default ``Chen2020``: LG M50 21700, NMC811 /
graphite-SiOx; Chen et al., J. Electrochem. Soc. 167 (2020) 080534) is replaced by what
characterisation measured; the separator and the negative electrode keep the base set's
properties, the anode thickness being sized by an N/P ratio.

Mapping (DFN with ``{"transport efficiency": "tortuosity factor"}``; PyBaMM's
``TortuosityFactor`` submodel computes the electrolyte transport efficiency ``eps / tau_e`` and the
electrode one ``(1 - eps) / tau_s``):

========================================================  ==========================================
PyBaMM parameter                                           value
========================================================  ==========================================
Positive electrode porosity                                measured porosity eps
Positive electrode active material volume fraction         measured AM volume fraction X_AM
Positive electrode tortuosity factor (electrolyte)         measured pore tortuosity factor tau
Positive electrode tortuosity factor (electrode)           1, so the electrode transport efficiency
                                                           is (1 - eps)
Positive electrode conductivity [S.m-1]                    sigma_eff / (1 - eps), so that PyBaMM's
                                                           effective conductivity sigma (1 - eps)
                                                           equals the measured sigma_eff
Positive particle radius [m]                               R_eff = 3 X_AM / a, a = measured AM-pore
                                                           specific surface area [m-1]
Positive electrode thickness [m]                           L_p (from mass loading and press density)
========================================================  ==========================================

Effective radius. PyBaMM always computes the surface area per volume as ``a = 3 X_AM / R``
(spherical particles), and a "surface area to volume ratio" parameter has no effect. We therefore
set ``R_eff = 3 X_AM / a_measured``: the reaction area is exactly the measured one, but the same
``R_eff`` is also the solid-state diffusion length. Where the measured AM-pore area is smaller than
that of free spheres (CBD covering the surface, particles touching) ``R_eff`` is larger than the
true particle radius and solid diffusion is penalised as if the particles were bigger; where the
measured surface is rougher than a sphere's, diffusion is favoured. Both effects are a model
limitation, not a measurement.

Electrode balance. The base set's stoichiometry windows at its own voltage limits (PyBaMM's
``ElectrodeSOHSolver``: x_0, y_0, y_100 at the base set's lithium inventory) define the usable
cathode capacity per area ``q_p = F c_p,max X_AM L_p (y_0 - y_100)`` and the N/P ratio
``N/P = F c_n,max X_AM,n L_n / q_p`` (full graphite capacity over usable cathode capacity; Chen2020
gives 1.13). The anode is sized as ``L_n = N/P q_p / (F c_n,max X_AM,n)``; the cell starts at the
base set's initial cathode stoichiometry ``y_init`` and the lithium it released sits in the anode:
``x_init = x_0 + (y_0 - y_init) / (N/P (y_0 - y_100))``. At the base point this reproduces the base
set's anode thickness and initial concentrations exactly.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from microdesign.characterise import metrics as M
from microdesign.errors import ConfigError, require
# Thickness from mass loading: the process model's linked parameters (docs/process_model.md), re-exported
# for the cell's users.
from microdesign.process.linked import measured_press_density_g_cm3, press_density_g_cm3, thickness_m

log = logging.getLogger(__name__)

FARADAY = 96485.33212  # C.mol-1, CODATA 2018

# PyBaMM keys used here (PyBaMM 25/26 names).
POS_POROSITY = "Positive electrode porosity"
POS_AM = "Positive electrode active material volume fraction"
POS_TAU_E = "Positive electrode tortuosity factor (electrolyte)"
POS_TAU_S = "Positive electrode tortuosity factor (electrode)"
POS_SIGMA = "Positive electrode conductivity [S.m-1]"
POS_RADIUS = "Positive particle radius [m]"
POS_THICKNESS = "Positive electrode thickness [m]"
NEG_THICKNESS = "Negative electrode thickness [m]"
INPUT_KEYS = (POS_POROSITY, POS_AM, POS_TAU_E, POS_SIGMA)
#: accepted |porosity + X_AM + X_CBD - 1| (metrics perturbed by their CI for noise propagation).
SUM_TOLERANCE = 0.05


# ---------------------------------------------------------------------------------------------------
# The cathode as measured
# ---------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class CathodeStructure:
    """The measured cathode quantities the DFN needs.

    Attributes:
        porosity: pore volume fraction eps [1].
        am_volume_fraction: active material volume fraction X_AM [1].
        cbd_volume_fraction: carbon-binder domain volume fraction [1].
        tortuosity_factor: through-plane pore tortuosity factor tau = eps D_0 / D_eff [1].
        conductivity_S_m: effective electronic conductivity of the solid sigma_eff [S.m-1].
        specific_surface_area_m: AM-pore specific surface area a [m-1] (per electrode volume).
    """

    porosity: float
    am_volume_fraction: float
    cbd_volume_fraction: float
    tortuosity_factor: float
    conductivity_S_m: float
    specific_surface_area_m: float

    def __post_init__(self) -> None:
        ctx = "cathode metrics"
        for key, value in self.__dict__.items():
            require(isinstance(value, float | int) and math.isfinite(value), key, value, "a finite number", ctx)
        require(0 < self.porosity < 1, "porosity", self.porosity, "in (0, 1)", ctx)
        require(0 < self.am_volume_fraction < 1, "am_volume_fraction", self.am_volume_fraction, "in (0, 1)", ctx)
        require(0 <= self.cbd_volume_fraction < 1, "cbd_volume_fraction", self.cbd_volume_fraction, "in [0, 1)", ctx)
        # Voxel-counted fractions sum to 1; the objective's noise estimate perturbs one metric at a
        # time by its CI, so a few per cent off is accepted (PyBaMM does not need the sum).
        total = self.porosity + self.am_volume_fraction + self.cbd_volume_fraction
        require(abs(total - 1) <= SUM_TOLERANCE, "porosity + AM + CBD volume fractions", total,
                f"1 (within {SUM_TOLERANCE})", ctx)
        require(self.tortuosity_factor > 0, "tortuosity_factor", self.tortuosity_factor, "> 0", ctx)
        require(self.conductivity_S_m > 0, "conductivity_S_m", self.conductivity_S_m, "> 0", ctx)
        require(self.specific_surface_area_m > 0, "specific_surface_area_m", self.specific_surface_area_m, "> 0", ctx)
        r = self.effective_particle_radius_m
        require(1e-8 <= r <= 1e-4, "effective particle radius 3 X_AM / a [m]", r,
                "in [1e-8, 1e-4] m (check the specific surface area units, m-1)", ctx)

    @classmethod
    def from_metrics(cls, metrics: M.MicrostructureMetrics) -> CathodeStructure:
        """Means of :class:`~microdesign.characterise.metrics.MicrostructureMetrics`.

        ``CBD_VOLUME_FRACTION`` defaults to ``1 - eps - X_AM`` when absent.

        Raises:
            ConfigError: a required metric is missing or out of range.
        """
        means = metrics.means()
        needed = (M.POROSITY, M.AM_VOLUME_FRACTION, M.TORTUOSITY_THROUGH_PLANE, M.CONDUCTIVITY_SOLID, M.SSA_AM_PORE)
        missing = [k for k in needed if k not in means]
        if missing:
            raise ConfigError("metrics", sorted(means), f"the keys {missing} as well")
        eps, am = float(means[M.POROSITY]), float(means[M.AM_VOLUME_FRACTION])
        cbd = float(means.get(M.CBD_VOLUME_FRACTION, max(0.0, 1.0 - eps - am)))
        return cls(porosity=eps, am_volume_fraction=am, cbd_volume_fraction=cbd,
                   tortuosity_factor=float(means[M.TORTUOSITY_THROUGH_PLANE]),
                   conductivity_S_m=float(means[M.CONDUCTIVITY_SOLID]),
                   specific_surface_area_m=float(means[M.SSA_AM_PORE]))

    @property
    def effective_particle_radius_m(self) -> float:
        """R_eff = 3 X_AM / a [m] (PyBaMM's a = 3 eps_s / R inverted)."""
        return 3.0 * self.am_volume_fraction / self.specific_surface_area_m

    @property
    def transport_efficiency(self) -> float:
        """Electrolyte transport efficiency eps / tau [1]."""
        return self.porosity / self.tortuosity_factor

    def press_density_g_cm3(self, am_density_g_cm3: float, cbd_density_g_cm3: float) -> float:
        """Coating density PD = X_AM rho_AM + X_CBD rho_CBD [g.cm-3] (= CD (1 - eps) with CD the solid density;
        :func:`microdesign.process.linked.measured_press_density_g_cm3`)."""
        return measured_press_density_g_cm3(self.porosity, self.am_volume_fraction, self.cbd_volume_fraction,
                                            am_density_g_cm3, cbd_density_g_cm3)

    def inputs(self) -> dict[str, float]:
        """PyBaMM ``[input]`` values for the positive electrode (see the module table)."""
        return {
            POS_POROSITY: self.porosity,
            POS_AM: self.am_volume_fraction,
            POS_TAU_E: self.tortuosity_factor,
            POS_SIGMA: self.conductivity_S_m / (1.0 - self.porosity),
        }

    @classmethod
    def from_parameter_values(cls, pv: Any) -> CathodeStructure:
        """The structure a PyBaMM parameter set implies for its positive electrode (base-point studies).

        Bruggeman transport (``tor = eps^b``) becomes ``tau = eps^(1 - b)``; the electrode
        conductivity with Bruggeman exponent ``b_s`` becomes ``sigma (1 - eps)^b_s``; the surface area is
        ``3 X_AM / R``; the CBD fraction is what porosity and AM leave
        (:meth:`microdesign.cell.chemistry.BruggemanCathode.base_structure`).

        Raises:
            ConfigError: a missing parameter or a conductivity given as a function.
        """
        from microdesign.cell.chemistry import BruggemanCathode

        return BruggemanCathode.from_parameter_values(pv).base_structure()

    def to_metrics(self) -> M.MicrostructureMetrics:
        """Exact hand-made metrics with these values (``MicrostructureMetrics.from_means``)."""
        return M.MicrostructureMetrics.from_means({
            M.POROSITY: self.porosity, M.AM_VOLUME_FRACTION: self.am_volume_fraction,
            M.CBD_VOLUME_FRACTION: self.cbd_volume_fraction, M.TORTUOSITY_THROUGH_PLANE: self.tortuosity_factor,
            M.CONDUCTIVITY_SOLID: self.conductivity_S_m, M.SSA_AM_PORE: self.specific_surface_area_m,
            M.SSA_AM_CBD: 0.0})


# ---------------------------------------------------------------------------------------------------
# Base chemistry and electrode balance
# ---------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class BaseChemistry:
    """What the base parameter set contributes besides the cathode microstructure.

    Attributes:
        name: PyBaMM parameter set name.
        x_0: anode stoichiometry at the lower cut-off (base set's SOH).
        y_0: cathode stoichiometry at the lower cut-off.
        y_100: cathode stoichiometry at the upper cut-off.
        y_init: cathode stoichiometry at the start of a discharge (the base set's initial concentration).
        n_p_ratio: the base set's own N/P ratio (full anode capacity / usable cathode capacity).
        c_p_max_mol_m3, c_n_max_mol_m3: maximum concentrations.
        anode_porosity, anode_am_volume_fraction, separator_porosity: base set values.
        positive_current_collector_thickness_m, negative_current_collector_thickness_m,
        separator_thickness_m, anode_thickness_m, cathode_thickness_m, electrode_area_m2: base set values.
    """

    name: str
    x_0: float
    y_0: float
    y_100: float
    y_init: float
    n_p_ratio: float
    c_p_max_mol_m3: float
    c_n_max_mol_m3: float
    anode_porosity: float
    anode_am_volume_fraction: float
    separator_porosity: float
    positive_current_collector_thickness_m: float
    negative_current_collector_thickness_m: float
    separator_thickness_m: float
    anode_thickness_m: float
    cathode_thickness_m: float
    electrode_area_m2: float

    def usable_cathode_capacity_Ah_m2(self, am_volume_fraction: float, cathode_thickness_m: float) -> float:
        """q_p = F c_p,max X_AM L_p (y_0 - y_100) / 3600 [A.h.m-2]."""
        return FARADAY * self.c_p_max_mol_m3 * am_volume_fraction * cathode_thickness_m * (self.y_0 - self.y_100) / 3600

    def initial_capacity_Ah_m2(self, am_volume_fraction: float, cathode_thickness_m: float) -> float:
        """Capacity between the initial state and y_0, F c_p,max X_AM L_p (y_0 - y_init) / 3600 [A.h.m-2]."""
        return FARADAY * self.c_p_max_mol_m3 * am_volume_fraction * cathode_thickness_m * (self.y_0 - self.y_init) / 3600

    def anode_thickness_m_for(self, am_volume_fraction: float, cathode_thickness_m: float, n_p_ratio: float) -> float:
        """L_n = N/P q_p / (F c_n,max X_AM,n) [m]."""
        q_p = self.usable_cathode_capacity_Ah_m2(am_volume_fraction, cathode_thickness_m) * 3600
        return n_p_ratio * q_p / (FARADAY * self.c_n_max_mol_m3 * self.anode_am_volume_fraction)

    def initial_anode_stoichiometry(self, n_p_ratio: float) -> float:
        """x_init = x_0 + (y_0 - y_init) / (N/P (y_0 - y_100)) [1]."""
        return self.x_0 + (self.y_0 - self.y_init) / (n_p_ratio * (self.y_0 - self.y_100))

    def min_n_p_ratio(self) -> float:
        """Smallest N/P ratio whose anode can hold the lithium at the initial state (x_init <= 1)."""
        return (self.y_0 - self.y_init) / ((1.0 - self.x_0) * (self.y_0 - self.y_100))


@lru_cache(maxsize=4)
def base_chemistry(name: str = "Chen2020") -> BaseChemistry:
    """Read the base parameter set and compute its stoichiometry windows with PyBaMM's ElectrodeSOHSolver.

    Args:
        name: a PyBaMM parameter set with both electrodes (``"Chen2020"``, ``"Marquis2019"``, ...) or
            the path of a BPX file (``*.json``); see :mod:`microdesign.cell.chemistry`.

    Raises:
        ConfigError: unknown set, invalid BPX file, or a set that lacks a parameter the cell needs
            (the message names it).
    """
    import pybamm

    from microdesign.cell.chemistry import check_full_cell, load_parameter_values

    pv = load_parameter_values(name)
    check_full_cell(pv, name)
    area = float(pv["Electrode height [m]"]) * float(pv["Electrode width [m]"])
    c_n, c_p = float(pv["Maximum concentration in negative electrode [mol.m-3]"]), float(
        pv["Maximum concentration in positive electrode [mol.m-3]"])
    eps_an, eps_ap = float(pv["Negative electrode active material volume fraction"]), float(pv[POS_AM])
    L_n, L_p = float(pv[NEG_THICKNESS]), float(pv[POS_THICKNESS])
    c_n0 = float(pv["Initial concentration in negative electrode [mol.m-3]"])
    c_p0 = float(pv["Initial concentration in positive electrode [mol.m-3]"])
    Q_n = FARADAY * c_n * eps_an * L_n * area / 3600
    Q_p = FARADAY * c_p * eps_ap * L_p * area / 3600
    Q_Li = FARADAY * (c_n0 * eps_an * L_n + c_p0 * eps_ap * L_p) * area / 3600
    esoh = pybamm.lithium_ion.ElectrodeSOHSolver(pv, pybamm.LithiumIonParameters())
    sol = esoh.solve({"Q_n": Q_n, "Q_p": Q_p, "Q_Li": Q_Li})
    x_0, y_0, y_100 = (float(sol[k]) for k in ("x_0", "y_0", "y_100"))
    chem = BaseChemistry(
        name=name, x_0=x_0, y_0=y_0, y_100=y_100, y_init=c_p0 / c_p,
        n_p_ratio=Q_n / (Q_p * (y_0 - y_100)), c_p_max_mol_m3=c_p, c_n_max_mol_m3=c_n,
        anode_porosity=float(pv["Negative electrode porosity"]), anode_am_volume_fraction=eps_an,
        separator_porosity=float(pv["Separator porosity"]),
        # absent (BPX, Prada2013) -> 0.0: the cell model then asks for a configured thickness
        positive_current_collector_thickness_m=float(pv.get("Positive current collector thickness [m]", 0.0)),
        negative_current_collector_thickness_m=float(pv.get("Negative current collector thickness [m]", 0.0)),
        separator_thickness_m=float(pv["Separator thickness [m]"]),
        anode_thickness_m=L_n, cathode_thickness_m=L_p, electrode_area_m2=area)
    log.debug("base chemistry %s: %s", name, chem)
    return chem


def parameter_values(chem: BaseChemistry, *, cathode_thickness_m: float, anode_thickness_m: float,
                     particle_radius_m: float, electrode_area_m2: float, electrode_height_m: float,
                     n_p_ratio: float, lower_voltage_cutoff_V: float | None = None,
                     separator_thickness_m: float | None = None,
                     positive_current_collector_thickness_m: float | None = None,
                     negative_current_collector_thickness_m: float | None = None,
                     cathode: CathodeStructure | None = None, drive: str = "current") -> Any:
    """PyBaMM ``ParameterValues`` of the whole cell.

    The positive-electrode structure (:data:`INPUT_KEYS`) and the drive (``"Current function [A]"``
    or ``"Power function [W]"``) are ``"[input]"`` unless ``cathode`` is given, in which case the
    structure is fixed to its values (round-trip checks, plain-PyBaMM use).

    The base set's separator and negative electrode transport, given by Bruggeman exponents b, are
    carried over exactly as tortuosity factors tau_e = eps^(1 - b), tau_s = (1 - eps)^(1 - b_s).

    Raises:
        ConfigError: non-positive geometry or ``drive`` not "current"/"power".
    """
    from microdesign.cell.chemistry import load_parameter_values

    for key, value in dict(cathode_thickness_m=cathode_thickness_m, anode_thickness_m=anode_thickness_m,
                           particle_radius_m=particle_radius_m, electrode_area_m2=electrode_area_m2,
                           electrode_height_m=electrode_height_m, n_p_ratio=n_p_ratio).items():
        require(math.isfinite(value) and value > 0, key, value, "a finite number > 0")
    require(drive in ("current", "power"), "drive", drive, "'current' or 'power'")
    pv = load_parameter_values(chem.name)
    eps_n = chem.anode_porosity
    eps_s = chem.separator_porosity
    b_n = float(pv.get("Negative electrode Bruggeman coefficient (electrolyte)", 1.5))
    b_ns = float(pv.get("Negative electrode Bruggeman coefficient (electrode)", 1.5))
    b_s = float(pv.get("Separator Bruggeman coefficient (electrolyte)", 1.5))
    x_init = chem.initial_anode_stoichiometry(n_p_ratio)
    require(0 < x_init <= 1, "n_p_ratio", n_p_ratio, f">= {chem.min_n_p_ratio():.4f} (the anode must hold the lithium)")
    updates: dict[str, Any] = {
        "Negative electrode tortuosity factor (electrolyte)": eps_n ** (1 - b_n),
        "Negative electrode tortuosity factor (electrode)": (1 - eps_n) ** (1 - b_ns),
        "Separator tortuosity factor (electrolyte)": eps_s ** (1 - b_s),
        POS_TAU_S: 1.0,
        POS_THICKNESS: cathode_thickness_m,
        NEG_THICKNESS: anode_thickness_m,
        POS_RADIUS: particle_radius_m,
        "Electrode height [m]": electrode_height_m,
        "Electrode width [m]": electrode_area_m2 / electrode_height_m,
        "Initial concentration in negative electrode [mol.m-3]": x_init * chem.c_n_max_mol_m3,
        "Initial concentration in positive electrode [mol.m-3]": chem.y_init * chem.c_p_max_mol_m3,
    }
    if separator_thickness_m is not None:
        updates["Separator thickness [m]"] = separator_thickness_m
    if positive_current_collector_thickness_m is not None:
        updates["Positive current collector thickness [m]"] = positive_current_collector_thickness_m
    if negative_current_collector_thickness_m is not None:
        updates["Negative current collector thickness [m]"] = negative_current_collector_thickness_m
    if lower_voltage_cutoff_V is not None:
        updates["Lower voltage cut-off [V]"] = lower_voltage_cutoff_V
    if cathode is None:
        updates.update({k: "[input]" for k in INPUT_KEYS})
    else:
        updates.update(cathode.inputs())
    updates["Current function [A]" if drive == "current" else "Power function [W]"] = "[input]"
    pv.update(updates, check_already_exists=False)
    return pv
