"""Result type of the cell stage: :class:`CellResult`.

This is the contract between the cell model, the objective and the campaign file. A result is a
frozen value; a physical failure (solver failure, cut-off reached at t = 0, a geometry that does not
fit in the can) is a result with ``status == "failed"`` and a ``reason``, never an exception and never
a NaN: every numeric field of a failed result is a finite number (0.0 where nothing was computed).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields
from typing import Any

#: Keys of :meth:`CellResult.to_dict`, PyBaMM style (unit in brackets), in order.
RESULT_KEYS: dict[str, str] = {
    "status": "Status",
    "reason": "Reason",
    "protocol": "Protocol",
    "power_W": "Power [W]",
    "c_rate": "C-rate",
    "current_A": "Mean current [A]",
    "capacity_Ah": "Discharge capacity [A.h]",
    "energy_Wh": "Energy [W.h]",
    "mean_voltage_V": "Mean voltage [V]",
    "duration_s": "Duration [s]",
    "volumetric_energy_density_Wh_L": "Volumetric energy density [W.h.L-1]",
    "specific_energy_Wh_kg": "Specific energy [W.h.kg-1]",
    "mean_power_W": "Mean power [W]",
    "cathode_capacity_mAh_g_am": "Cathode capacity per active material mass [mA.h.g-1]",
    "termination": "Termination",
    "jelly_roll_length_m": "Jelly-roll length [m]",
    "electrode_area_m2": "Electrode area [m2]",
    "cathode_thickness_m": "Positive electrode thickness [m]",
    "anode_thickness_m": "Negative electrode thickness [m]",
    "cell_mass_kg": "Cell mass [kg]",
    "can_volume_L": "Can volume [L]",
    "cell_format": "Cell format",
}


@dataclass(frozen=True)
class CellResult:
    """One simulated discharge of one design in one cell format.

    Attributes:
        status: ``"ok"`` or ``"failed"``.
        reason: why it failed (``"cut-off voltage reached at t = 0 ..."``), else None.
        protocol: what was run, e.g. ``"constant power 50 W to 2.5 V"`` or ``"1C (5.01 A) to 2.5 V"``.
        power_W: requested discharge power [W] (constant-power protocol), else 0.0.
        c_rate: requested C-rate relative to the design's own C/10 capacity (constant-current
            protocol), else 0.0.
        current_A: mean discharge current [A].
        capacity_Ah: discharged capacity [A.h] of the whole cell.
        energy_Wh: discharged energy [W.h] = integral of V I dt over the discharge.
        mean_voltage_V: energy / capacity [V].
        duration_s: time to the cut-off (or to the time limit) [s].
        volumetric_energy_density_Wh_L: energy over the outer can volume [W.h.L-1].
        specific_energy_Wh_kg: energy over the cell mass [W.h.kg-1] (coatings, foils, separators,
            electrolyte, can and tabs).
        mean_power_W: energy / duration [W].
        cathode_capacity_mAh_g_am: discharged capacity per gram of cathode active material
            [mA.h.g-1] (electrode level; for the half-cell "academic" study only).
        termination: PyBaMM's termination string (``"event: Minimum voltage [V]"``), or ``""``.
        jelly_roll_length_m: wound (or stacked) electrode length [m] (one electrode strip).
        electrode_area_m2: cathode/anode overlap area that the 1D model is scaled by [m2],
            counting both coated sides (= 2 x jelly-roll length x electrode height for a roll).
        cathode_thickness_m: one cathode coating [m].
        anode_thickness_m: one anode coating [m].
        cell_mass_kg: cell mass [kg].
        can_volume_L: outer cell volume [L].
        cell_format: name of the cell format (``"4680"``).
        extra: anything else worth recording (str -> float), e.g. N/P ratio, effective radius.
    """

    status: str
    reason: str | None = None
    protocol: str = ""
    power_W: float = 0.0
    c_rate: float = 0.0
    current_A: float = 0.0
    capacity_Ah: float = 0.0
    energy_Wh: float = 0.0
    mean_voltage_V: float = 0.0
    duration_s: float = 0.0
    volumetric_energy_density_Wh_L: float = 0.0
    specific_energy_Wh_kg: float = 0.0
    mean_power_W: float = 0.0
    cathode_capacity_mAh_g_am: float = 0.0
    termination: str = ""
    jelly_roll_length_m: float = 0.0
    electrode_area_m2: float = 0.0
    cathode_thickness_m: float = 0.0
    anode_thickness_m: float = 0.0
    cell_mass_kg: float = 0.0
    can_volume_L: float = 0.0
    cell_format: str = ""
    extra: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.status not in ("ok", "failed"):
            raise ValueError(f"CellResult.status = {self.status!r}: expected 'ok' or 'failed'")
        for f in fields(self):
            v = getattr(self, f.name)
            if isinstance(v, float) and not math.isfinite(v):
                raise ValueError(f"CellResult.{f.name} = {v!r}: expected a finite number")

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @classmethod
    def failed(cls, reason: str, **known: Any) -> CellResult:
        """A failed result: ``reason`` plus whatever is known (geometry, protocol); numbers default to 0.0.

        Non-finite numbers in ``known`` are replaced by 0.0 so that a failure never carries NaN.
        """
        clean = {k: (0.0 if isinstance(v, float) and not math.isfinite(v) else v) for k, v in known.items()}
        return cls(status="failed", reason=reason, **clean)

    def to_attrs(self) -> dict[str, Any]:
        """Plain HDF5 attributes (the campaign file's ``cell`` group, :mod:`microdesign.storage`): every
        field, ``reason`` as ``""`` for None, and ``extra`` as a subgroup of its finite entries."""
        out: dict[str, Any] = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "extra"}
        out["reason"] = self.reason or ""
        out["extra"] = {k: v for k, v in (self.extra or {}).items() if not isinstance(v, float) or math.isfinite(v)}
        return out

    @classmethod
    def from_attrs(cls, attrs: dict[str, Any]) -> CellResult:
        """The result :meth:`to_attrs` wrote. A field this version does not know (a file from a newer
        one) is kept in ``extra`` when it is a finite number, else dropped; a missing field takes its default."""
        names = {f.name for f in fields(cls)} - {"extra"}
        extra = dict(attrs.get("extra") or {})
        for k, v in attrs.items():
            if (k not in names and k != "extra" and isinstance(v, (int, float)) and not isinstance(v, bool)
                    and math.isfinite(v)):
                extra.setdefault(k, float(v))
        known = {k: v for k, v in attrs.items() if k in names}
        known["reason"] = known.get("reason") or None
        return cls(**known, extra=extra)

    def to_dict(self) -> dict[str, Any]:
        """PyBaMM-style keys (``"Energy [W.h]"``, ``"Volumetric energy density [W.h.L-1]"``, ...) -> value.

        ``extra`` entries are added under their own keys.
        """
        raw = asdict(self)
        out = {RESULT_KEYS[k]: raw[k] for k in RESULT_KEYS}
        out.update(self.extra)
        return out
