"""Drying: the porosity of the dried (uncalendered) coating, as a pluggable meta-model.

A drying model is any object with ``dry_porosity(inputs) -> ε_dry`` where ``inputs`` is the flat
dict of process inputs (scalars or arrays ``n``). Two are provided:

* :class:`ConstantDryingPorosity` — ε_dry fixed (default 0.50: as-dried NMC cathodes are typically
  45–55 % porous, Meyer et al., J. Mater. Process. Technol. 249 (2017) 172, Table 2 initial porosities).
* :class:`LinearDryingPorosity` — ε_dry = ε_ref + Σ_k c_k (x_k − x_k,ref), a first-order meta-model
  around a reference point, the form Thomitzek et al. (Sustainability 14 (2022) 1530) fit to drying
  experiments; coefficients come from the user's own line.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

import numpy as np

from microdesign.errors import ArrayLike, ConfigError, check_fraction


class DryingModel(Protocol):
    def dry_porosity(self, inputs: Mapping[str, ArrayLike]) -> ArrayLike:
        """Porosity of the dried coating, shape of the inputs."""


class ConstantDryingPorosity:
    """ε_dry constant (default 0.50, see module docstring).

    Raises:
        ConfigError: ``dry_porosity`` not in (0, 1).
    """

    def __init__(self, dry_porosity: float = 0.50):
        check_fraction("dry_porosity", dry_porosity, "drying", open_low=True, open_high=True)
        self.porosity = float(dry_porosity)

    def dry_porosity(self, inputs: Mapping[str, ArrayLike]) -> ArrayLike:
        if "dry_porosity" in inputs:  # an input may override (e.g. a tolerance on it)
            return np.asarray(inputs["dry_porosity"], dtype=float)
        return self.porosity


class LinearDryingPorosity:
    """ε_dry = ε_ref + Σ_k c_k (x_k − x_k,ref) over named process inputs.

    Args:
        reference_porosity: ε_ref at the reference point.
        coefficients: input name -> c_k [1 per unit of that input].
        reference_inputs: input name -> x_k,ref.

    Raises:
        ConfigError: a coefficient without a reference value, or ε_ref not in (0, 1).
        ConfigError (at evaluation): an input the model needs is missing, or ε_dry leaves (0, 1).
    """

    def __init__(self, reference_porosity: float, coefficients: Mapping[str, float],
                 reference_inputs: Mapping[str, float]):
        check_fraction("reference_porosity", reference_porosity, "drying", open_low=True, open_high=True)
        for name in coefficients:
            if name not in reference_inputs:
                raise ConfigError(f"reference_inputs.{name}", None, "a reference value for every coefficient", "drying")
        self.reference_porosity = float(reference_porosity)
        self.coefficients = dict(coefficients)
        self.reference_inputs = dict(reference_inputs)

    def dry_porosity(self, inputs: Mapping[str, ArrayLike]) -> ArrayLike:
        if "dry_porosity" in inputs:  # an explicit value (e.g. a tolerance on ε_dry) replaces the meta-model
            return np.asarray(inputs["dry_porosity"], dtype=float)
        eps = self.reference_porosity
        for name, c in self.coefficients.items():
            if name not in inputs:
                raise ConfigError(name, None, "a process input the drying meta-model uses", "drying")
            eps = eps + c * (np.asarray(inputs[name], dtype=float) - self.reference_inputs[name])
        check_fraction("dry_porosity", eps, "drying meta-model output", open_low=True, open_high=True)
        return eps
