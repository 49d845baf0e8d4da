"""The Redis attempt counter (see :mod:`sessionauth.auth.throttle`).

Each ``reserve`` (increment-and-compare) and ``release`` is one Lua script on one hash key,
so it is atomic across workers and runs unchanged on Redis Cluster. The key's TTL (the window
plus a minute) only collects garbage: whether a window has ended is decided from the counter's
clock, passed in as an argument, so windows agree with the ``retry_after`` the throttle
computes. redis-py is imported only when a counter is built.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable
from functools import cache
from typing import TYPE_CHECKING, Any, TypeVar

from sessionauth.auth.throttle import DEFAULT_PREFIX, AttemptCounter
from sessionauth.errors import ConfigurationError
from sessionauth.policy import Clock, system_clock
from sessionauth.stores.base import DEFAULT_TIMEOUT

if TYPE_CHECKING:
    from redis.asyncio import Redis
    from redis.asyncio.cluster import RedisCluster

__all__ = ["RedisCounter"]

_T = TypeVar("_T")
# Keeps a Redis key a little past its window, so clock skew between the application and Redis
# never drops a live count; the window itself is decided from the counter's clock.
_TTL_GRACE_MS = 60_000


# KEYS[1]: the counter; ARGV: now, the new window's reset_at (both exact float reprs, returned
# as stored: Lua would truncate a number reply to an integer), the key's TTL in ms, and the
# limit. Returns {granted (0 or 1), count, reset_at}.
_RESERVE_SCRIPT = """
local reset_at = redis.call('HGET', KEYS[1], 'reset_at')
if reset_at and tonumber(reset_at) > tonumber(ARGV[1]) then
  local count = tonumber(redis.call('HGET', KEYS[1], 'count') or '0')
  if count >= tonumber(ARGV[4]) then
    return {0, count, reset_at}
  end
  return {1, redis.call('HINCRBY', KEYS[1], 'count', 1), reset_at}
