"""Exceptions and input checks shared by every stage.

Bad input raises :class:`ConfigError` (a ``ValueError``) whose message names the parameter, the
value received and what was expected, before any expensive work starts. The checks below are the
one place that raises it for a condition (:func:`require`) and for numbers that must be finite,
positive or a fraction (:func:`check_finite`, :func:`check_positive`, :func:`check_fraction`;
vectorised: scalars or numpy arrays), and for a voxel edge length (:func:`check_voxel_size`).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

ArrayLike = float | np.ndarray


class ConfigError(ValueError):
    """Invalid user input: names the parameter, the value and what was expected."""

    def __init__(self, parameter: str, value: Any, expected: str, context: str | None = None):
        self.parameter = parameter
        self.value = value
        self.expected = expected
        where = f" in {context}" if context else ""
        super().__init__(f"{parameter}{where} = {value!r}: expected {expected}")


def require(condition: bool, parameter: str, value: Any, expected: str, context: str | None = None) -> None:
    """Raise :class:`ConfigError` unless ``condition`` holds."""
    if not condition:
        raise ConfigError(parameter, value, expected, context)


def _offending(value: ArrayLike, bad: np.ndarray) -> object:
    arr = np.asarray(value, dtype=float)
    return float(arr) if arr.ndim == 0 else float(arr[bad][0])


def check_finite(name: str, value: ArrayLike, context: str | None = None) -> None:
    """Raise :class:`ConfigError` (naming the first offending value) unless every value is finite."""
    bad = ~np.isfinite(np.asarray(value, dtype=float))
    if bad.any():
        raise ConfigError(name, _offending(value, bad), "a finite number", context)


def check_positive(name: str, value: ArrayLike, context: str | None = None) -> None:
    """Raise :class:`ConfigError` unless every value is finite and > 0."""
    check_finite(name, value, context)
    bad = np.asarray(value, dtype=float) <= 0
    if bad.any():
        raise ConfigError(name, _offending(value, bad), "> 0", context)


def check_fraction(name: str, value: ArrayLike, context: str | None = None, *, open_low: bool = False,
                   open_high: bool = False) -> None:
    """Raise :class:`ConfigError` unless every value is finite and ``0 <= value <= 1`` (strict at an open end)."""
    check_finite(name, value, context)
    v = np.asarray(value, dtype=float)
    bad = (v <= 0 if open_low else v < 0) | (v >= 1 if open_high else v > 1)
    if bad.any():
        lo = "(0" if open_low else "[0"
        hi = "1)" if open_high else "1]"
        raise ConfigError(name, _offending(value, bad), f"a fraction in {lo}, {hi}", context)


VOXEL_SIZE_MAX_M = 1e-3
"""Upper bound (exclusive) of a voxel edge [m]: 1 mm; a larger value is a length in other units (um)."""


def check_voxel_size(name: str, value: Any, context: str | None = None, *, hint: str | None = None) -> float:
    """Return the voxel (pixel) edge ``value`` [m] as a float; raise :class:`ConfigError` unless it is one.

    Accepted: a real number (not a bool or string; numpy scalars and 0-d arrays included) that is
    finite and ``0 < value < VOXEL_SIZE_MAX_M`` (1 mm). Voxel sizes are metres throughout the
    project; a value of 1 mm or more is reported as a likely micrometre value.

    Args:
        name: the parameter as the user spells it (e.g. ``"source.voxel_size_m"``).
        value: the value received.
        context: where the value came from (a file, a config group), shown after ``name``.
        hint: appended to the expectation (e.g. ``"e.g. 3.98e-7"``, ``"it is never guessed"``).

    Raises:
        ConfigError: ``value`` is missing, not a number, not finite or outside ``(0, 1e-3)``.
    """
    try:
        v = math.nan if isinstance(value, (bool, str, bytes)) else float(value)
    except (TypeError, ValueError):
        v = math.nan
    if not (math.isfinite(v) and 0 < v < VOXEL_SIZE_MAX_M):
        expected = "a voxel edge in metres, > 0 and < 1e-3"
        if hint:
            expected += f" ({hint})"
        if math.isfinite(v) and v >= VOXEL_SIZE_MAX_M:
            expected += "; a value >= 1 mm looks like micrometres"
        raise ConfigError(name, value, expected, context)
    return v
