"""The contract every login-attempt counter keeps (see :mod:`sessionauth.auth.throttle`).

Counters live in the same backend as sessions: the backend that serves a URL builds both
(:meth:`sessionauth.backends.Backend.attempt_counter`).
:class:`~sessionauth.stores.memory.MemoryCounter` is the in-process one; the others are in
:mod:`sessionauth.backends`.
"""

from __future__ import annotations

import abc
from typing import Self

__all__ = ["DEFAULT_PREFIX", "AttemptCounter"]

DEFAULT_PREFIX = "sessionauth:attempts:"
"""The key prefix Redis counters use unless told otherwise."""


class AttemptCounter(abc.ABC):
    """Counts attempts per key in a fixed window that starts at the key's first attempt.

    Every implementation is atomic per key (concurrent :meth:`reserve` calls never lose a count
    and never grant more than the limit) and decides windows by its injected clock, never the
    backend's own.
    """

    @abc.abstractmethod
    async def reserve(self, key: str, window: float, limit: int) -> tuple[bool, int, float]:
        """Take one of ``key``'s ``limit`` attempts: one atomic increment-and-compare.

        A key whose window is over (or that was never used) starts a new window of ``window``
        seconds with a count of 1. Otherwise the count grows by one while it is below
        ``limit``; at the limit nothing changes and the attempt is refused.

        Returns:
            ``(granted, count, reset_at)``: whether the attempt was taken, the count after
            this call, and when the key's window ends.

        Raises:
            StoreUnavailable: If the backend failed or did not answer in time.
        """

    @abc.abstractmethod
    async def release(self, key: str, reset_at: float) -> None:
        """Give back one attempt taken in ``key``'s window ending at ``reset_at``.

        Nothing happens once that window is over or the key was reset: a later window's
        attempts are never given back, and a count never goes below zero. A key given back
        to zero may be forgotten altogether (its next attempt starts a new window).

        Raises:
            StoreUnavailable: If the backend failed or did not answer in time.
        """

    @abc.abstractmethod
    async def count(self, key: str) -> tuple[int, float]:
        """Return ``(count, reset_at)`` for ``key``; ``(0, now)`` once its window is over.

        Raises:
            StoreUnavailable: If the backend failed or did not answer in time.
        """

    @abc.abstractmethod
    async def reset(self, key: str) -> None:
        """Forget ``key``'s attempts.

        Raises:
            StoreUnavailable: If the backend failed or did not answer in time.
        """

    async def purge(self, now: float | None = None) -> int:
        """Delete keys whose window ended at or before ``now`` (default: the clock's now).

        Expired keys already count as zero; this only reclaims space. Backends that expire
        keys by themselves (Redis TTLs) have nothing to do and return 0.
        """
        del now
        return 0

    async def aclose(self) -> None:
        """Release connections this counter owns. The default owns none."""

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()