end
redis.call('HSET', KEYS[1], 'count', 1, 'reset_at', ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return {1, 1, ARGV[2]}
"""

# KEYS[1]: the counter; ARGV[1]: the reset_at of the window the attempt was taken in, as
# reserve stored it. Another window's count (or a reset key) is left alone; a count back at
# zero is deleted, so a successful login leaves no key behind (anonymous traffic writes none).
_RELEASE_SCRIPT = """
if redis.call('HGET', KEYS[1], 'reset_at') == ARGV[1] then
  local count = tonumber(redis.call('HGET', KEYS[1], 'count') or '0')
  if count <= 1 then
    redis.call('DEL', KEYS[1])
  else
    redis.call('HINCRBY', KEYS[1], 'count', -1)
  end
end
return 0
"""


# Error replies that mean "not now" (a script running too long, a failover) or a deployment that
# cannot serve (a key of another type under the prefix, a Cluster node behind redis://, an ACL).
_TRANSIENT_REPLIES = (
    "BUSY", "MASTERDOWN", "NOREPLICAS", "LOADING", "CLUSTERDOWN", "TRYAGAIN",
    "WRONGTYPE", "MOVED", "ASK", "NOPERM",
    "DB index is out of range",  # SELECT of a database the server does not have
)  # fmt: skip


@cache
def _redis_errors() -> tuple[type[Exception], tuple[type[Exception], ...]]:
    """Return redis-py's ``ResponseError`` and the errors that always mean "unavailable"."""
    from redis import exceptions as r

    return r.ResponseError, (
        OSError,
        TimeoutError,
        r.ConnectionError,  # also authentication, loading, no master found by Sentinel
        r.TimeoutError,
        r.ClusterError,  # CLUSTERDOWN, MASTERDOWN
        r.RedisClusterException,  # no node for a slot
        r.TryAgainError,  # a slot being migrated
        r.ReadOnlyError,  # a replica after a failover
        r.OutOfMemoryError,  # maxmemory reached: the write is refused
        r.NoPermissionError,  # the ACL user may not touch the counters' keys
    )


class RedisCounter(AttemptCounter):
    """Counts in Redis hashes, one key per counter, updated by a Lua script.

    Give it a ``redis.asyncio`` client (plain, Sentinel-managed or ``RedisCluster``) that you
    own and close, or use :meth:`from_url`, which builds and closes its own.

    Args:
        client: The client; its ``decode_responses`` setting does not matter.
        clock: The time source deciding windows.
        prefix: Prepended to every key.
        timeout: Seconds an operation may take.
    """

    def __init__(
        self,
        client: Redis | RedisCluster,
        *,
        clock: Clock = system_clock,
        prefix: str = DEFAULT_PREFIX,
        timeout: float = DEFAULT_TIMEOUT,
    ):
        if not timeout > 0:
            raise ConfigurationError("the counter timeout must be a positive number of seconds")
        self._client = client
        self._clock = clock
        self._prefix = prefix
        self._timeout = timeout
        self._reserve = client.register_script(_RESERVE_SCRIPT)
        self._release = client.register_script(_RELEASE_SCRIPT)
        self._owned: list[Any] = []
        # A RedisCluster client must learn the topology before concurrent use: commands racing
        # its lazy initialisation can be sent twice, so 50 concurrent INCRs on a fresh client
        # count 52 (redis-py 8.1; see redis/redis-py#3935). Plain clients need nothing.
        from redis.asyncio.cluster import RedisCluster

        from sessionauth.stores.redis_urls import outage, server_of

        self._server = server_of(client)
        self._outage = outage

        self._cluster = client if isinstance(client, RedisCluster) else None
        self._initialized = self._cluster is None
        self._init_lock = asyncio.Lock()

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        clock: Clock = system_clock,
        prefix: str = DEFAULT_PREFIX,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> RedisCounter:
        """Build a counter owning a client for ``url``; nothing connects until first use.

        The URLs are those of :class:`~sessionauth.stores.redis.RedisStore`, so one setting
        can name both: ``redis://…``, ``rediss://…`` (TLS),
        ``redis+sentinel://[user:password@]h1:p1,h2:p2/service[?db=N]`` (the credentials are
        the master's) and ``redis+cluster://[user:password@]host:port[,host:port]``. Socket
        timeouts are ``timeout``; a dead pooled connection is retried once, nothing else is.

        Raises:
            ConfigurationError: For a malformed URL or a missing ``redis`` extra.
        """
        try:
            from sessionauth.stores.redis_urls import client_from_url
        except ImportError as exc:
            from sessionauth.stores import missing_extra

            raise missing_extra("redis", exc) from exc
        # The session store's parsing and fail-fast settings: only a connection found dead
        # before sending is retried, so a lost script reply never counts a failure twice.
        clients = client_from_url(url, timeout=timeout)
        counter = cls(clients.client, clock=clock, prefix=prefix, timeout=timeout)
        counter._owned = [clients]
        return counter

    async def _guard(self, operation: Awaitable[_T]) -> _T:
        response_error, unavailable = _redis_errors()
        try:
            async with asyncio.timeout(self._timeout):
                return await operation
        except unavailable as exc:
            # (StoreFull when maxmemory refused the write.)
            raise self._outage("Redis attempt counter", self._server, exc) from exc
        except response_error as exc:
            if not str(exc).startswith(_TRANSIENT_REPLIES):
                raise
            raise self._outage("Redis attempt counter", self._server, exc) from exc

    async def _initialize(self) -> None:
        async with self._init_lock:
            if not self._initialized and self._cluster is not None:
                await self._guard(self._cluster.initialize())
                self._initialized = True

    async def reserve(self, key: str, window: float, limit: int) -> tuple[bool, int, float]:
        """Take one attempt of ``key`` in one script run."""
        if not self._initialized:
            await self._initialize()
        now = self._clock()
        ttl_ms = math.ceil(window * 1000) + _TTL_GRACE_MS
        args = (repr(now), repr(now + window), ttl_ms, limit)
        granted, count, reset_at = await self._guard(
            self._reserve(keys=[self._prefix + key], args=args)
        )
        return bool(granted), int(count), float(reset_at)

    async def release(self, key: str, reset_at: float) -> None:
        """Give back one attempt of the window ending at ``reset_at``, in one script run."""
        if not self._initialized:
            await self._initialize()
        await self._guard(self._release(keys=[self._prefix + key], args=(repr(reset_at),)))

    async def count(self, key: str) -> tuple[int, float]:
        """Return ``(count, reset_at)``, or ``(0, now)`` once the window is over."""
        if not self._initialized:
            await self._initialize()
        now = self._clock()
        count, reset_at = await self._guard(
            self._client.hmget(self._prefix + key, ["count", "reset_at"])
        )
        if count is None or reset_at is None or float(reset_at) <= now:
            return 0, now
        return int(count), float(reset_at)

    async def reset(self, key: str) -> None:
        """Delete ``key``."""
        if not self._initialized:
            await self._initialize()
        await self._guard(self._client.delete(self._prefix + key))

    async def aclose(self) -> None:
        """Close the clients this counter built (see :meth:`from_url`)."""
        owned, self._owned = self._owned, []
        for client in owned:
            await client.aclose()
