"""Warnings of numerical libraries reach the log (category, message, count) instead of being hidden."""

from __future__ import annotations

import logging
import warnings

import pytest

from microdesign.logs import warnings_to_log

log = logging.getLogger("microdesign.test_logs")


def test_each_distinct_warning_is_logged_once_with_category_message_and_count(caplog):
    with caplog.at_level(logging.DEBUG, logger=log.name), warnings_to_log(log, "GP fit"):
        for _ in range(3):
            warnings.warn("A not p.d., added jitter", RuntimeWarning)
        warnings.warn("optimisation stopped early", UserWarning)
    messages = [r.getMessage() for r in caplog.records]
    assert messages == ["GP fit: RuntimeWarning: A not p.d., added jitter (x3)",
                        "GP fit: UserWarning: optimisation stopped early"]
    assert all(r.levelno == logging.WARNING for r in caplog.records)


def test_warnings_seen_before_an_exception_are_logged_and_the_exception_propagates(caplog):
    with caplog.at_level(logging.DEBUG, logger=log.name):
        with pytest.raises(ValueError, match="fit failed"), warnings_to_log(log, "TauFactor", logging.DEBUG):
            warnings.warn("slow convergence", RuntimeWarning)
            raise ValueError("fit failed")
    assert [(r.levelno, r.getMessage()) for r in caplog.records] == [
        (logging.DEBUG, "TauFactor: RuntimeWarning: slow convergence")]


def test_no_warning_no_record_and_outer_filters_restored(caplog):
    with caplog.at_level(logging.DEBUG, logger=log.name), warnings_to_log(log, "quiet block"):
        pass
    assert caplog.records == []
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with warnings_to_log(log, "inner"):
            warnings.warn("recorded, not raised", UserWarning)
        with pytest.raises(UserWarning):  # the caller's filter is back after the block
            warnings.warn("raised", UserWarning)
