"""Design space: named manufacturing parameters with units, bounds, roles, fixed values and linear constraints.

A design is a point ``x`` in physical units with ``d`` parameters (design-space order, fixed ones
included), ``d_free`` of which are optimised. The optimiser works in the unit cube of the free
parameters ``[0, 1]^d_free``: ``u = (x − lower)/(upper − lower)``. Tensors follow BoTorch's shapes:
designs ``n x d``, unit-cube points ``n x d_free``, bounds ``2 x d_free`` (row 0 lower, row 1 upper),
float64 (:data:`DTYPE`, BoTorch's recommendation for GP fitting). Linear constraints written in
physical units become BoTorch's ``inequality_constraints`` on the unit cube.

Roles: ``microstructure`` parameters condition the generator (they change the voxels);
``cell`` parameters only change the cell model (mass loading changes thickness, not morphology);
``process`` parameters are manufacturing settings (line load, formulation, coat weight) that the
process model maps to the generator's parameters and the mass loading
(:mod:`microdesign.design.manufacturing`, docs/manufacturing_campaigns.md).

:class:`DesignSpace` is the one parser of the ``design_space`` config: the campaign validates designs
with it and the optimisers (:mod:`microdesign.optim`) propose in its unit cube.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from microdesign.errors import ConfigError

ROLES = ("microstructure", "cell", "process")

#: Physical range of parameters known by name: ``name -> (lower, upper, lower included, upper included)``.
#: Bounds and fixed values must lie inside. Porosity is a volume fraction (0 < ε < 1: no solid or
#: no pore is no electrode); the AM weight fraction a mass fraction of the dry coating (0, 1]; the
#: CBD adhesion a share [0, 1] (docs/campaign.md, design space); a mass loading is positive. Any
#: other ``*_fraction`` name is held to [0, 1].
PHYSICAL_RANGES: dict[str, tuple[float, float, bool, bool]] = {
    "porosity": (0.0, 1.0, False, False),
    "am_weight_fraction": (0.0, 1.0, False, True),
    "cbd_adhesion": (0.0, 1.0, True, True),
    "mass_loading_mg_cm2": (0.0, math.inf, False, False),
    "dry_loading_mg_cm2": (0.0, math.inf, False, False),
    "line_load_N_mm": (0.0, math.inf, True, False),
    "carbon_to_binder_weight_ratio": (0.0, math.inf, False, False),
}


def physical_range(name: str) -> tuple[float, float, bool, bool] | None:
    """The physical range of a parameter name (:data:`PHYSICAL_RANGES`, ``*_fraction``), or None."""
    if name in PHYSICAL_RANGES:
        return PHYSICAL_RANGES[name]
    return (0.0, 1.0, True, True) if name.endswith("_fraction") else None


def in_physical_range(value: float, rng: tuple[float, float, bool, bool]) -> bool:
    """Whether ``value`` lies in a range of :func:`physical_range` (ends open or closed as given)."""
    lo, hi, lo_in, hi_in = rng
    return (value >= lo if lo_in else value > lo) and (value <= hi if hi_in else value < hi)


def range_text(rng: tuple[float, float, bool, bool]) -> str:
    """A range of :func:`physical_range` as text: ``(0, 1]``."""
    lo, hi, lo_in, hi_in = rng
    return f"{'[' if lo_in else '('}{lo:g}, {hi:g}{']' if hi_in else ')'}"
DTYPE = torch.float64  # BoTorch's recommendation for GP fitting (BoTorch docs, "Using float64")


@dataclass(frozen=True)
class Parameter:
    """One design parameter.

    Attributes:
        name: identifier, unit suffix where it has one (``mass_loading_mg_cm2``).
        unit: unit string, PyBaMM style (``"mg.cm-2"``; ``"1"`` for dimensionless).
        lower, upper: bounds in ``unit`` (lower < upper).
        role: ``"microstructure"``, ``"cell"`` or ``"process"``.
        description: what it means physically.
        fixed: a value inside the bounds to hold the parameter at, or None (free).

    Raises:
        ConfigError: missing unit, non-finite or inverted bounds, unknown role, fixed value outside
            bounds, a bound or fixed value outside the physical range of a known parameter
            (:data:`PHYSICAL_RANGES`: porosity 1.2, a negative mass loading).
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
        rng = physical_range(self.name)
        if rng is not None:
            for key in ("lower", "upper", "fixed"):
                value = getattr(self, key)
                if value is not None and not in_physical_range(float(value), rng):
                    raise ConfigError(f"design_space.parameters.{self.name}.{key}", value,
                                      f"a physical {self.name} in {range_text(rng)} {self.unit}")

    @property
    def is_fixed(self) -> bool:
        return self.fixed is not None


