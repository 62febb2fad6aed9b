"""Where the cell's chemistry comes from: a PyBaMM parameter set or a BPX file, and its cathode recast
in the manufacturer's vocabulary.

* :func:`load_parameter_values` - ``pybamm.ParameterValues`` of a base set given by name (any set of
  ``pybamm.parameter_sets`` with both electrodes, e.g. ``"Chen2020"``, ``"Marquis2019"``,
  ``"Ecker2015"``, ``"Mohtat2020"``) or by the path of a BPX file (``*.json``, read with
  ``pybamm.ParameterValues.create_from_bpx``, which uses the ``bpx`` package; BPX standard:
  https://bpxstandard.com). :func:`check_full_cell` names the first parameter a set lacks.
* :class:`BruggemanCathode` - the base set's cathode as a function of its porosity and active
  material (AM) volume fraction, with the set's own Bruggeman transport, conductivity and particle
  radius held; :meth:`BruggemanCathode.at` places it at a mass loading and press density through
  the linked parameters of :mod:`microdesign.process.linked` (porosity = 1 - PD/CD, thickness =
  ML/(PD 100), X_AM = f PD/CD; docs/process_model.md). At the set's own base point the recast gives
  back the set's thickness, porosity and AM fraction (to rounding) and exactly the set's cathode.

Bruggeman transport (PyBaMM's ``"transport efficiency": "Bruggeman"`` default, tortuosity
``eps^b``) becomes the tortuosity factor tau = eps^(1 - b) (electrolyte) and the effective
conductivity sigma (1 - eps)^b_s (solid), so the structure can be passed to the cell model exactly as
measured metrics would be (docs/cell_model.md, "Metrics -> PyBaMM").
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from microdesign.errors import ConfigError, require

#: What the full-cell model reads from a base set (beyond what the DFN itself needs).
REQUIRED_KEYS = (
    "Positive electrode thickness [m]",
    "Positive electrode porosity",
    "Positive electrode active material volume fraction",
    "Positive electrode conductivity [S.m-1]",
    "Positive particle radius [m]",
    "Maximum concentration in positive electrode [mol.m-3]",
    "Initial concentration in positive electrode [mol.m-3]",
    "Negative electrode thickness [m]",
    "Negative electrode porosity",
    "Negative electrode active material volume fraction",
    "Maximum concentration in negative electrode [mol.m-3]",
    "Initial concentration in negative electrode [mol.m-3]",
    "Separator porosity",
    "Separator thickness [m]",
    "Electrode height [m]",
    "Electrode width [m]",
    "Lower voltage cut-off [V]",
    "Upper voltage cut-off [V]",
)
#: Numbers the model uses directly (a function of concentration or temperature is refused for these).
NUMERIC_KEYS = tuple(k for k in REQUIRED_KEYS if not k.startswith("Initial concentration"))


def is_bpx(source: str | Path) -> bool:
    """Whether ``source`` names a BPX file (``*.json``) rather than a PyBaMM parameter set."""
    return str(source).lower().endswith(".json")


@lru_cache(maxsize=8)
def _load(source: str) -> Any:
    import pybamm

    if is_bpx(source):
        path = Path(source)
        if not path.is_file():
            raise ConfigError("base_parameter_set", source, "an existing BPX file (*.json)")
        try:
            return pybamm.ParameterValues.create_from_bpx(path)
        except ImportError as exc:  # pragma: no cover - bpx is a dependency
            raise ConfigError("base_parameter_set", source, "the 'bpx' package installed to read BPX files") from exc
        except Exception as exc:  # noqa: BLE001 - pydantic validation errors and friends
            raise ConfigError("base_parameter_set", source, f"a valid BPX file ({type(exc).__name__}: "
                              f"{str(exc).splitlines()[0][:200]})") from exc
    try:
        return pybamm.ParameterValues(source)
    except Exception as exc:  # pybamm raises several types for an unknown set
        raise ConfigError("base_parameter_set", source,
                          "a PyBaMM parameter set name (e.g. 'Chen2020') or a BPX file (*.json)") from exc


def load_parameter_values(source: str | Path) -> Any:
    """A fresh copy of the base set's ``pybamm.ParameterValues`` (name or BPX path; parsed once per process).

    Raises:
        ConfigError: unknown set name, missing or invalid BPX file.
    """
    return _load(str(source)).copy()


def check_full_cell(pv: Any, source: str | Path) -> None:
    """Refuse a set that lacks what the full cell needs, naming the first missing parameter.

    Raises:
        ConfigError: a key of :data:`REQUIRED_KEYS` is absent (a half-cell or composite-electrode
            set), or a key of :data:`NUMERIC_KEYS` is a function rather than a number.
    """
    for key in REQUIRED_KEYS:
        try:
            value = pv[key]
        except KeyError:
            raise ConfigError("base_parameter_set", str(source),
                              f"a set with both electrodes: it has no '{key}'") from None
        if key in NUMERIC_KEYS and callable(value):
            raise ConfigError("base_parameter_set", str(source), f"a number for '{key}' (the set gives a function)")


@dataclass(frozen=True)
class BruggemanCathode:
    """A base set's cathode with its transport given by Bruggeman exponents.

    Attributes:
        porosity: the set's porosity eps_0 [1].
        am_volume_fraction: the set's AM volume fraction X_AM,0 [1].
        thickness_m: the set's cathode thickness [m].
        bruggeman_electrolyte: b (electrolyte tortuosity eps^b; PyBaMM default 1.5).
        bruggeman_electrode: b_s (solid; 1.5 by default, 0 in sets read from BPX, whose
            conductivity is already the effective one).
        conductivity_S_m: the set's bulk solid conductivity sigma [S.m-1].
        particle_radius_m: the set's particle radius R [m].
    """

    porosity: float
    am_volume_fraction: float
    thickness_m: float
    bruggeman_electrolyte: float
    bruggeman_electrode: float
    conductivity_S_m: float
    particle_radius_m: float

    @classmethod
    def from_parameter_values(cls, pv: Any, source: str = "base set") -> BruggemanCathode:
        """Read the positive electrode of ``pv``.

        Raises:
            ConfigError: a missing parameter, or the conductivity given as a function.
        """
        try:
            sigma = pv["Positive electrode conductivity [S.m-1]"]
            values = {k: pv[k] for k in ("Positive electrode porosity", "Positive electrode active material volume fraction",
                                         "Positive electrode thickness [m]", "Positive particle radius [m]")}
        except KeyError as exc:
            raise ConfigError("base_parameter_set", source, f"a set with '{exc.args[0]}'") from None
        if callable(sigma):
            raise ConfigError("base_parameter_set", source,
                              "a number for 'Positive electrode conductivity [S.m-1]' (the set gives a function)")
        return cls(porosity=float(values["Positive electrode porosity"]),
                   am_volume_fraction=float(values["Positive electrode active material volume fraction"]),
                   thickness_m=float(values["Positive electrode thickness [m]"]),
                   bruggeman_electrolyte=float(pv.get("Positive electrode Bruggeman coefficient (electrolyte)", 1.5)),
                   bruggeman_electrode=float(pv.get("Positive electrode Bruggeman coefficient (electrode)", 1.5)),
                   conductivity_S_m=float(sigma), particle_radius_m=float(values["Positive particle radius [m]"]))

    @property
    def active_fraction(self) -> float:
        """f = X_AM / (1 - eps): the AM share of the solid volume [1] (held when the press density changes)."""
        return min(1.0, self.am_volume_fraction / (1.0 - self.porosity))  # 1 - eps - X_AM = 0 may round above 1

    def structure(self, porosity: float, am_volume_fraction: float) -> Any:
        """The cathode at another porosity and AM fraction, the set's transport law and particles held.

        tau = eps^(1 - b), sigma_eff = sigma (1 - eps)^b_s, a = 3 X_AM / R, X_CBD = max(0, 1 - eps - X_AM).

        Returns:
            :class:`~microdesign.cell.parameters.CathodeStructure`.

        Raises:
            ConfigError: porosity or AM fraction out of range.
        """
        from microdesign.cell.parameters import CathodeStructure

        eps, am = float(porosity), float(am_volume_fraction)
        require(0 < eps < 1, "porosity", eps, "in (0, 1)", "Bruggeman cathode")
        return CathodeStructure(porosity=eps, am_volume_fraction=am, cbd_volume_fraction=max(0.0, 1.0 - eps - am),
                                tortuosity_factor=eps ** (1.0 - self.bruggeman_electrolyte),
                                conductivity_S_m=self.conductivity_S_m * (1.0 - eps) ** self.bruggeman_electrode,
                                specific_surface_area_m=3.0 * am / self.particle_radius_m)

    def base_structure(self) -> Any:
        """The set's own cathode (:meth:`structure` at the set's porosity and AM fraction)."""
        return self.structure(self.porosity, self.am_volume_fraction)

    def linked(self, crystallographic_density_g_cm3: float) -> Any:
        """The set's cathode as mass loading, press density and active fraction
        (:meth:`microdesign.process.linked.LinkedParameters.from_structure`).

        Raises:
            ConfigError: a non-positive density.
        """
        from microdesign.process.linked import LinkedParameters

        return LinkedParameters.from_structure(self.thickness_m, self.porosity, self.am_volume_fraction,
                                               crystallographic_density_g_cm3)

    def at(self, mass_loading_mg_cm2: float, press_density_g_cm3: float,
           crystallographic_density_g_cm3: float) -> tuple[Any, float]:
        """The cathode at a mass loading and a press density, the set's active fraction held.

        Args:
            mass_loading_mg_cm2: ML [mg.cm-2] per side (> 0).
            press_density_g_cm3: PD [g.cm-3] (0 < PD < CD).
            crystallographic_density_g_cm3: CD [g.cm-3], the true density of the coating's solid.

        Returns:
            ``(CathodeStructure, thickness_m)`` with porosity 1 - PD/CD, X_AM = f PD/CD and thickness
            ML/(PD 100).

        Raises:
            ConfigError: non-positive loading or densities, PD >= CD.
        """
        from microdesign.process.linked import LinkedParameters

        require(math.isfinite(press_density_g_cm3) and press_density_g_cm3 < crystallographic_density_g_cm3,
                "press_density_g_cm3", press_density_g_cm3,
                f"< crystallographic_density_g_cm3 ({crystallographic_density_g_cm3:g}): a coating needs pores")
        lp = LinkedParameters(float(mass_loading_mg_cm2), float(press_density_g_cm3),
                              float(crystallographic_density_g_cm3), self.active_fraction)
        return self.structure(float(lp.porosity), float(lp.am_volume_fraction)), float(lp.thickness_m)
