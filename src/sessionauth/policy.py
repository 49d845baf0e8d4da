"""Session timeouts: idle, absolute and token renewal, decided from timestamps and a clock.

All deadlines live in the stored record, never in the cookie, so the server alone decides when a
session ends. Nothing here does I/O; the middleware asks and the store obeys.

* ``idle_timeout``: a session unused for this long is dead (default 24 h).
* ``absolute_timeout``: no session lives longer than this after login, however active (7 days).
* ``short_absolute_timeout``: the absolute timeout of a login without "remember me" (12 h; never
  longer than ``absolute_timeout``). Whether a session is remembered is in its record.
* ``renewal_interval``: if set, the token is rotated this often while the session is used.
* ``renewal_grace``: for this long after a renewal, a request still carrying the old cookie
  (a second tab, a page's parallel fetches) is served the renewed session instead of being
  signed out (:mod:`sessionauth.forwards`); ``0`` turns that off.
* ``touch_interval``: the idle deadline is pushed forward at most this often, so an active
  session costs one store write per interval instead of one per request.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from sessionauth.errors import ConfigurationError

__all__ = ["Clock", "TimeoutPolicy", "system_clock"]

Clock = Callable[[], float]
"""A function returning the current time as POSIX seconds; inject a fake one in tests."""

system_clock: Clock = time.time


@dataclass(frozen=True, kw_only=True, slots=True)
class TimeoutPolicy:
    """How long sessions live, all durations in seconds.

    Raises:
        ConfigurationError: If a duration is not positive (``renewal_grace`` may be ``0``) or
            the intervals contradict each other (a touch interval as long as the idle timeout
            would let sessions expire while in use).
    """

    idle_timeout: float = 24 * 3600
    absolute_timeout: float = 7 * 24 * 3600
    short_absolute_timeout: float = 12 * 3600
    renewal_interval: float | None = None
    renewal_grace: float = 30
    touch_interval: float = 60

    def __post_init__(self) -> None:
        if min(self.idle_timeout, self.absolute_timeout, self.short_absolute_timeout) <= 0 or (
            self.touch_interval <= 0
        ):
            raise ConfigurationError("session timeouts must be positive numbers of seconds")
        if self.touch_interval >= self.idle_timeout:
            raise ConfigurationError("touch_interval must be shorter than idle_timeout")
        if self.renewal_interval is not None and self.renewal_interval <= 0:
            raise ConfigurationError("renewal_interval must be positive (or None to disable)")
        if not self.renewal_grace >= 0:  # also refuses NaN
            raise ConfigurationError("renewal_grace must be zero or a positive number of seconds")

    def lifetime(self, remembered: bool) -> float:
        """Return the absolute timeout of a remembered session, or of one that is not."""
        if remembered:
            return self.absolute_timeout
        return min(self.short_absolute_timeout, self.absolute_timeout)

    def expires_at(self, created: float, seen: float, remembered: bool = True) -> float:
        """Return when a session created at ``created`` and last seen at ``seen`` dies."""
        absolute = self.absolute_timeout if remembered else self.lifetime(False)
        return min(seen + self.idle_timeout, created + absolute)

    def is_expired(self, created: float, seen: float, now: float, remembered: bool = True) -> bool:
        """Return whether the session is past its idle or absolute deadline at ``now``."""
        # expires_at's arithmetic inlined: every authenticated request asks this once.
        absolute = self.absolute_timeout if remembered else self.lifetime(False)
        return now >= seen + self.idle_timeout or now >= created + absolute

    def needs_touch(self, seen: float, now: float) -> bool:
        """Return whether the idle deadline should be extended (written) at ``now``."""
        return now - seen >= self.touch_interval

    def needs_renewal(self, issued: float, now: float) -> bool:
        """Return whether the token issued at ``issued`` is due for rotation at ``now``."""
        return self.renewal_interval is not None and now - issued >= self.renewal_interval
