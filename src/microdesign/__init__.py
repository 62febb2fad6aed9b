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
