"""microdesign: closed-loop design of Li-ion electrode microstructures.

Pipeline stages (one sub-package each): design -> process -> generator -> characterise -> cell
-> objective -> optim, driven by campaign and stored by storage.
"""

import os
from importlib.metadata import PackageNotFoundError, version

# OpenMP threads that wait passively (sleep) instead of spinning between parallel regions. torch's
# libgomp reads the variable once, when torch is first imported, so it is set here, before any stage
# imports torch; a value the user set is kept. With the default (active, spinning) waits, the
# characteriser's 2-thread solves on a 2-core CPU shared with other jobs took 100-180 CPU s for four
# 48^3 cubes instead of 3-4 s (measured with both settings); on an otherwise idle CPU passive waits cost
# about 1.6x in wall time (3.3 vs 2.0 s), where OMP_WAIT_POLICY=ACTIVE is the faster choice. GNU libgomp
# manual, "OMP_WAIT_POLICY".
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

try:
    __version__ = version("microdesign")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]


def _register_result_types() -> None:
    """The campaign file stores each stage's result through the result type's own ``to_attrs`` /
    ``from_attrs``; storage imports none of them, the package names them here (imported on first read)."""
    from microdesign.storage.campaign_file import register_result_type

    register_result_type("objective", "microdesign.objective.scalar:ObjectiveValue")
    register_result_type("metrics", "microdesign.characterise.metrics:MicrostructureMetrics")
    register_result_type("cell", "microdesign.cell.result:CellResult")


_register_result_types()
