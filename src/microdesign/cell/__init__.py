"""Cell stage: PyBaMM DFN of a whole cell (default 4680) built from microstructure metrics.

Public API: :class:`CellModel` (the stage object), :class:`CellResult`, :class:`CellFormat`,
the protocols :class:`ConstantPower`, :class:`ConstantCurrent`, :class:`PowerSweep`, and the
linked-parameter helpers :func:`thickness_m`, :func:`press_density_g_cm3`.
"""

from microdesign.cell.formats import CellFormat, cell_format
from microdesign.cell.geometry import CellGeometry, Materials, Stack
from microdesign.cell.parameters import CathodeStructure, base_chemistry, press_density_g_cm3, thickness_m
from microdesign.cell.result import RESULT_KEYS, CellResult
from microdesign.cell.simulate import (
    CellModel,
    ConstantCurrent,
    ConstantPower,
    PowerSweep,
    build_cell_model,
    protocol_from_config,
)

__all__ = [
    "RESULT_KEYS", "CathodeStructure", "CellFormat", "CellGeometry", "CellModel", "CellResult", "ConstantCurrent",
    "ConstantPower", "Materials", "PowerSweep", "Stack", "base_chemistry", "build_cell_model", "cell_format", "press_density_g_cm3",
    "protocol_from_config", "thickness_m",
]
