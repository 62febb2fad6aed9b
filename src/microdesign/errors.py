"""Exceptions shared by every stage.

Bad input raises :class:`ConfigError` (a ``ValueError``) whose message names the parameter, the
value received and what was expected, before any expensive work starts.
"""

from __future__ import annotations

from typing import Any


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
