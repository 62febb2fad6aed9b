"""Objectives: a scalar to maximise from one cell result, with noise from the characterisation CI."""

from microdesign.objective.scalar import CellQuantity, Objective, ObjectiveValue, observations_for_model

__all__ = ["CellQuantity", "Objective", "ObjectiveValue", "observations_for_model"]
