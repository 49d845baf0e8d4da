"""The Redis attempt counter (see :mod:`sessionauth.auth.throttle`).

Each ``reserve`` (increment-and-compare) and ``release`` is one Lua script on one hash key,
so it is atomic across workers and runs unchanged on Redis Cluster. The key's TTL (the window
plus a minute) only collects garbage: whether a window has ended is decided from the counter's
clock, passed in as an argument, so windows agree with the ``retry_after`` the throttle
computes.
"""

from __future__ import annotations

import math

from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster

from sessionauth.backends.redis.client_guard import ClientGuard
from sessionauth.backends.redis.urls import RedisClients
from sessionauth.policy import Clock, system_clock
from sessionauth.stores.attempts import DEFAULT_PREFIX, AttemptCounter
from sessionauth.stores.base import DEFAULT_TIMEOUT

__all__ = ["RedisCounter"]

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


class RedisCounter(AttemptCounter):
    """Counts in Redis hashes, one key per counter, updated by a Lua script.

    Give it a ``redis.asyncio`` client (plain, Sentinel-managed or ``RedisCluster``) that you
    own and close, or use :meth:`from_url`, which builds and closes its own, or get it from a
    :class:`~sessionauth.backends.redis.RedisBackend`, whose client it shares.

    Args:
        client: The client; its ``decode_responses`` setting does not matter.
        clock: The time source deciding windows.
        prefix: Prepended to every key.
        timeout: Seconds an operation may take.
        owner: Clients that :meth:`aclose` closes (those of a URL the counter was built from).
    """

    def __init__(
        self,
        client: Redis | RedisCluster,
        *,
        clock: Clock = system_clock,
        prefix: str = DEFAULT_PREFIX,
        timeout: float = DEFAULT_TIMEOUT,
        owner: RedisClients | None = None,
    ):
        self._redis = ClientGuard(
            client, timeout=timeout, what="Redis attempt counter", owner=owner
        )
        self._client = client
        self._clock = clock
        self._prefix = prefix
        self._reserve = client.register_script(_RESERVE_SCRIPT)
        self._release = client.register_script(_RELEASE_SCRIPT)

    @property
    def prefix(self) -> str:
        """What every key of this counter starts with: where to look for it in Redis."""
        return self._prefix

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        clock: Clock = system_clock,
        prefix: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> RedisCounter:
        """Build a counter owning a client for ``url``; nothing connects until first use.

        The URLs are those of :class:`~sessionauth.backends.redis.sessions.RedisStore` (see
        :mod:`.urls`), so one setting can name both. Socket timeouts are ``timeout``; only a
        connection found dead before sending is retried, so a lost script reply never counts
        a failure twice.

        Args:
            url: Where Redis is.
            clock: The time source deciding windows.
            prefix: Prepended to every key; by default the URL's ``?prefix=`` followed by
                ``attempts:``, else :data:`~sessionauth.stores.attempts.DEFAULT_PREFIX`.
            timeout: Seconds an operation may take.

        Raises:
            ConfigurationError: For a malformed URL.
        """
        from sessionauth.backends.redis import RedisBackend

        backend = RedisBackend.from_url(url, clock=clock, timeout=timeout)
        return backend.attempt_counter(owned=True, prefix=prefix)

    async def reserve(self, key: str, window: float, limit: int) -> tuple[bool, int, float]:
        """Take one attempt of ``key`` in one script run."""
        await self._redis.ready()
        now = self._clock()
        ttl_ms = math.ceil(window * 1000) + _TTL_GRACE_MS
        args = (repr(now), repr(now + window), ttl_ms, limit)
        granted, count, reset_at = await self._redis.guard(
            self._reserve(keys=[self._prefix + key], args=args)
        )
        return bool(granted), int(count), float(reset_at)

    async def release(self, key: str, reset_at: float) -> None:
        """Give back one attempt of the window ending at ``reset_at``, in one script run."""
        await self._redis.ready()
        await self._redis.guard(self._release(keys=[self._prefix + key], args=(repr(reset_at),)))

    async def count(self, key: str) -> tuple[int, float]:
        """Return ``(count, reset_at)``, or ``(0, now)`` once the window is over."""
        await self._redis.ready()
        now = self._clock()
        count, reset_at = await self._redis.guard(
            self._client.hmget(self._prefix + key, ["count", "reset_at"])
        )
        if count is None or reset_at is None or float(reset_at) <= now:
            return 0, now
        return int(count), float(reset_at)

    async def reset(self, key: str) -> None:
        """Delete ``key``."""
        await self._redis.ready()
        await self._redis.guard(self._client.delete(self._prefix + key))

    async def aclose(self) -> None:
        """Close the clients this counter owns (see :meth:`from_url`)."""
        await self._redis.aclose()