@dataclass(frozen=True)
class LinearConstraint:
    """``sum_i coefficients[i] * x_i  (sense)  rhs`` on physical parameter values.

    Attributes:
        coefficients: parameter name -> coefficient (physical units of ``rhs`` per unit of the parameter).
        rhs: right-hand side.
        sense: ``">="`` or ``"<="``.
    """

    coefficients: dict[str, float]
    rhs: float
    sense: str = ">="


class DesignSpace:
    """Ordered set of design parameters and the linear constraints on them.

    Args:
        parameters: the parameters, in order. Names must be unique.
        constraints: linear constraints on physical values (``optimiser.linear_constraints``).

    Raises:
        ConfigError: duplicate names, no free parameter, a constraint naming an unknown parameter or
            with an unknown sense, or constraints that no design within the bounds satisfies.
    """

    def __init__(self, parameters: Sequence[Parameter], constraints: Sequence[LinearConstraint] = ()):
        names = [p.name for p in parameters]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ConfigError("design_space.parameters", duplicates, "unique parameter names")
        self.parameters: tuple[Parameter, ...] = tuple(parameters)
        if not self.free_names:
            raise ConfigError("design_space.parameters", names, "at least one parameter that is not fixed")
        self.constraints: tuple[LinearConstraint, ...] = tuple(constraints)
        for k, c in enumerate(self.constraints):
            unknown = [n for n in c.coefficients if n not in self.names]
            if unknown:
                raise ConfigError(f"optimiser.linear_constraints[{k}]", unknown, f"parameters among {list(self.names)}")
            if c.sense not in (">=", "<="):
                raise ConfigError(f"optimiser.linear_constraints[{k}].sense", c.sense, "'>=' or '<='")
        if self.constraints and not self._feasible():
            raise ConfigError("optimiser.linear_constraints", [c.__dict__ for c in self.constraints],
                              "constraints that some design within the bounds satisfies")

    # --- construction -------------------------------------------------------------------------------
    @classmethod
    def from_config(cls, cfg: Mapping[str, Any], linear_constraints: Sequence[Mapping[str, Any]] | None = None
                    ) -> DesignSpace:
        """Build from the ``design_space`` config group (``parameters: {name: {unit, lower, upper, ...}}``).

        Args:
            cfg: the ``design_space`` node.
            linear_constraints: ``optimiser.linear_constraints``, a list of
                ``{coefficients: {name: c}, rhs: b, sense: ">=" | "<="}`` (None: none).

        Raises:
            ConfigError: a missing field or an unknown field (named), any :class:`Parameter` error, or
                a bad constraint (see the class).
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
        return cls(out).with_constraints(linear_constraints)

    def with_constraints(self, linear_constraints: Sequence[Mapping[str, Any]] | None) -> DesignSpace:
        """This space with the linear constraints of ``optimiser.linear_constraints``, a list of
        ``{coefficients: {name: c}, rhs: b, sense: ">=" | "<="}`` (None or empty: none).

        Raises:
            ConfigError: a bad constraint (see the class).
        """
        cons = [LinearConstraint({str(k): float(v) for k, v in c["coefficients"].items()}, float(c["rhs"]),
                                 str(c.get("sense", ">=")))
                for c in (linear_constraints or [])]
        return type(self)(self.parameters, cons)

    @classmethod
    def from_stored(cls, space: Mapping[str, Any]) -> DesignSpace:
        """The design space of a campaign file's header (``names``, ``units``, ``lower``, ``upper``,
        ``fixed``; :meth:`microdesign.storage.CampaignStore.read_header`). Roles are not stored: every
        parameter reads as ``microstructure``; a file without units reads them as ``"1"``.

        Raises:
            ConfigError: stored bounds or fixed values that are not a valid design space.
        """
        units = list(space.get("units") or [])
        fixed = dict(space.get("fixed") or {})
        return cls([Parameter(name=str(n), unit=str(units[i]) if i < len(units) and units[i] else "1",
                              lower=float(space["lower"][i]), upper=float(space["upper"][i]),
                              fixed=None if n not in fixed else float(fixed[n]))
                    for i, n in enumerate(space["names"])])

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
    def process_names(self) -> tuple[str, ...]:
        """Manufacturing settings mapped by the process model (free and fixed; empty for a structure space)."""
        return tuple(p.name for p in self.parameters if p.role == "process")

    @property
    def d(self) -> int:
        """The number of parameters (free and fixed): the columns of a design ``n x d``."""
        return len(self.parameters)

    @property
    def d_free(self) -> int:
        """The number of free parameters: the columns of a unit-cube point ``n x d_free``."""
        return len(self.free_names)

    @property
    def free_indices(self) -> list[int]:
        """Positions of the free parameters among :attr:`names`."""
        return [i for i, p in enumerate(self.parameters) if not p.is_fixed]

    @property
    def lower(self) -> np.ndarray:
        """Lower bounds of every parameter, shape ``d`` (physical units)."""
        return np.asarray([p.lower for p in self.parameters], dtype=float)

    @property
    def upper(self) -> np.ndarray:
        """Upper bounds of every parameter, shape ``d`` (physical units)."""
        return np.asarray([p.upper for p in self.parameters], dtype=float)

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
        """Physical bounds of the free parameters, ``2 x d_free`` float64 (row 0 lower, row 1 upper)."""
        free = self._free()
        return torch.tensor([[p.lower for p in free], [p.upper for p in free]], dtype=DTYPE)

    def unit_bounds(self) -> torch.Tensor:
        """``2 x d_free`` bounds of the free unit cube for BoTorch (zeros, ones; float64)."""
        return torch.stack([torch.zeros(self.d_free, dtype=DTYPE), torch.ones(self.d_free, dtype=DTYPE)])

    def to_free_unit(self, X: np.ndarray | torch.Tensor) -> torch.Tensor:
        """Physical designs ``n x d`` (every parameter) -> free unit-cube coordinates ``n x d_free`` (float64)."""
        X = torch.as_tensor(np.asarray(X, dtype=np.float64), dtype=DTYPE).reshape(-1, self.d)
        idx = self.free_indices
        lo = torch.as_tensor(self.lower[idx], dtype=DTYPE)
        hi = torch.as_tensor(self.upper[idx], dtype=DTYPE)
        return (X[:, idx] - lo) / (hi - lo)

    def from_free_unit(self, Z: torch.Tensor | np.ndarray) -> np.ndarray:
        """Free unit-cube coordinates ``n x d_free`` -> physical designs ``n x d`` with fixed values filled in.

        Values are clipped to the bounds (optimisers may overshoot by rounding).
        """
        Z = np.asarray(torch.as_tensor(Z, dtype=DTYPE).detach().cpu().numpy(), dtype=np.float64).reshape(-1, self.d_free)
        Z = np.clip(Z, 0.0, 1.0)
        X = np.empty((Z.shape[0], self.d))
        idx = self.free_indices
        lower, upper = self.lower, self.upper
        X[:, idx] = lower[idx] + Z * (upper[idx] - lower[idx])
        for n, v in self.fixed_values.items():
            X[:, self.names.index(n)] = v
        return X

    # --- constraints --------------------------------------------------------------------------------
    def unit_inequality_constraints(self) -> list[tuple[torch.Tensor, torch.Tensor, float]]:
        """Constraints as BoTorch ``(indices, coefficients, rhs)`` with ``sum coef * z[idx] >= rhs`` on the free unit cube.

        Physical ``sum c_i x_i >= b`` with ``x_i = l_i + (u_i - l_i) z_i`` for free ``i`` becomes
        ``sum_free c_i (u_i - l_i) z_i >= b - sum_free c_i l_i - sum_fixed c_i x_i``; ``<=`` is negated.
        Constraints on fixed parameters only are dropped (their feasibility is checked at construction).
        """
        out = []
        free = self.free_indices
        fixed = self.fixed_values
        lower, upper = self.lower, self.upper
        for c in self.constraints:
            sign = 1.0 if c.sense == ">=" else -1.0
            idx, coef = [], []
            rhs = sign * c.rhs
            for n, a in c.coefficients.items():
                i = self.names.index(n)
                if n in fixed:
                    rhs -= sign * a * fixed[n]
                else:
                    idx.append(free.index(i))
                    coef.append(sign * a * (upper[i] - lower[i]))
                    rhs -= sign * a * lower[i]
            if idx:
                out.append((torch.tensor(idx, dtype=torch.long), torch.tensor(coef, dtype=DTYPE), float(rhs)))
        return out

    def feasible_mask(self, Z: torch.Tensor) -> torch.Tensor:
        """Which rows of free unit-cube points ``n x d_free`` satisfy every constraint (bool, shape ``n``)."""
        ok = torch.ones(Z.shape[0], dtype=torch.bool)
        for idx, coef, rhs in self.unit_inequality_constraints():
            ok &= (Z[:, idx] * coef).sum(-1) >= rhs - 1e-9
        return ok

    def _feasible(self) -> bool:
        """Linear program: does any design within the bounds satisfy every constraint? (scipy ``linprog``)."""
        from scipy.optimize import linprog

        A, b = [], []
        for c in self.constraints:
            row = np.zeros(self.d)
            for n, a in c.coefficients.items():
                row[self.names.index(n)] = a
            s = -1.0 if c.sense == ">=" else 1.0  # linprog wants A x <= b
            A.append(s * row)
            b.append(s * c.rhs)
        fixed = self.fixed_values
        bounds = [(fixed.get(p.name, p.lower), fixed.get(p.name, p.upper)) for p in self.parameters]
        res = linprog(np.zeros(self.d), A_ub=np.array(A), b_ub=np.array(b), bounds=bounds, method="highs")
        return bool(res.status == 0)

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
