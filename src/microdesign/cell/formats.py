"""Cell formats as data: the can (or pouch) that a design's electrodes must fit in.

A :class:`CellFormat` holds the outer dimensions, the housing (wall, ends, core, clearance) and the
hardware mass of one commercial format. The values live in ``conf/cell_format/*.yaml`` with a
source for every number; this module only checks them and derives volumes.

Two kinds:

* ``cylindrical`` (4680, 21700): a jelly roll wound in the annulus between the core (mandrel or
  hollow centre) and the inner can wall less a radial clearance; electrode height is the coated
  height of the strips.
* ``pouch``: a flat stack in the pouch's inner thickness; electrode length x width is the coated
  area of one layer.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

from microdesign.errors import ConfigError, require

_KINDS = ("cylindrical", "pouch")


@dataclass(frozen=True)
class CellFormat:
    """One cell format (all lengths [m], densities [kg.m-3], masses [kg]).

    Attributes:
        name: format name (``"4680"``).
        kind: ``"cylindrical"`` or ``"pouch"``.
        outer_diameter_m: can outer diameter (cylindrical).
        outer_height_m: can outer height (cylindrical) or pouch outer length (pouch).
        outer_width_m: pouch outer width (pouch; 0 for cylindrical).
        outer_thickness_m: pouch outer thickness (pouch; 0 for cylindrical).
        wall_thickness_m: can side wall (cylindrical) or pouch laminate thickness (pouch).
        end_thickness_m: can top/bottom plate thickness (cylindrical; 0 for pouch).
        core_diameter_m: diameter of the unwound centre (mandrel or hollow core) (cylindrical).
        radial_clearance_m: gap between the outer winding and the can wall (cylindrical) or between
            the stack and the pouch laminate on each face (pouch).
        electrode_height_m: coated electrode height (cylindrical) or coated length (pouch).
        electrode_width_m: coated width of one stacked layer (pouch; 0 for cylindrical).
        housing_density_kg_m3: can steel or pouch laminate density.
        hardware_mass_kg: everything else that is not electrode, separator, electrolyte or housing
            wall (current-collector plates or tabs, terminal, insulators, vent).
        sources: field name -> where its number comes from (paper, data sheet, teardown, or
            "assumption: ..." with the reasoning).
    """

    name: str
    kind: str
    outer_height_m: float
    wall_thickness_m: float
    electrode_height_m: float
    housing_density_kg_m3: float
    hardware_mass_kg: float = 0.0
    outer_diameter_m: float = 0.0
    outer_width_m: float = 0.0
    outer_thickness_m: float = 0.0
    end_thickness_m: float = 0.0
    core_diameter_m: float = 0.0
    radial_clearance_m: float = 0.0
    electrode_width_m: float = 0.0
    sources: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        ctx = f"cell format {self.name!r}"
        require(self.kind in _KINDS, "kind", self.kind, f"one of {_KINDS}", ctx)
        for key, value in asdict(self).items():
            if isinstance(value, float | int) and not isinstance(value, bool):
                require(math.isfinite(value) and value >= 0, key, value, "a finite number >= 0", ctx)
        for key in ("outer_height_m", "wall_thickness_m", "electrode_height_m", "housing_density_kg_m3"):
            require(getattr(self, key) > 0, key, getattr(self, key), "> 0", ctx)
        if self.kind == "cylindrical":
            require(self.outer_diameter_m > 0, "outer_diameter_m", self.outer_diameter_m, "> 0", ctx)
            require(self.electrode_height_m + 2 * self.end_thickness_m <= self.outer_height_m,
                    "electrode_height_m", self.electrode_height_m,
                    f"<= outer height - 2 x end thickness = {self.outer_height_m - 2 * self.end_thickness_m} m", ctx)
            require(self.core_diameter_m / 2 < self.winding_outer_radius_m, "core_diameter_m", self.core_diameter_m,
                    f"< 2 x winding outer radius = {2 * self.winding_outer_radius_m} m", ctx)
        else:
            for key in ("outer_width_m", "outer_thickness_m", "electrode_width_m"):
                require(getattr(self, key) > 0, key, getattr(self, key), "> 0 for a pouch", ctx)
            require(self.electrode_height_m <= self.outer_height_m, "electrode_height_m", self.electrode_height_m,
                    f"<= outer length {self.outer_height_m} m", ctx)
            require(self.electrode_width_m <= self.outer_width_m, "electrode_width_m", self.electrode_width_m,
                    f"<= outer width {self.outer_width_m} m", ctx)
            require(self.stack_thickness_m > 0, "outer_thickness_m", self.outer_thickness_m,
                    "> 2 x (laminate + clearance)", ctx)

    # ---- derived -------------------------------------------------------------------------------
    @property
    def volume_m3(self) -> float:
        """Outer cell volume [m3] (the denominator of volumetric energy density)."""
        if self.kind == "cylindrical":
            return math.pi * (self.outer_diameter_m / 2) ** 2 * self.outer_height_m
        return self.outer_height_m * self.outer_width_m * self.outer_thickness_m

    @property
    def volume_L(self) -> float:
        return self.volume_m3 * 1e3

    @property
    def winding_outer_radius_m(self) -> float:
        """Outer radius available to the jelly roll [m] (cylindrical)."""
        return self.outer_diameter_m / 2 - self.wall_thickness_m - self.radial_clearance_m

    @property
    def winding_area_m2(self) -> float:
        """Cross-section of the winding annulus [m2] (cylindrical)."""
        return math.pi * (self.winding_outer_radius_m**2 - (self.core_diameter_m / 2) ** 2)

    @property
    def stack_thickness_m(self) -> float:
        """Thickness available to the electrode stack [m] (pouch)."""
        return self.outer_thickness_m - 2 * (self.wall_thickness_m + self.radial_clearance_m)

    @property
    def housing_mass_kg(self) -> float:
        """Mass of the can (side wall + two end plates) or of the two pouch laminate sheets [kg]."""
        if self.kind == "cylindrical":
            r = self.outer_diameter_m / 2
            side = math.pi * (r**2 - (r - self.wall_thickness_m) ** 2) * (self.outer_height_m - 2 * self.end_thickness_m)
            ends = 2 * math.pi * r**2 * self.end_thickness_m
            return (side + ends) * self.housing_density_kg_m3
        # two laminate sheets covering both faces (edges/seals included in the outer footprint)
        return 2 * self.outer_height_m * self.outer_width_m * self.wall_thickness_m * self.housing_density_kg_m3

    @classmethod
    def from_config(cls, cfg: Any) -> CellFormat:
        """Build from a ``conf/cell_format/*.yaml`` node (or a plain dict).

        Raises:
            ConfigError: unknown key, missing key or an out-of-range value.
        """
        from omegaconf import DictConfig, OmegaConf

        data = OmegaConf.to_container(cfg, resolve=True) if isinstance(cfg, DictConfig) else dict(cfg)
        data.pop("_target_", None)
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError("cell_format", unknown, f"keys among {sorted(known)}")
        data["sources"] = {str(k): str(v) for k, v in dict(data.get("sources") or {}).items()}
        try:
            return cls(**data)
        except TypeError as exc:
            raise ConfigError("cell_format", data, f"all required keys ({exc})") from exc


def cell_format(**kwargs: Any) -> CellFormat:
    """Hydra ``_target_`` for a cell format node (same keys as :class:`CellFormat`)."""
    return CellFormat.from_config(kwargs)
