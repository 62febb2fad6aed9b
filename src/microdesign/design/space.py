"""Design space: named manufacturing parameters with units, bounds, roles and fixed values.

A design is a point ``x`` in physical units with ``d`` free parameters. The optimiser works in the
unit cube ``[0, 1]^d``: ``u = (x − lower)/(upper − lower)``. Tensors follow BoTorch's shapes:
designs ``n x d``, bounds ``2 x d`` (row 0 lower, row 1 upper).

Roles: ``microstructure`` parameters condition the generator (they change the voxels);
``cell`` parameters only change the cell model (mass loading changes thickness, not morphology).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from microdesign.errors import ConfigError

ROLES = ("microstructure", "cell")


@dataclass(frozen=True)
class Parameter:
    """One design parameter.

    Attributes:
        name: identifier, unit suffix where it has one (``mass_loading_mg_cm2``).
        unit: unit string, PyBaMM style (``"mg.cm-2"``; ``"1"`` for dimensionless).
        lower, upper: bounds in ``unit`` (lower < upper).
        role: ``"microstructure"`` or ``"cell"``.
        description: what it means physically.
        fixed: a value inside the bounds to hold the parameter at, or None (free).

    Raises:
        ConfigError: missing unit, non-finite or inverted bounds, unknown role, fixed value outside bounds.
    """

    name: str
    unit: str
    lower: float
    upper: float
    role: str = "microstructure"
    description: str = ""
    fixed: float | None = None

    def __post_init__(self) -> None:
        ctx = f"design parameter {self.name!r}"
        if not isinstance(self.unit, str) or not self.unit.strip():
            raise ConfigError("unit", self.unit, 'a unit string ("1" for dimensionless)', ctx)
        for key in ("lower", "upper"):
            value = getattr(self, key)
            if not isinstance(value, (int, float)) or not math.isfinite(value):
                raise ConfigError(key, value, "a finite number", ctx)
        if not self.lower < self.upper:
            raise ConfigError("lower", self.lower, f"< upper ({self.upper})", ctx)
        if self.role not in ROLES:
            raise ConfigError("role", self.role, f"one of {ROLES}", ctx)
        if self.fixed is not None and not self.lower <= self.fixed <= self.upper:
            raise ConfigError("fixed", self.fixed, f"within [{self.lower}, {self.upper}] {self.unit}", ctx)

    @property
    def is_fixed(self) -> bool:
        return self.fixed is not None


class DesignSpace:
    """Ordered set of design parameters.

    Args:
        parameters: the parameters, in order. Names must be unique.

    Raises:
        ConfigError: duplicate names, no free parameter.
    """

    def __init__(self, parameters: Sequence[Parameter]):
        names = [p.name for p in parameters]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ConfigError("design_space.parameters", duplicates, "unique parameter names")
        self.parameters: tuple[Parameter, ...] = tuple(parameters)
        if not self.free_names:
            raise ConfigError("design_space.parameters", names, "at least one parameter that is not fixed")

    # --- construction -------------------------------------------------------------------------------
    @classmethod
    def from_config(cls, cfg: Mapping[str, Any]) -> DesignSpace:
        """Build from the ``design_space`` config group (``parameters: {name: {unit, lower, upper, ...}}``).

        Raises:
            ConfigError: a missing field or an unknown field (named), or any :class:`Parameter` error.
        """
        params = cfg.get("parameters") if hasattr(cfg, "get") else None
        if not params:
            raise ConfigError("design_space.parameters", params, "a mapping of parameter name -> {unit, lower, upper, ...}")
        allowed = {"unit", "lower", "upper", "role", "description", "fixed"}
        out = []
        for name, spec in params.items():
            spec = dict(spec)
            unknown = set(spec) - allowed
            if unknown:
                raise ConfigError(f"design_space.parameters.{name}.{sorted(unknown)[0]}", spec[sorted(unknown)[0]],
                                  f"one of the fields {sorted(allowed)}")
            for required in ("unit", "lower", "upper"):
                if spec.get(required) is None:
                    raise ConfigError(f"design_space.parameters.{name}.{required}", None, "a value (it is required)")
            out.append(Parameter(name=str(name), **spec))
        return cls(out)

    # --- names --------------------------------------------------------------------------------------
    @property
    def names(self) -> tuple[str, ...]:
        """All parameter names (free and fixed), in order."""
        return tuple(p.name for p in self.parameters)

    @property
    def free_names(self) -> tuple[str, ...]:
        """Names of the optimised parameters; the columns of every ``n x d`` tensor."""
        return tuple(p.name for p in self.parameters if not p.is_fixed)

    @property
    def fixed_values(self) -> dict[str, float]:
        return {p.name: float(p.fixed) for p in self.parameters if p.is_fixed}

    @property
    def microstructure_names(self) -> tuple[str, ...]:
        """Parameters that condition the generator (free and fixed)."""
        return tuple(p.name for p in self.parameters if p.role == "microstructure")

    @property
    def cell_names(self) -> tuple[str, ...]:
        """Parameters that only change the cell model (free and fixed)."""
        return tuple(p.name for p in self.parameters if p.role == "cell")

    @property
    def dim(self) -> int:
        """d, the number of free parameters."""
        return len(self.free_names)

    def __getitem__(self, name: str) -> Parameter:
        for p in self.parameters:
            if p.name == name:
                return p
        raise ConfigError("parameter", name, f"one of {list(self.names)}", "design space")

    def _free(self) -> tuple[Parameter, ...]:
        return tuple(p for p in self.parameters if not p.is_fixed)

    # --- tensors ------------------------------------------------------------------------------------
    @property
    def bounds(self) -> torch.Tensor:
        """Physical bounds of the free parameters, ``2 x d`` float64 (row 0 lower, row 1 upper)."""
        free = self._free()
        return torch.tensor([[p.lower for p in free], [p.upper for p in free]], dtype=torch.float64)

    @property
    def unit_bounds(self) -> torch.Tensor:
        """``2 x d`` unit-cube bounds for BoTorch (zeros, ones)."""
        return torch.stack([torch.zeros(self.dim, dtype=torch.float64), torch.ones(self.dim, dtype=torch.float64)])

    def _check_shape(self, X: torch.Tensor, name: str) -> torch.Tensor:
        X = torch.as_tensor(X, dtype=torch.float64)
        if X.ndim != 2 or X.shape[-1] != self.dim:
            raise ConfigError(name, tuple(X.shape), f"a tensor n x {self.dim} (columns {list(self.free_names)})")
        return X

    def to_unit(self, X: torch.Tensor) -> torch.Tensor:
        """Physical ``n x d`` -> unit cube ``n x d``.

        Raises:
            ConfigError: wrong shape, or a value outside its bounds (names the parameter).
        """
        X = self._check_shape(X, "X")
        self._check_within(X)
        lo, hi = self.bounds
        return (X - lo) / (hi - lo)

    def from_unit(self, U: torch.Tensor) -> torch.Tensor:
        """Unit cube ``n x d`` -> physical ``n x d``.

        Raises:
            ConfigError: wrong shape or a value outside [0, 1] (names the parameter).
        """
        U = self._check_shape(U, "U")
        bad = (U < -1e-12) | (U > 1 + 1e-12)
        if bad.any():
            i, j = (int(v) for v in torch.nonzero(bad)[0])
            raise ConfigError(self.free_names[j], float(U[i, j]), "a unit-cube coordinate in [0, 1]", "design space")
        lo, hi = self.bounds
        return lo + U.clamp(0.0, 1.0) * (hi - lo)

    def _check_within(self, X: torch.Tensor) -> None:
        lo, hi = self.bounds
        span = hi - lo
        bad = (X < lo - 1e-12 * span) | (X > hi + 1e-12 * span)
        if bad.any():
            i, j = (int(v) for v in torch.nonzero(bad)[0])
            p = self._free()[j]
            raise ConfigError(p.name, float(X[i, j]), f"within [{p.lower}, {p.upper}] {p.unit}", "design space")

    # --- dicts --------------------------------------------------------------------------------------
    def validate(self, design: Mapping[str, float]) -> dict[str, float]:
        """Check a design given as a dict and return it complete (fixed values filled in).

        Raises:
            ConfigError: an unknown name, a missing free parameter, a value outside its bounds, or a
                value for a fixed parameter that differs from the fixed value.
        """
        for name in design:
            if name not in self.names:
                raise ConfigError("parameter", name, f"one of {list(self.names)}", "design space")
        out: dict[str, float] = {}
        for p in self.parameters:
            if p.is_fixed:
                if p.name in design and float(design[p.name]) != float(p.fixed):
                    raise ConfigError(p.name, design[p.name], f"the fixed value {p.fixed} {p.unit}", "design space")
                out[p.name] = float(p.fixed)
                continue
            if p.name not in design:
                raise ConfigError(p.name, None, f"a value in [{p.lower}, {p.upper}] {p.unit}", "design space")
            value = float(design[p.name])
            if not (math.isfinite(value) and p.lower <= value <= p.upper):
                raise ConfigError(p.name, value, f"within [{p.lower}, {p.upper}] {p.unit}", "design space")
            out[p.name] = value
        return out

    def to_dicts(self, X: torch.Tensor) -> list[dict[str, float]]:
        """Physical ``n x d`` -> list of complete design dicts (fixed values included)."""
        X = self._check_shape(X, "X")
        self._check_within(X)
        fixed = self.fixed_values
        return [{**fixed, **dict(zip(self.free_names, map(float, row)))} for row in X]

    def to_tensor(self, designs: Sequence[Mapping[str, float]]) -> torch.Tensor:
        """List of design dicts -> physical ``n x d`` (validated)."""
        rows = [[self.validate(d)[n] for n in self.free_names] for d in designs]
        return torch.tensor(rows, dtype=torch.float64).reshape(len(rows), self.dim)

    def center(self) -> dict[str, float]:
        """The mid-point of every free parameter (fixed ones at their value)."""
        return self.to_dicts(self.from_unit(torch.full((1, self.dim), 0.5, dtype=torch.float64)))[0]

    def restricted_to(self, bounds: Mapping[str, tuple[float, float]], what: str = "generator training bounds") -> None:
        """Check that every parameter named in ``bounds`` lies inside those bounds.

        Raises:
            ConfigError: a microstructure parameter the generator does not know, or a design bound
                outside ``bounds`` (names the parameter, its bound and the allowed range).
        """
        for p in self.parameters:
            if p.role != "microstructure":
                continue
            if p.name not in bounds:
                raise ConfigError(p.name, None, f"a parameter of the {what} {sorted(bounds)}", "design space")
            lo, hi = bounds[p.name]
            vals = [p.fixed] if p.is_fixed else [p.lower, p.upper]
            for v in vals:
                if not lo - 1e-12 <= v <= hi + 1e-12:
                    raise ConfigError(p.name, v, f"within the {what} [{lo}, {hi}] {p.unit}", "design space")
