"""An attempt counter that tells ``/readyz`` when it is full, and when it works again.

A login reserves an attempt before anything else: when the counter's backend refuses writes
(``StoreFull``: Redis at ``maxmemory`` with ``noeviction``, a full disk), every login answers
503 while requests of signed-in users still work. :class:`WatchedCounter` wraps the counter
the login throttle uses and reports that to the
:class:`~sessionauth.server.readiness.Readiness` as ``degraded``, and its end on the next
reservation the counter grants, as :class:`~sessionauth.server.metrics.TimedStore` does for the
session store's writes.
"""

from __future__ import annotations

from sessionauth.errors import StoreFull
from sessionauth.server.readiness import ATTEMPT_COUNTER, Readiness
from sessionauth.stores.attempts import AttemptCounter

__all__ = ["WatchedCounter"]


class WatchedCounter(AttemptCounter):
    """Delegates to ``inner``; a reservation's ``StoreFull`` or success goes to the readiness.

    Args:
        inner: The real counter. Not closed by this one: whoever opened it closes it.
        readiness: Told ``degraded`` when a reservation is refused for lack of room, ``ok``
            when one is taken.
    """

    def __init__(self, inner: AttemptCounter, readiness: Readiness):
        self.inner = inner
        self._readiness = readiness

    async def reserve(self, key: str, window: float, limit: int) -> tuple[bool, int, float]:
        """Reserve as ``inner`` does, reporting a full counter or a working one."""
        try:
            answer = await self.inner.reserve(key, window, limit)
        except StoreFull as exc:
            self._readiness.degraded(ATTEMPT_COUNTER, f"the counter refuses writes: {exc}")
            raise
        self._readiness.ok(ATTEMPT_COUNTER)
        return answer

    async def release(self, key: str, reset_at: float) -> None:
        """Release as ``inner`` does."""
        await self.inner.release(key, reset_at)

    async def count(self, key: str) -> tuple[int, float]:
        """Count as ``inner`` does."""
        return await self.inner.count(key)

    async def reset(self, key: str) -> None:
        """Reset as ``inner`` does."""
        await self.inner.reset(key)

    async def purge(self, now: float | None = None) -> int:
        """Purge as ``inner`` does."""
        return await self.inner.purge(now)
