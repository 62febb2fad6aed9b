"""Discharge protocols of the cell model and their config form.

* :class:`ConstantPower` - constant power to the lower cut-off.
* :class:`ConstantCurrent` - constant current, a C-rate relative to the design's own C/10 capacity
  (or an absolute current).
* :class:`PowerSweep` - constant-power discharges at several powers (a Ragone curve).

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


Protocol = ConstantPower | ConstantCurrent | PowerSweep


def protocol_from_config(cfg: Mapping[str, Any] | Protocol) -> Protocol:
    """A protocol from a config node: ``{kind: constant_power, power_W: 50}``,
    ``{kind: constant_current, c_rate: 1}``, ``{kind: power_sweep, powers_W: [...]}`` or
    ``{kind: power_sweep, low_W:, high_W:, n:}``.

    Raises:
        ConfigError: unknown kind or missing value.
    """
    if isinstance(cfg, ConstantPower | ConstantCurrent | PowerSweep):
        return cfg
    d = dict(cfg)
    kind = d.get("kind")
    try:
        if kind == "constant_power":
            return ConstantPower(float(d["power_W"]))
        if kind == "constant_current":
            if d.get("current_A") is not None:
                return ConstantCurrent(current_A=float(d["current_A"]))
            return ConstantCurrent(float(d["c_rate"]))
        if kind == "power_sweep":
            if d.get("powers_W"):
                return PowerSweep(tuple(float(p) for p in d["powers_W"]))
            return PowerSweep.geometric(float(d["low_W"]), float(d["high_W"]), int(d["n"]))
    except KeyError as exc:
        raise ConfigError(f"protocol.{exc.args[0]}", None, f"a value for protocol kind {kind!r}") from exc
    raise ConfigError("protocol.kind", kind, "'constant_power', 'constant_current' or 'power_sweep'")

