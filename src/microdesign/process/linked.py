"""Linked electrode parameters: the manufacturer's vocabulary <-> the model's.

Equations (docs/process_model.md, "Linked parameters"), with mass loading ML [g.cm-2], press density PD [g.cm-3],
crystallographic (true solid) density CD [g.cm-3] and active fraction f of the pressed solid:

* porosity              ε = 1 − PD/CD
* thickness [m]         h = ML/(PD · 100)
* AM volume fraction    X_AM = f · PD/CD

and the inverse map PD = CD(1 − ε), ML = 100·h·PD, f = X_AM/(1 − ε). Mass loading is stored in
mg.cm-2 in names and keys (``mass_loading_mg_cm2``) and converted here.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from microdesign.errors import ArrayLike, ConfigError, check_fraction, check_positive
from microdesign.materials import NMC811_DENSITY_KG_M3, g_cm3

_CTX = "linked parameters"


def press_density_g_cm3(porosity: ArrayLike, crystallographic_density_g_cm3: ArrayLike) -> ArrayLike:
    """PD = CD·(1 − ε) [g.cm-3].

    Raises:
        ConfigError: porosity outside [0, 1) or a non-positive density.
    """
    check_fraction("porosity", porosity, _CTX, open_high=True)
    check_positive("crystallographic_density_g_cm3", crystallographic_density_g_cm3, _CTX)
    return crystallographic_density_g_cm3 * (1.0 - np.asarray(porosity, dtype=float))


def measured_press_density_g_cm3(porosity: float, am_volume_fraction: float, cbd_volume_fraction: float,
                                 am_density_g_cm3: float, cbd_density_g_cm3: float) -> float:
    """Press density of a measured coating: PD = X_AM ρ_AM + X_CBD ρ_CBD [g.cm-3], as CD·(1 − ε) with the
    solid density CD = (X_AM ρ_AM + X_CBD ρ_CBD)/(1 − ε) (the cell model's and the campaign's thickness
    from mass loading, :func:`thickness_m`).

    Args:
        porosity: ε [1], in [0, 1).
        am_volume_fraction, cbd_volume_fraction: X_AM, X_CBD [1] (e.g. voxel-counted means).
        am_density_g_cm3, cbd_density_g_cm3: ρ_AM, ρ_CBD [g.cm-3] (defaults in :mod:`microdesign.materials`).

    Raises:
        ConfigError: porosity outside [0, 1) or a non-positive solid density.
    """
    check_fraction("porosity", porosity, _CTX, open_high=True)
    solid = 1.0 - porosity
    cd = (am_volume_fraction * am_density_g_cm3 + cbd_volume_fraction * cbd_density_g_cm3) / solid
    return press_density_g_cm3(porosity, cd)


def thickness_m(mass_loading_mg_cm2: ArrayLike, press_density_g_cm3: ArrayLike) -> ArrayLike:
    """Coating thickness per side h = ML/(PD·100) [m] with ML in mg.cm-2 converted to g.cm-2.

    Raises:
        ConfigError: non-positive mass loading or press density.
    """
    check_positive("mass_loading_mg_cm2", mass_loading_mg_cm2, _CTX)
    check_positive("press_density_g_cm3", press_density_g_cm3, _CTX)
    return (np.asarray(mass_loading_mg_cm2, dtype=float) * 1e-3) / (np.asarray(press_density_g_cm3, dtype=float) * 100.0)


@dataclass(frozen=True)
class LinkedParameters:
    """The four inputs of the linked-parameter map; derived quantities are properties, so editing an
    input (``with_inputs``) updates every derived quantity.

    Attributes:
        mass_loading_mg_cm2: dry coating mass per area and side [mg.cm-2].
        press_density_g_cm3: coating density after calendering PD [g.cm-3].
        crystallographic_density_g_cm3: true density of the solid CD [g.cm-3].
        active_fraction: f, volume share of active material in the pressed solid [1].

    Raises:
        ConfigError: non-positive densities or loading, f outside [0, 1], or PD > CD.
    """

    mass_loading_mg_cm2: ArrayLike
    press_density_g_cm3: ArrayLike
    crystallographic_density_g_cm3: ArrayLike
    active_fraction: ArrayLike = 1.0

    def __post_init__(self) -> None:
        check_positive("mass_loading_mg_cm2", self.mass_loading_mg_cm2, _CTX)
        check_positive("press_density_g_cm3", self.press_density_g_cm3, _CTX)
        check_positive("crystallographic_density_g_cm3", self.crystallographic_density_g_cm3, _CTX)
        check_fraction("active_fraction", self.active_fraction, _CTX)
        bad = np.asarray(self.press_density_g_cm3, dtype=float) > np.asarray(self.crystallographic_density_g_cm3, dtype=float)
        if bad.any():
            pd = np.broadcast_to(np.asarray(self.press_density_g_cm3, dtype=float), bad.shape)[bad]
            raise ConfigError("press_density_g_cm3", float(np.ravel(pd)[0]),
                              f"<= crystallographic_density_g_cm3 ({self.crystallographic_density_g_cm3})", _CTX)

    @property
    def porosity(self) -> ArrayLike:
        """ε = 1 − PD/CD."""
        return 1.0 - self.press_density_g_cm3 / self.crystallographic_density_g_cm3

    @property
    def thickness_m(self) -> ArrayLike:
        """h = ML/(PD·100) [m]."""
        return thickness_m(self.mass_loading_mg_cm2, self.press_density_g_cm3)

    @property
    def am_volume_fraction(self) -> ArrayLike:
        """X_AM = f·PD/CD."""
        return self.active_fraction * self.press_density_g_cm3 / self.crystallographic_density_g_cm3

    def derived(self) -> dict[str, Any]:
        return {"porosity": self.porosity, "thickness_m": self.thickness_m, "am_volume_fraction": self.am_volume_fraction}

    def with_inputs(self, **changes: ArrayLike) -> LinkedParameters:
        """A copy with some inputs changed (derived quantities follow)."""
        return replace(self, **changes)

    @classmethod
    def from_structure(cls, thickness_m: ArrayLike, porosity: ArrayLike, am_volume_fraction: ArrayLike,
                       crystallographic_density_g_cm3: ArrayLike) -> LinkedParameters:
        """Inverse map: PD = CD(1 − ε), ML = 100·h·PD (g.cm-2, stored as mg.cm-2), f = X_AM/(1 − ε).

        Raises:
            ConfigError: non-positive thickness, porosity outside [0, 1), X_AM > 1 − ε.
        """
        check_positive("thickness_m", thickness_m, _CTX)
        check_fraction("am_volume_fraction", am_volume_fraction, _CTX)
        pd = press_density_g_cm3(porosity, crystallographic_density_g_cm3)
        solid = 1.0 - np.asarray(porosity, dtype=float)
        bad = np.asarray(am_volume_fraction, dtype=float) > solid + 1e-12
        if bad.any():
            raise ConfigError("am_volume_fraction", am_volume_fraction, f"<= 1 - porosity ({solid})", _CTX)
        return cls(mass_loading_mg_cm2=100.0 * thickness_m * pd * 1e3, press_density_g_cm3=pd,
                   crystallographic_density_g_cm3=crystallographic_density_g_cm3,
                   active_fraction=am_volume_fraction / solid)

    @classmethod
    def from_pybamm(cls, parameter_values: Any, electrode: str = "Positive",
                    crystallographic_density_g_cm3: float = g_cm3(NMC811_DENSITY_KG_M3)) -> LinkedParameters:
        """Recast one electrode of a PyBaMM parameter set (e.g. ``pybamm.ParameterValues("Chen2020")``).

        Reads ``"<electrode> electrode thickness [m]"``, ``"<electrode> electrode porosity"`` and
        ``"<electrode> electrode active material volume fraction"``; the recast reproduces them exactly
        at the base point (Chen2020 positive: 75.6 µm, 0.335, 0.665; Chen et al., J. Electrochem. Soc.
        167 (2020) 080534). Default CD 4.75 g.cm-3 is NMC811's (:mod:`microdesign.materials`).

        Raises:
            ConfigError: ``electrode`` is not ``"Positive"`` or ``"Negative"``.
        """
        if electrode not in ("Positive", "Negative"):
            raise ConfigError("electrode", electrode, "'Positive' or 'Negative'", _CTX)
        return cls.from_structure(
            thickness_m=float(parameter_values[f"{electrode} electrode thickness [m]"]),
            porosity=float(parameter_values[f"{electrode} electrode porosity"]),
            am_volume_fraction=float(parameter_values[f"{electrode} electrode active material volume fraction"]),
            crystallographic_density_g_cm3=crystallographic_density_g_cm3,
        )
