"""Objectives: a scalar (or a vector) to maximise from one cell result, with observation noise from
the characterisation CI."""

from microdesign.objective.scalar import (DIRECTIONS, CellQuantity, Objective, ObjectiveValue, direction_sign,
                                         observations_for_model)
from microdesign.objective.vector import CellQuantities, multi_objective_observations, vector_of

__all__ = ["DIRECTIONS", "CellQuantities", "CellQuantity", "Objective", "ObjectiveValue", "direction_sign",
           "multi_objective_observations", "observations_for_model", "vector_of"]
