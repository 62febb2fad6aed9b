"""The optimiser's view of a design space: free parameters in the unit cube, fixed ones held, linear constraints.

A :class:`SearchSpace` maps physical designs ``n x d`` (all parameters, in the design space's order)
to the unit cube of the *free* parameters ``n x d_free`` and back, and turns linear constraints
written in physical units into BoTorch's ``inequality_constraints`` on that unit cube. It is built
from the ``design_space`` config (``parameters.<name>.{lower, upper, fixed}``) so that the optimiser
depends on nothing but bounds; the campaign validates the same config with
:class:`microdesign.design.DesignSpace` before any work.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from microdesign.errors import ConfigError

DTYPE = torch.float64  # BoTorch's recommendation for GP fitting (docs/campaign.md)


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


@dataclass(frozen=True)
class SearchSpace:
    """Bounds, fixed values and linear constraints of the designs an optimiser may propose.

    Attributes:
        names: parameter names in design-space order, length ``d``.
        lower: lower bounds, shape ``d`` (physical units).
        upper: upper bounds, shape ``d``.
        fixed: parameter name -> held value (physical units); not optimised.
        constraints: linear constraints on physical values.
    """

    names: tuple[str, ...]
    lower: np.ndarray
    upper: np.ndarray
    fixed: dict[str, float] = field(default_factory=dict)
    constraints: tuple[LinearConstraint, ...] = ()

    def __post_init__(self) -> None:
        for i, n in enumerate(self.names):
            lo, hi = float(self.lower[i]), float(self.upper[i])
            if not (np.isfinite(lo) and np.isfinite(hi) and lo < hi):
                raise ConfigError(f"design_space.parameters.{n}", [lo, hi], "finite bounds with lower < upper")
        for n, v in self.fixed.items():
            if n not in self.names:
                raise ConfigError("fixed parameter", n, f"one of {list(self.names)}")
            i = self.names.index(n)
            if not (self.lower[i] <= v <= self.upper[i]):
                raise ConfigError(f"design_space.parameters.{n}.fixed", v,
                                  f"a value within [{self.lower[i]}, {self.upper[i]}]")
        if not self.free_indices:
            raise ConfigError("design_space", "all parameters fixed", "at least one free parameter")
        for k, c in enumerate(self.constraints):
            unknown = [n for n in c.coefficients if n not in self.names]
            if unknown:
                raise ConfigError(f"optimiser.linear_constraints[{k}]", unknown, f"parameters among {list(self.names)}")
            if c.sense not in (">=", "<="):
                raise ConfigError(f"optimiser.linear_constraints[{k}].sense", c.sense, "'>=' or '<='")
        if self.constraints and not self._feasible():
            raise ConfigError("optimiser.linear_constraints", [c.__dict__ for c in self.constraints],
                              "constraints that some design within the bounds satisfies")

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_config(cls, design_space_cfg: Any, linear_constraints: Sequence[Any] | None = None) -> SearchSpace:
        """Build from a ``design_space`` config node and ``optimiser.linear_constraints``.

        Args:
            design_space_cfg: node with ``parameters: {name: {lower, upper, fixed, ...}}``.
            linear_constraints: list of ``{coefficients: {name: c}, rhs: b, sense: ">="|"<="}``.

        Raises:
            ConfigError: missing bounds, inverted bounds, a fixed value outside its bounds, unknown names
                in a constraint, or constraints no design within the bounds satisfies.
        """
        params = design_space_cfg["parameters"]
        names, lo, hi, fixed = [], [], [], {}
        for name, p in params.items():
            if p is None or "lower" not in p or "upper" not in p:
                raise ConfigError(f"design_space.parameters.{name}", p, "a mapping with lower and upper")
            names.append(str(name))
            lo.append(float(p["lower"]))
            hi.append(float(p["upper"]))
            if p.get("fixed", None) is not None:
                fixed[str(name)] = float(p["fixed"])
        cons = tuple(
            LinearConstraint({str(k): float(v) for k, v in c["coefficients"].items()}, float(c["rhs"]),
                             str(c.get("sense", ">=")))
            for c in (linear_constraints or [])
        )
        return cls(tuple(names), np.asarray(lo, float), np.asarray(hi, float), fixed, cons)

    # ------------------------------------------------------------------ geometry
    @property
    def d(self) -> int:
        return len(self.names)

    @property
    def free_indices(self) -> list[int]:
        return [i for i, n in enumerate(self.names) if n not in self.fixed]

    @property
    def free_names(self) -> tuple[str, ...]:
        return tuple(self.names[i] for i in self.free_indices)

    @property
    def d_free(self) -> int:
        return len(self.free_indices)

    def unit_bounds(self) -> torch.Tensor:
        """``2 x d_free`` bounds of the free unit cube (float64)."""
        return torch.stack([torch.zeros(self.d_free, dtype=DTYPE), torch.ones(self.d_free, dtype=DTYPE)])

    def to_free_unit(self, X: np.ndarray | torch.Tensor) -> torch.Tensor:
        """Physical designs ``n x d`` -> free unit-cube coordinates ``n x d_free`` (float64)."""
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
        X[:, idx] = self.lower[idx] + Z * (self.upper[idx] - self.lower[idx])
        for n, v in self.fixed.items():
            X[:, self.names.index(n)] = v
        return X

    # ------------------------------------------------------------------ constraints
    def unit_inequality_constraints(self) -> list[tuple[torch.Tensor, torch.Tensor, float]]:
        """Constraints as BoTorch ``(indices, coefficients, rhs)`` with ``sum coef * z[idx] >= rhs`` on the free unit cube.

        Physical ``sum c_i x_i >= b`` with ``x_i = l_i + (u_i - l_i) z_i`` for free ``i`` becomes
        ``sum_free c_i (u_i - l_i) z_i >= b - sum_free c_i l_i - sum_fixed c_i x_i``; ``<=`` is negated.
        Constraints on fixed parameters only are dropped (their feasibility is checked at construction).
        """
        out = []
        free = self.free_indices
        for c in self.constraints:
            sign = 1.0 if c.sense == ">=" else -1.0
            idx, coef = [], []
            rhs = sign * c.rhs
            for n, a in c.coefficients.items():
                i = self.names.index(n)
                if n in self.fixed:
                    rhs -= sign * a * self.fixed[n]
                else:
                    idx.append(free.index(i))
                    coef.append(sign * a * (self.upper[i] - self.lower[i]))
                    rhs -= sign * a * self.lower[i]
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
        bounds = [(self.fixed.get(n, self.lower[i]), self.fixed.get(n, self.upper[i])) for i, n in enumerate(self.names)]
        res = linprog(np.zeros(self.d), A_ub=np.array(A), b_ub=np.array(b), bounds=bounds, method="highs")
        return bool(res.status == 0)
