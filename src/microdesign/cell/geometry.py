"""Cell geometry: electrode area from the winding (or stacking) volume, and the cell mass.

Jelly roll (cylindrical formats). One winding repeat unit is the stack

    cathode coating | Al foil | cathode coating | separator | anode coating | Cu foil | anode coating | separator

of thickness ``t = 2 L_p + L_Al + 2 L_n + L_Cu + 2 L_sep``. Winding a strip of length ``l`` fills the
annulus between the core radius ``r_c`` and the outer radius ``r_o`` (can inner radius less a
clearance), so (Archimedean spiral, area conservation)

    l = pi (r_o^2 - r_c^2) / t,

and the cathode/anode overlap area, both coated sides counted, is ``A = 2 l h`` with ``h`` the
electrode height. This is the area the 1D DFN is scaled by: capacity and energy are proportional to
``A``. Source: the standard volume-filling estimate of a wound cell, e.g. Quinn et al., "Energy
density of cylindrical Li-ion cells: a comparison of commercial 18650 to the 21700 cells",
J. Electrochem. Soc. 165 (2018) A3284.

Pouch: ``n = T_stack / t`` repeat units (kept continuous so that the objective is smooth in the
thickness; a real stack rounds down), ``A = 2 n L W``.

Cell mass = coatings + foils + separators + electrolyte (filling the pores of both coatings and
the separators, times ``1 + electrolyte excess``) + housing + hardware.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from microdesign import materials
from microdesign.cell.formats import CellFormat
from microdesign.errors import require
from microdesign.process.formulation import default_cbd_density_g_cm3


@dataclass(frozen=True)
class Stack:
    """Thicknesses [m] of one repeat unit's layers (one side of each coating).

    Attributes:
        cathode_thickness_m: one cathode coating L_p.
        anode_thickness_m: one anode coating L_n.
        positive_current_collector_thickness_m: Al foil.
        negative_current_collector_thickness_m: Cu foil.
        separator_thickness_m: one separator.
    """

    cathode_thickness_m: float
    anode_thickness_m: float
    positive_current_collector_thickness_m: float
    negative_current_collector_thickness_m: float
    separator_thickness_m: float

    def __post_init__(self) -> None:
        for key, value in self.__dict__.items():
            require(math.isfinite(value) and value > 0, key, value, "a finite thickness > 0 [m]", "stack")

    @property
    def repeat_unit_thickness_m(self) -> float:
        """t = 2 L_p + L_Al + 2 L_n + L_Cu + 2 L_sep [m]."""
        return (2 * self.cathode_thickness_m + self.positive_current_collector_thickness_m
                + 2 * self.anode_thickness_m + self.negative_current_collector_thickness_m
                + 2 * self.separator_thickness_m)


@dataclass(frozen=True)
class Materials:
    """Densities [kg.m-3] and fractions that the cell mass needs (defaults from :mod:`microdesign.materials`,
    sources there).

    Attributes:
        cathode_am_density_kg_m3: cathode active material (NMC811 crystallographic density, 4750).
        cathode_cbd_density_kg_m3: carbon-binder domain solid density (C65 + PVDF 1:1 by weight, 1838;
            `Formulation.cbd_density_g_cm3`).
        anode_am_density_kg_m3: graphite (2260).
        anode_binder_density_kg_m3: anode binder/additive (PVDF, 1780; the volume 1 - porosity - AM fraction).
        positive_current_collector_density_kg_m3: aluminium (2700).
        negative_current_collector_density_kg_m3: copper (8960).
        separator_density_kg_m3: separator polymer (polyethylene, 950; solid, before porosity).
        electrolyte_density_kg_m3: liquid electrolyte (1200).
        electrolyte_excess: extra electrolyte over the pore volume, as a fraction of it.
    """

    cathode_am_density_kg_m3: float = materials.NMC811_DENSITY_KG_M3
    cathode_cbd_density_kg_m3: float = 1000.0 * default_cbd_density_g_cm3()
    anode_am_density_kg_m3: float = materials.GRAPHITE_DENSITY_KG_M3
    anode_binder_density_kg_m3: float = materials.PVDF_DENSITY_KG_M3
    positive_current_collector_density_kg_m3: float = materials.ALUMINIUM_DENSITY_KG_M3
    negative_current_collector_density_kg_m3: float = materials.COPPER_DENSITY_KG_M3
    separator_density_kg_m3: float = materials.POLYETHYLENE_DENSITY_KG_M3
    electrolyte_density_kg_m3: float = materials.ELECTROLYTE_DENSITY_KG_M3
    electrolyte_excess: float = 0.0

    def __post_init__(self) -> None:
        for key, value in self.__dict__.items():
            lower_ok = value >= 0 if key == "electrolyte_excess" else value > 0
            require(math.isfinite(value) and lower_ok, key, value, "a finite positive number", "materials")


@dataclass(frozen=True)
class VolumeFractions:
    """Porosity and active-material volume fraction of the coatings, and separator porosity."""

    cathode_porosity: float
    cathode_am_volume_fraction: float
    anode_porosity: float
    anode_am_volume_fraction: float
    separator_porosity: float


@dataclass(frozen=True)
class CellGeometry:
    """Where the electrodes went: status, area, length, volume, mass breakdown.

    Attributes:
        status: ``"ok"`` or ``"failed"`` (the stack does not fit the format).
        reason: why it failed, else None.
        cell_format: format name.
        repeat_unit_thickness_m: t [m].
        jelly_roll_length_m: strip length l [m] (pouch: n x electrode length).
        electrode_height_m: h [m] (pouch: electrode width).
        electrode_area_m2: A = 2 l h, both coated sides [m2].
        n_turns: windings (cylindrical) or repeat units (pouch).
        volume_L: outer cell volume [L].
        mass_breakdown_kg: component -> mass [kg] (empty when failed).
    """

    status: str
    reason: str | None
    cell_format: str
    repeat_unit_thickness_m: float
    jelly_roll_length_m: float = 0.0
    electrode_height_m: float = 0.0
    electrode_area_m2: float = 0.0
    n_turns: float = 0.0
    volume_L: float = 0.0
    mass_breakdown_kg: dict[str, float] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @property
    def mass_kg(self) -> float:
        """Cell mass [kg] (sum of the breakdown)."""
        return float(sum(self.mass_breakdown_kg.values()))


def electrode_area(fmt: CellFormat, stack: Stack) -> CellGeometry:
    """Jelly-roll length and electrode area of ``stack`` in ``fmt`` (no mass yet).

    Returns a failed :class:`CellGeometry` (status ``"failed"``) when not even one repeat unit fits:
    t > r_o - r_c (cylindrical) or t > stack thickness (pouch).
    """
    t = stack.repeat_unit_thickness_m
    if fmt.kind == "cylindrical":
        room = fmt.winding_outer_radius_m - fmt.core_diameter_m / 2
        if t > room:
            return CellGeometry("failed", f"infeasible geometry: repeat unit {t * 1e6:.1f} um thicker than the "
                                f"{room * 1e6:.1f} um radial room of the {fmt.name} can", fmt.name, t,
                                volume_L=fmt.volume_L)
        length = fmt.winding_area_m2 / t
        r_c, r_o = fmt.core_diameter_m / 2, fmt.winding_outer_radius_m
        return CellGeometry("ok", None, fmt.name, t, jelly_roll_length_m=length,
                            electrode_height_m=fmt.electrode_height_m,
                            electrode_area_m2=2 * length * fmt.electrode_height_m,
                            n_turns=(r_o - r_c) / t, volume_L=fmt.volume_L)
    room = fmt.stack_thickness_m
    if t > room:
        return CellGeometry("failed", f"infeasible geometry: repeat unit {t * 1e6:.1f} um thicker than the "
                            f"{room * 1e6:.1f} um stack room of the {fmt.name} pouch", fmt.name, t,
                            volume_L=fmt.volume_L)
    n = room / t
    return CellGeometry("ok", None, fmt.name, t, jelly_roll_length_m=n * fmt.electrode_height_m,
                        electrode_height_m=fmt.electrode_width_m,
                        electrode_area_m2=2 * n * fmt.electrode_height_m * fmt.electrode_width_m,
                        n_turns=n, volume_L=fmt.volume_L)


def cell_geometry(fmt: CellFormat, stack: Stack, fractions: VolumeFractions, materials: Materials) -> CellGeometry:
    """Electrode area (:func:`electrode_area`) plus the cell mass breakdown [kg].

    Components (A = electrode area counting both sides, so a foil or separator of the strip has
    area A/2 and there are two separators per repeat unit):

    * cathode coating  (X_AM rho_AM + X_CBD rho_CBD) L_p A, X_CBD = 1 - eps_p - X_AM
    * anode coating    (X_AM,n rho_graphite + (1 - eps_n - X_AM,n) rho_binder) L_n A
    * Al / Cu foil     rho L_cc A/2
    * separators       (1 - eps_s) rho_sep L_sep A
    * electrolyte      rho_e (1 + excess) (eps_p L_p + eps_n L_n + eps_s L_sep) A
    * housing          :attr:`CellFormat.housing_mass_kg` ; hardware :attr:`CellFormat.hardware_mass_kg`
    """
    geo = electrode_area(fmt, stack)
    if not geo.ok:
        return geo
    A = geo.electrode_area_m2
    f, m, s = fractions, materials, stack
    x_cbd_p = max(0.0, 1.0 - f.cathode_porosity - f.cathode_am_volume_fraction)
    x_bind_n = max(0.0, 1.0 - f.anode_porosity - f.anode_am_volume_fraction)
    pore_volume = (f.cathode_porosity * s.cathode_thickness_m + f.anode_porosity * s.anode_thickness_m
                   + f.separator_porosity * s.separator_thickness_m) * A
    breakdown = {
        "cathode coating": (f.cathode_am_volume_fraction * m.cathode_am_density_kg_m3
                            + x_cbd_p * m.cathode_cbd_density_kg_m3) * s.cathode_thickness_m * A,
        "anode coating": (f.anode_am_volume_fraction * m.anode_am_density_kg_m3
                          + x_bind_n * m.anode_binder_density_kg_m3) * s.anode_thickness_m * A,
        "positive current collector": m.positive_current_collector_density_kg_m3
        * s.positive_current_collector_thickness_m * A / 2,
        "negative current collector": m.negative_current_collector_density_kg_m3
        * s.negative_current_collector_thickness_m * A / 2,
        "separators": (1 - f.separator_porosity) * m.separator_density_kg_m3 * s.separator_thickness_m * A,
        "electrolyte": m.electrolyte_density_kg_m3 * (1 + m.electrolyte_excess) * pore_volume,
        "housing": fmt.housing_mass_kg,
        "hardware": fmt.hardware_mass_kg,
    }
    return CellGeometry(geo.status, None, geo.cell_format, geo.repeat_unit_thickness_m,
                        jelly_roll_length_m=geo.jelly_roll_length_m, electrode_height_m=geo.electrode_height_m,
                        electrode_area_m2=A, n_turns=geo.n_turns, volume_L=geo.volume_L,
                        mass_breakdown_kg=breakdown)
