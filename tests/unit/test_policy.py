"""Timeout policy decisions."""

from __future__ import annotations

import pytest

from sessionauth.errors import ConfigurationError
from sessionauth.policy import TimeoutPolicy

HOUR = 3600.0


def test_a_default_session_dies_after_a_day_idle_or_a_week_in_all() -> None:
    """By default: 24 h after the last use (the tutorial's maxAge), 7 days in all, no renewal."""
    policy = TimeoutPolicy()
    day = 24 * HOUR
    assert not policy.is_expired(0, 0, day - 1)
    assert policy.is_expired(0, 0, day)
    busy = 7 * day - 1  # seen a second ago, every second, for a week
    assert not policy.is_expired(0, busy - 1, busy)
    assert policy.is_expired(0, 7 * day - 1, 7 * day)
    assert not policy.needs_renewal(0, 7 * day)


def test_idle_deadline_counts_from_last_activity() -> None:
    """A session expires idle_timeout after it was last seen."""
    policy = TimeoutPolicy(idle_timeout=HOUR, absolute_timeout=10 * HOUR)
    assert not policy.is_expired(0, 100, 100 + HOUR - 1)
    assert policy.is_expired(0, 100, 100 + HOUR)


def test_absolute_deadline_caps_activity() -> None:
    """However recently seen, a session dies absolute_timeout after it was created."""
    policy = TimeoutPolicy(idle_timeout=HOUR, absolute_timeout=2 * HOUR)
    assert policy.expires_at(0, 2 * HOUR - 10) == 2 * HOUR
    assert policy.is_expired(0, 2 * HOUR - 10, 2 * HOUR)


def test_a_session_not_remembered_dies_at_the_short_absolute_timeout() -> None:
    """Not remembered: 12 h in all by default, however active; remembered: the week."""
    policy = TimeoutPolicy()
    short = 12 * HOUR
    assert policy.lifetime(False) == short
    assert policy.lifetime(True) == 7 * 24 * HOUR
    assert policy.expires_at(0, short - 10, False) == short
    assert not policy.is_expired(0, short - 10, short - 1, False)
    assert policy.is_expired(0, short - 10, short, False)
    assert not policy.is_expired(0, short - 10, short, True)
    assert policy.is_expired(0, 0, 24 * HOUR, True)  # idle applies to both


def test_the_short_absolute_timeout_never_exceeds_the_absolute_one() -> None:
    """A short timeout longer than absolute_timeout is capped at it, not refused."""
    policy = TimeoutPolicy(idle_timeout=HOUR, absolute_timeout=3 * HOUR)
    assert policy.lifetime(False) == 3 * HOUR
    assert policy.expires_at(0, 3 * HOUR - 1, False) == 3 * HOUR


def test_touch_and_renewal_intervals() -> None:
    """Touch is due after touch_interval; renewal only when configured."""
    policy = TimeoutPolicy(touch_interval=60, renewal_interval=600)
    assert not policy.needs_touch(0, 59)
    assert policy.needs_touch(0, 60)
    assert not policy.needs_renewal(0, 599)
    assert policy.needs_renewal(0, 600)
    assert not TimeoutPolicy().needs_renewal(0, 10**9)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"idle_timeout": 0},
        {"absolute_timeout": -1},
        {"short_absolute_timeout": 0},
        {"touch_interval": 0},
        {"idle_timeout": 60, "touch_interval": 60},
        {"renewal_interval": 0},
        {"renewal_grace": -1},
        {"renewal_grace": float("nan")},
    ],
)
def test_contradictory_policies_are_refused(kwargs: dict[str, float]) -> None:
    """Non-positive durations, or a touch interval as long as the idle timeout, are refused."""
    with pytest.raises(ConfigurationError):
        TimeoutPolicy(**kwargs)
