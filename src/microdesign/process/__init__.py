"""Process-to-structure model (docs/process_model.md): formulation, slot-die coating, drying, calendering,
linked parameters and manufacturing tolerances."""

from microdesign.process.chain import DEFAULT_INPUTS, ElectrodeStructure, ProcessModel, evaluate_process
from microdesign.process.formulation import Formulation
from microdesign.process.linked import LinkedParameters, press_density_g_cm3, thickness_m
from microdesign.process.tolerance import Tolerance, ToleranceResult, propagate

__all__ = [
    "DEFAULT_INPUTS", "ElectrodeStructure", "Formulation", "LinkedParameters", "ProcessModel", "Tolerance",
    "ToleranceResult", "evaluate_process", "press_density_g_cm3", "propagate", "thickness_m",
]
