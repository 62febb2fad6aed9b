"""microdesign: closed-loop design of Li-ion electrode microstructures.

Pipeline stages (one sub-package each): design -> process -> generator -> characterise -> cell
-> objective -> optim, driven by campaign and stored by storage.
"""

from importlib.metadata import PackageNotFoundError, version

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
