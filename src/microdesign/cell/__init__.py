"""Cell stage: PyBaMM DFN of a whole cell (default 4680) built from microstructure metrics.

Public API: :class:`CellModel` (the full cell, :mod:`microdesign.cell.full_cell`),
:class:`HalfCellModel` (the cathode against lithium metal, :mod:`microdesign.cell.half_cell`),
:class:`CellResult`, :class:`CellFormat`, the protocols :class:`ConstantPower`,
:class:`ConstantCurrent`, :class:`PowerSweep`, :class:`RateSweep` (:mod:`microdesign.cell.protocols`),
the base-set reader :func:`load_parameter_values` and :class:`BruggemanCathode`
(:mod:`microdesign.cell.chemistry`: PyBaMM sets and BPX files), the rate-capability map
(:mod:`microdesign.cell.rate_map`), and the linked-parameter helpers :func:`thickness_m`,
:func:`press_density_g_cm3`.
"""

from microdesign.cell.chemistry import BruggemanCathode, load_parameter_values
from microdesign.cell.formats import CellFormat, cell_format
from microdesign.cell.full_cell import CellModel, build_cell_model
from microdesign.cell.geometry import CellGeometry, Materials, Stack
from microdesign.cell.half_cell import HalfCellModel
from microdesign.cell.parameters import CathodeStructure, base_chemistry, press_density_g_cm3, thickness_m
from microdesign.cell.protocols import ConstantCurrent, ConstantPower, PowerSweep, RateSweep, protocol_from_config
from microdesign.cell.result import RESULT_KEYS, CellResult

__all__ = [
    "RESULT_KEYS", "BruggemanCathode", "CathodeStructure", "CellFormat", "CellGeometry", "CellModel", "CellResult", "ConstantCurrent",
    "ConstantPower", "HalfCellModel", "Materials", "PowerSweep", "RateSweep", "Stack", "base_chemistry", "build_cell_model",
    "cell_format", "load_parameter_values", "press_density_g_cm3", "protocol_from_config", "thickness_m",
]
