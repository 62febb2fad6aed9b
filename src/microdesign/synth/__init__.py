"""The synthetic manufacturing line: process parameters -> labelled 3-phase cathode volumes.

See :mod:`microdesign.synth.line` and ``docs/synthetic_line.md``.
"""

from microdesign.synth.line import (
    PARAMETER_NAMES,
    PARAMETER_UNITS,
    GenerationInfo,
    SyntheticLine,
    phase_volume_fractions,
)

__all__ = ["PARAMETER_NAMES", "PARAMETER_UNITS", "GenerationInfo", "SyntheticLine", "phase_volume_fractions"]
