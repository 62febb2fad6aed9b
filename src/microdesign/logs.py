"""Warnings of third-party numerical code (BoTorch, GPyTorch, TauFactor) sent to the log, not hidden."""

from __future__ import annotations

import contextlib
import logging
import warnings
from collections import Counter
from collections.abc import Iterator


@contextlib.contextmanager
def warnings_to_log(logger: logging.Logger, context: str, level: int = logging.WARNING) -> Iterator[None]:
    """Record every warning raised inside the block and log each distinct one once when it ends.

    Each record names the context, the warning's category and message, and how many times it was raised
    (e.g. ``GP fit: NumericalWarning: A not p.d., added jitter of 1.0e-08 to the diagonal (x3)``).
    Exceptions raised inside the block propagate unchanged (the warnings seen so far are still logged).

    Args:
        logger: where the records go.
        context: what the block does, the start of each record.
        level: logging level of the records (``logging.WARNING`` by default; ``logging.DEBUG`` for
            warnings that are expected and harmless).
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            yield
        finally:
            counts = Counter((w.category.__name__, str(w.message)) for w in caught)
            for (category, message), n in counts.items():
                logger.log(level, "%s: %s: %s%s", context, category, message, f" (x{n})" if n > 1 else "")
