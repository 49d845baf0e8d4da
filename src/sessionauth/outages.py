"""Store outages logged as transitions, not as one traceback per failed request.

During an outage every request fails the same way. Logging each one (with its traceback, as
the middleware once did: 1.45 KB a request, megabytes a minute under load) buries the one line
an operator needs. :class:`OutageLog` writes instead:

* one WARNING when the outage begins (``… unavailable: <reason>``);
* one WARNING every ``every`` seconds while requests keep failing, with the count so far;
* one WARNING when it ends (``… available again after 12.3 s; 2201 requests failed``).

Each failure's traceback still goes to the DEBUG level, for whoever needs it.

The end is seen by :meth:`OutageLog.succeeded`, which the owner calls after a store call that
worked (a cheap check when nothing is wrong). An owner that never sees successes gets the end
inferred: a failure after ``every`` seconds of quiet first closes the earlier outage.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

__all__ = ["OutageLog"]


class OutageLog:
    """Logs the beginning, the persistence and the end of one component's outages.

    Args:
        name: The component, as the lines name it (``"session store"``).
        logger: Where the lines go (also the attribute ``logger``).
        every: Seconds between "still unavailable" lines while failures continue.
        clock: Monotonic time source (inject a fake one in tests).
    """

    def __init__(
        self,
        name: str,
        *,
        logger: logging.Logger,
        every: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.name = name
        self.every = every
        self.logger = logger
        self._clock = clock
        self._began: float | None = None
        self._last_line = 0.0
        self._last_failure = 0.0
        self._failures = 0

    @property
    def down(self) -> bool:
        """Whether an outage is in progress (a failure and no success since)."""
        return self._began is not None

    def failed(self, exc: BaseException) -> None:
        """Count one request that failed because of ``exc``; log if a line is due."""
        now = self._clock()
        self.logger.debug("%s unavailable", self.name, exc_info=exc)
        if self._began is not None and now - self._last_failure >= self.every:
            self.logger.warning(
                "%s: no failure for %.0f s, so the outage ended after %.1f s; %d requests failed",
                self.name,
                now - self._last_failure,
                self._last_failure - self._began,
                self._failures,
            )
            self._began = None
            self._failures = 0
        self._failures += 1
        self._last_failure = now
        if self._began is None:
            self._began = self._last_line = now
            self.logger.warning("%s unavailable: %s", self.name, exc)
        elif now - self._last_line >= self.every:
            self._last_line = now
            self.logger.warning(
                "%s still unavailable after %.0f s; %d requests failed so far: %s",
                self.name,
                now - self._began,
                self._failures,
                exc,
            )

    def succeeded(self) -> None:
        """Note that the component answered; ends the outage in progress, if any."""
        if self._began is not None:
            self.logger.warning(
                "%s available again after %.1f s; %d requests failed",
                self.name,
                self._clock() - self._began,
                self._failures,
            )
            self._began = None
            self._failures = 0
