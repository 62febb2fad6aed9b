"""Input checks shared by the process model (vectorised: scalars or numpy arrays)."""

from __future__ import annotations

import numpy as np

from microdesign.errors import ConfigError

ArrayLike = float | np.ndarray


def _offending(value: ArrayLike, bad: np.ndarray) -> object:
    arr = np.asarray(value, dtype=float)
    return float(arr) if arr.ndim == 0 else float(arr[bad][0])


def check_finite(name: str, value: ArrayLike, context: str | None = None) -> None:
    bad = ~np.isfinite(np.asarray(value, dtype=float))
    if bad.any():
        raise ConfigError(name, _offending(value, bad), "a finite number", context)


def check_positive(name: str, value: ArrayLike, context: str | None = None) -> None:
    check_finite(name, value, context)
    bad = np.asarray(value, dtype=float) <= 0
    if bad.any():
        raise ConfigError(name, _offending(value, bad), "> 0", context)


def check_fraction(name: str, value: ArrayLike, context: str | None = None, *, open_low: bool = False,
                   open_high: bool = False) -> None:
    """Check ``0 <= value <= 1`` (strict at an open end)."""
    check_finite(name, value, context)
    v = np.asarray(value, dtype=float)
    bad = (v <= 0 if open_low else v < 0) | (v >= 1 if open_high else v > 1)
    if bad.any():
        lo = "(0" if open_low else "[0"
        hi = "1)" if open_high else "1]"
        raise ConfigError(name, _offending(value, bad), f"a fraction in {lo}, {hi}", context)
