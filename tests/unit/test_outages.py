"""Store outages are logged as a few transition lines, tracebacks only at debug level."""

from __future__ import annotations

import logging

import pytest

from sessionauth.errors import StoreUnavailable
from sessionauth.outages import OutageLog
from tests.support.clock import FakeClock

LOGGER = "sessionauth.test-outages"


def warnings(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == LOGGER and r.levelno >= logging.WARNING]


def test_a_ten_second_outage_under_load_logs_a_handful_of_lines(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """2200 failed requests over 10 s (220 rps), then a success: at most 20 lines, no traceback."""
    clock = FakeClock()
    log = OutageLog("session store", logger=logging.getLogger(LOGGER), every=5.0, clock=clock)
    error = StoreUnavailable("Redis session store unavailable: ConnectionError('refused')")
    with caplog.at_level(logging.DEBUG, logger=LOGGER):
        for _ in range(2200):
            log.failed(error)
            clock.advance(1 / 220)
        log.succeeded()
        log.succeeded()
    lines = warnings(caplog)
    assert 3 <= len(lines) <= 20
    assert all(record.exc_info is None for record in lines)
    assert "unavailable: Redis session store unavailable" in lines[0].getMessage()
    assert "still unavailable" in lines[1].getMessage()
    assert lines[-1].getMessage().startswith("session store available again after 10.0 s")
    assert "2200 requests failed" in lines[-1].getMessage()
    tracebacks = [r for r in caplog.records if r.levelno == logging.DEBUG and r.exc_info]
    assert len(tracebacks) == 2200
    assert not log.down


def test_a_failure_after_a_quiet_spell_closes_the_earlier_outage(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Without a success to end it, an outage is closed by the next failure after `every` s."""
    clock = FakeClock()
    log = OutageLog("store", logger=logging.getLogger(LOGGER), every=5.0, clock=clock)
    error = StoreUnavailable("the user database unavailable: OSError()")
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        log.failed(error)
        clock.advance(2)
        log.failed(error)
        clock.advance(60)
        log.failed(error)
    messages = [record.getMessage() for record in warnings(caplog)]
    assert len(messages) == 3
    assert "no failure for 60 s, so the outage ended after 2.0 s; 2 requests failed" in messages[1]
    assert messages[2].startswith("store unavailable: ")
    assert log.down
