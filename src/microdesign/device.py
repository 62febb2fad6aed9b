"""Torch device selection, shared by every stage that runs torch (generator, characterisation)."""

from __future__ import annotations

from microdesign.errors import ConfigError


def resolve_device(device: str) -> str:
    """``"auto"`` -> ``"cuda"`` when a CUDA device is available, else ``"cpu"``; ``"cpu"``, ``"cuda"`` and
    ``"cuda:<i>"`` pass through.

    Raises:
        ConfigError: an unknown device string, or a CUDA device requested where none is available
            (before any work starts).
    """
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cpu":
        return "cpu"
    if isinstance(device, str) and (device == "cuda" or device.startswith("cuda:")):
        if not torch.cuda.is_available():
            raise ConfigError("device", device, "'auto' or 'cpu' (no CUDA device is available)")
        return device
    raise ConfigError("device", device, "one of 'auto', 'cpu', 'cuda', 'cuda:<i>'")
