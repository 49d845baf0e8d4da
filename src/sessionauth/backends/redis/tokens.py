"""The single-use token store on Redis (standalone, TLS, Sentinel, Cluster).

Each token is one hash key (``{prefix}{digest}``), so every script touches one key and runs
unchanged on Cluster. ``take`` is one Lua script that reads the hash, checks the user and
deletes it: Redis runs scripts one at a time, so of concurrent takes from any number of
workers exactly one gets the record. The key's TTL (the token's lifetime plus a minute) only
collects garbage: expiry is decided from the store's clock.
"""

from __future__ import annotations

import math

from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster

from sessionauth.backends.redis.client_guard import ClientGuard
from sessionauth.backends.redis.urls import RedisClients
from sessionauth.policy import Clock, system_clock
from sessionauth.stores.base import DEFAULT_TIMEOUT
from sessionauth.stores.tokens import DEFAULT_PREFIX, TokenRecord, TokenStore

__all__ = ["RedisTokenStore"]

# Keeps a key a little past its token's end, so clock skew between the application and Redis
# never drops a live token; the token's expiry itself is decided from the store's clock.
_TTL_GRACE_MS = 60_000

# KEYS[1]: the token; ARGV: user, purpose, binding, expires (an exact float repr), payload
# ("" with ARGV[7] = "0" for none), TTL in ms, has-payload flag.
_ADD_SCRIPT = """
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'u', ARGV[1], 'p', ARGV[2], 'b', ARGV[3], 'e', ARGV[4])
if ARGV[7] == '1' then redis.call('HSET', KEYS[1], 'x', ARGV[5]) end
redis.call('PEXPIRE', KEYS[1], ARGV[6])
return 1
"""

# KEYS[1]: the token; ARGV[1]: the user it must belong to, or "" for any. Returns
# {user, purpose, binding, expires, payload or false}, or nil when missing or another user's.
_TAKE_SCRIPT = """
local v = redis.call('HMGET', KEYS[1], 'u', 'p', 'b', 'e', 'x')
if not v[1] then return nil end
if ARGV[1] ~= '' and v[1] ~= ARGV[1] then return nil end
redis.call('DEL', KEYS[1])
return v
"""


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


class RedisTokenStore(TokenStore):
    """Token records in Redis hashes, taken by a Lua script.

    Get it from a :class:`~sessionauth.backends.redis.RedisBackend`, whose client it shares.

    Args:
        client: The client; its ``decode_responses`` setting does not matter.
        clock: The time source deciding expiry.
        prefix: Prepended to every key.
        timeout: Seconds an operation may take.
        owner: Clients that :meth:`aclose` closes.
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
        self._redis = ClientGuard(client, timeout=timeout, what="Redis token store", owner=owner)
        self._clock = clock
        self._prefix = prefix
        self._add = client.register_script(_ADD_SCRIPT)
        self._take = client.register_script(_TAKE_SCRIPT)

    @property
    def prefix(self) -> str:
        """What every key of this store starts with."""
        return self._prefix

    async def add(self, key: str, record: TokenRecord) -> None:
        """Store the record as one hash, with a TTL past its expiry."""
        await self._redis.ready()
        ttl_ms = max(1, math.ceil((record.expires - self._clock()) * 1000)) + _TTL_GRACE_MS
        args = (
            record.user_id,
            record.purpose,
            record.binding,
            repr(record.expires),
            record.payload or "",
            ttl_ms,
            "0" if record.payload is None else "1",
        )
        await self._redis.guard(self._add(keys=[self._prefix + key], args=args))

    async def take(self, key: str, *, user_id: str | None = None) -> TokenRecord | None:
        """Delete and return the live record under ``key`` in one script run."""
        await self._redis.ready()
        reply = await self._redis.guard(
            self._take(keys=[self._prefix + key], args=(user_id or "",))
        )
        if not reply:
            return None
        user, purpose, binding, expires, payload = reply
        record = TokenRecord(
            user_id=_text(user),
            purpose=_text(purpose),
            binding=_text(binding),
            expires=float(expires),
            payload=None if payload is None else _text(payload),
        )
        return record if record.expires > self._clock() else None

    async def aclose(self) -> None:
        """Close the clients this store owns."""
        await self._redis.aclose()
