"""Discharge protocols of the cell model and their config form.

* :class:`ConstantPower` - constant power to the lower cut-off.
* :class:`ConstantCurrent` - constant current, a C-rate relative to the design's own C/10 capacity
  (or an absolute current).
* :class:`PowerSweep` - constant-power discharges at several powers (a Ragone curve).
* :class:`RateSweep` - constant-current discharges at several C-rates, each relative to the design's
  own C/10 capacity (a rate-capability test): capacity retention = capacity at the rate / capacity
  at C/10.

:func:`protocol_from_config` reads a ``cell.protocol`` node (``conf/cell/*.yaml``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from microdesign.errors import ConfigError, require


@dataclass(frozen=True)
class ConstantPower:
    """Discharge at constant power to the lower cut-off voltage.

    Attributes:
        power_W: discharge power [W] of the whole cell (> 0).
    """

    power_W: float

    def __post_init__(self) -> None:
        require(math.isfinite(self.power_W) and self.power_W > 0, "power_W", self.power_W, "a finite power > 0 [W]")

    def describe(self, cutoff_V: float) -> str:
        return f"constant power {self.power_W:g} W to {cutoff_V:g} V"


@dataclass(frozen=True)
class ConstantCurrent:
    """Discharge at constant current ``c_rate x Q_C/10`` to the cut-off, where Q_C/10 is the design's
    own capacity at C/10 (measured by a first discharge at the theoretical C/10 current).

    Attributes:
        c_rate: C-rate [h-1] (> 0); ignored when ``current_A`` is given.
        current_A: an absolute current [A] instead of a C-rate (base-point studies against a
            published set's own current), or None.
    """

    c_rate: float = 1.0
    current_A: float | None = None

    def __post_init__(self) -> None:
        require(math.isfinite(self.c_rate) and self.c_rate > 0, "c_rate", self.c_rate, "a finite C-rate > 0 [h-1]")
        if self.current_A is not None:
            require(math.isfinite(self.current_A) and self.current_A > 0, "current_A", self.current_A,
                    "a finite current > 0 [A]")

    def describe(self, cutoff_V: float) -> str:
        if self.current_A is not None:
            return f"constant current {self.current_A:g} A to {cutoff_V:g} V"
        return f"constant current {self.c_rate:g}C to {cutoff_V:g} V"


@dataclass(frozen=True)
class PowerSweep:
    """Constant-power discharges at each power: one design's Ragone curve.

    Attributes:
        powers_W: discharge powers [W], each > 0, shape ``p``.
    """

    powers_W: tuple[float, ...]

    def __post_init__(self) -> None:
        require(len(self.powers_W) > 0, "powers_W", self.powers_W, "at least one power")
        for p in self.powers_W:
            require(math.isfinite(p) and p > 0, "powers_W", self.powers_W, "finite powers > 0 [W]")

    @classmethod
    def geometric(cls, low_W: float, high_W: float, n: int) -> PowerSweep:
        """``n`` powers spaced geometrically from ``low_W`` to ``high_W``."""
        require(0 < low_W < high_W, "low_W/high_W", (low_W, high_W), "0 < low < high")
        require(n >= 2, "n", n, ">= 2")
        return cls(tuple(float(p) for p in np.geomspace(low_W, high_W, n)))


@dataclass(frozen=True)
class RateSweep:
    """Constant-current discharges at each C-rate, ``I = c_rate x Q_C/10`` with Q_C/10 the design's own
    C/10 capacity (one C/10 reference discharge per design, one model build for all of them).

    Each result records the C/10 capacity (:data:`C10_CAPACITY_KEY`) and the capacity retention
    (:data:`RETENTION_KEY`, capacity at the rate / C/10 capacity) in ``extra``.

    Attributes:
        c_rates: C-rates [h-1], each > 0, shape ``r`` (not empty).
    """

    c_rates: tuple[float, ...]

    def __post_init__(self) -> None:
        require(len(self.c_rates) > 0, "c_rates", self.c_rates, "at least one C-rate")
        for c in self.c_rates:
            require(math.isfinite(c) and c > 0, "c_rates", self.c_rates, "finite C-rates > 0 [h-1]")


#: ``CellResult.extra`` key of the design's own C/10 capacity [A.h] (constant-current protocols).
C10_CAPACITY_KEY = "C/10 capacity [A.h]"
#: ``CellResult.extra`` key of the capacity retention: capacity at the C-rate / C/10 capacity [1].
RETENTION_KEY = "Capacity retention vs C/10"

Protocol = ConstantPower | ConstantCurrent | PowerSweep | RateSweep
SWEEPS = (PowerSweep, RateSweep)
#: Protocol kinds and the config keys that select them when ``kind`` is null (most specific first).
_KIND_KEYS = (("rate_sweep", ("c_rates",)), ("power_sweep", ("powers_W", "low_W", "high_W", "n")),
              ("constant_current", ("c_rate", "current_A")), ("constant_power", ("power_W",)))
KINDS = tuple(k for k, _ in _KIND_KEYS)


def _set(d: Mapping[str, Any], key: str) -> bool:
    return d.get(key) is not None


def protocol_from_config(cfg: Mapping[str, Any] | Protocol) -> Protocol:
    """A protocol from a config node (``cell.protocol``).

    Kinds and their keys: ``constant_power {power_W}``, ``constant_current {c_rate | current_A}``,
    ``power_sweep {powers_W | low_W, high_W, n}``, ``rate_sweep {c_rates}``. Unused keys may be null
    (``conf/cell/dfn_4680.yaml`` lists them all, null, so that ``cell.protocol.c_rate=2`` works as
    written). With ``kind`` null the kind follows from the values set, the most specific first:
    ``c_rates`` -> rate_sweep, ``powers_W``/``low_W``... -> power_sweep, ``c_rate``/``current_A`` ->
    constant_current, ``power_W`` -> constant_power; nothing set -> constant power 10 W (the
    campaign's default load, docs/cell_model.md).

    Raises:
        ConfigError: unknown kind, a missing value, or a value of another kind set beside an explicit
            ``kind`` (it would be ignored silently).
    """
    if isinstance(cfg, ConstantPower | ConstantCurrent | PowerSweep | RateSweep):
        return cfg
    d = dict(cfg)
    unknown = sorted(set(d) - {"kind", *(k for _, keys in _KIND_KEYS for k in keys)})
    if unknown:
        raise ConfigError(f"protocol.{unknown[0]}", d[unknown[0]], f"a protocol key of {dict(_KIND_KEYS)}")
    kind = d.get("kind")
    if kind is None:
        kind = next((k for k, keys in _KIND_KEYS if any(_set(d, key) for key in keys)), None)
        if kind is None:
            return ConstantPower(10.0)
    elif kind not in KINDS:
        raise ConfigError("protocol.kind", kind, f"one of {list(KINDS)} (or null: from the values set)")
    else:
        own = dict(_KIND_KEYS)[kind]
        other = [key for k, keys in _KIND_KEYS if k != kind and k != "constant_power" for key in keys
                 if _set(d, key)]
        if other:
            raise ConfigError(f"protocol.{other[0]}", d[other[0]],
                              f"null with protocol.kind={kind} (it sets {list(own)}), or protocol.kind "
                              f"null/{next(k for k, keys in _KIND_KEYS if other[0] in keys)}")

    def need(key: str) -> Any:
        if not _set(d, key):
            raise ConfigError(f"protocol.{key}", None, f"a value for protocol kind {kind!r}")
        return d[key]

    if kind == "constant_power":
        return ConstantPower(float(need("power_W")))
    if kind == "constant_current":
        if _set(d, "current_A"):
            return ConstantCurrent(current_A=float(d["current_A"]))
        return ConstantCurrent(float(need("c_rate")))
    if kind == "power_sweep":
        if _set(d, "powers_W"):
            return PowerSweep(tuple(float(p) for p in d["powers_W"]))
        return PowerSweep.geometric(float(need("low_W")), float(need("high_W")), int(need("n")))
    return RateSweep(tuple(float(c) for c in need("c_rates")))
