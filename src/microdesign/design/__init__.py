"""Design space: named parameters, bounds, linear constraints, unit cube <-> physical (BoTorch shapes)."""

from microdesign.design.space import DTYPE, DesignSpace, LinearConstraint, Parameter

__all__ = ["DTYPE", "DesignSpace", "LinearConstraint", "Parameter"]
