"""Phase labels of segmented cathode volumes (docs/conventions.md).

Every volume in the project is ``uint8`` with one label per phase:
0 pore (electrolyte), 1 active material (NMC), 2 carbon-binder domain (CBD).
"""

from __future__ import annotations

from typing import Final

PORE: Final[int] = 0
ACTIVE_MATERIAL: Final[int] = 1
CBD: Final[int] = 2

PHASE_NAMES: Final[tuple[str, ...]] = ("pore", "active_material", "cbd")
N_PHASES: Final[int] = 3
