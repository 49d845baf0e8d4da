"""What a Redis failure means: the one table for every Redis view (sessions, counters).

Every failure to reach Redis, and every error reply that means "not now" or "this deployment
cannot serve", becomes :class:`~sessionauth.errors.StoreUnavailable` (``StoreFull`` when
``maxmemory`` refused a write, ``StoreMisconfigured`` when the URL itself is refused) naming
the component and the server; any other error reply is a bug of ours and propagates.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

from redis import exceptions as rx

from sessionauth.errors import StoreFull, StoreMisconfigured, StoreUnavailable

__all__ = ["UNAVAILABLE", "guarded", "is_outage", "outage"]

_T = TypeVar("_T")

UNAVAILABLE = (
    OSError,  # a socket error redis-py did not wrap
    TimeoutError,  # asyncio.timeout around every operation
    rx.ConnectionError,  # refused, reset, loading, auth, no master known to Sentinel
    rx.TimeoutError,
    rx.ReadOnlyError,  # a demoted master
    rx.OutOfMemoryError,  # maxmemory reached: the write is refused
    rx.ClusterError,  # cluster down, master down
    rx.TryAgainError,  # a slot being migrated
    rx.RedisClusterException,  # no reachable node, slot not covered
    rx.InvalidResponse,  # something other than Redis answers at that address
    rx.NoPermissionError,  # the ACL user may not touch our keys: the deployment's to fix
)
"""Exceptions that always mean "Redis is unavailable"."""

# Error replies that mean "not now" (a script running too long, a failover), or a deployment
# that cannot serve (a key of another type under the prefix, a Cluster node behind a plain
# redis:// URL, an ACL that forbids a command): never a bug of ours, never a 500.
_TRANSIENT_REPLIES = (
    "BUSY", "MASTERDOWN", "NOREPLICAS", "LOADING", "CLUSTERDOWN", "TRYAGAIN",
    "WRONGTYPE", "MOVED", "ASK", "NOPERM",
    "DB index is out of range",  # SELECT of a database the server does not have
)  # fmt: skip
# Of those, the refusals of the URL itself: the server answers, and will refuse again.
_REFUSED_REPLIES = ("DB index is out of range",)


def is_outage(exc: BaseException) -> bool:
    """Whether ``exc`` means Redis is unavailable (rather than a bug of ours)."""
    return isinstance(exc, UNAVAILABLE) or (
        isinstance(exc, rx.ResponseError) and str(exc).startswith(_TRANSIENT_REPLIES)
    )


async def guarded(
    operation: Awaitable[_T],
    *,
    timeout: float,  # noqa: ASYNC109 - bounds the operation handed in, the caller's setting
    what: str,
    server: str,
) -> _T:
    """Await ``operation`` within ``timeout``, turning outages into ``StoreUnavailable``.

    Args:
        operation: A redis-py call.
        timeout: Seconds it may take.
        what: Names the component in the message, e.g. ``"Redis session store"``.
        server: Names the server (see :func:`~sessionauth.backends.redis.urls.server_of`).
    """
    try:
        async with asyncio.timeout(timeout):
            return await operation
    except (*UNAVAILABLE, rx.ResponseError) as exc:
        if not is_outage(exc):
            raise
        raise outage(what, server, exc) from exc


def outage(what: str, server: str, exc: BaseException) -> StoreUnavailable:
    """The ``StoreUnavailable`` for a Redis failure: what failed, where, and redis-py's words.

    ``StoreFull`` when ``maxmemory`` refused a write; ``StoreMisconfigured`` when the server
    refuses the URL itself (a database it does not have, a wrong password). (redis-py 8's
    exceptions ``repr`` as ``network:ConnectionError`` alone: their text is what says which
    address failed and how.)
    """
    detail = str(exc) or "no answer in time"
    if len(detail) > 200:  # Sentinel's "no master found" lists every Sentinel client's repr
        detail = detail[:199] + "…"
    if isinstance(exc, rx.OutOfMemoryError):
        return StoreFull(f"{what} is full at {server}: {type(exc).__name__}: {detail}")
    if isinstance(exc, rx.AuthenticationError) or (
        isinstance(exc, rx.ResponseError) and str(exc).startswith(_REFUSED_REPLIES)
    ):
        return StoreMisconfigured(
            f"{what} at {server} refuses the URL's settings: {type(exc).__name__}: {detail}"
        )
    return StoreUnavailable(f"{what} at {server} unavailable: {type(exc).__name__}: {detail}")
