"""Design space: named parameters, bounds, unit cube <-> physical (BoTorch shapes)."""

from microdesign.design.space import DesignSpace, Parameter

__all__ = ["DesignSpace", "Parameter"]
