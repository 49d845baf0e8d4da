"""The second-factor store on Redis: one hash per user, every decision one Lua script.

A user's factors are the fields of one key, ``{prefix}{user_id}``, so every script touches one
key and runs unchanged on Redis Cluster:

* ``t:s``, ``t:c``, ``t:l``: the TOTP secret (encrypted bytes), confirmed (``0``/``1``), and
  the last accepted time step;
* ``r:{hash}``: one field per unused recovery code (consuming it is ``HDEL``: one winner);
* ``p:{id}``, ``n:{id}``, ``u:{id}``: a passkey's fixed part (msgpack), its name, and its
  state ``"{sign_count} {backed_up} {last_used}"`` (``{id}``: the credential id, base64url).

The keys have no TTL: factors last as long as the account. A Redis that evicts keys
(``maxmemory-policy`` other than ``noeviction``) could drop them, so factors need the same
``noeviction`` deployment as sessions (see :mod:`sessionauth.server.redis_eviction`).

Factors belong with the accounts (see :mod:`sessionauth.stores.factors`). Nothing else knows
that an account had a second factor, so a key lost here (a restart without persistence, a
flush, a failover to a replica that missed writes) fails open: the password alone signs in.
Use this store only where Redis is kept as durably as the accounts themselves (an
application whose own users live in this Redis, with persistence); with accounts in SQL, take
the SQL backend's ``factor_store()``, as the reference server does.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Awaitable, Mapping, Sequence
from typing import Any, TypeVar

import msgspec
from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster

from sessionauth.backends.redis.client_guard import ClientGuard
from sessionauth.backends.redis.urls import RedisClients
from sessionauth.stores.base import DEFAULT_TIMEOUT
from sessionauth.stores.factors import (
    DEFAULT_FACTOR_PREFIX,
    FactorStore,
    Passkey,
    PasskeyUse,
    TotpRecord,
)

__all__ = ["RedisFactorStore"]

# Characters SCAN's MATCH would read as a pattern, escaped in a literal prefix.
_GLOB_SPECIAL = re.compile(r"[*?\[\]\\]")

_T = TypeVar("_T")

# ARGV: the new secret. A confirmed factor is never replaced.
_BEGIN = """
if redis.call('HGET', KEYS[1], 't:c') == '1' then return 0 end
redis.call('HSET', KEYS[1], 't:s', ARGV[1], 't:c', '0', 't:l', '-1')
return 1
"""

# ARGV: the secret the code was checked against, the step, the confirmed flag required, and
# the secret under the newest key to store instead ('' to keep it).
_ACCEPT = """
local v = redis.call('HMGET', KEYS[1], 't:s', 't:c', 't:l')
if v[1] ~= ARGV[1] or v[2] ~= ARGV[3] or tonumber(v[3]) >= tonumber(ARGV[2]) then
  return 0
end
redis.call('HSET', KEYS[1], 't:c', '1', 't:l', ARGV[2])
if ARGV[4] ~= '' then redis.call('HSET', KEYS[1], 't:s', ARGV[4]) end
return 1
"""

# ARGV: the secret expected, the secret to store instead.
_RESEAL = """
if redis.call('HGET', KEYS[1], 't:s') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 't:s', ARGV[2])
return 1
"""

# ARGV: the new code hashes.
_SET_CODES = """
for _, field in ipairs(redis.call('HKEYS', KEYS[1])) do
  if string.sub(field, 1, 2) == 'r:' then redis.call('HDEL', KEYS[1], field) end
end
for i = 1, #ARGV do redis.call('HSET', KEYS[1], 'r:' .. ARGV[i], '1') end
return 0
"""

# ARGV: the credential id, its fixed part, name and state.
_ADD_PASSKEY = """
if redis.call('HSETNX', KEYS[1], 'p:' .. ARGV[1], ARGV[2]) == 0 then return 0 end
redis.call('HSET', KEYS[1], 'n:' .. ARGV[1], ARGV[3], 'u:' .. ARGV[1], ARGV[4])
return 1
"""

# ARGV: the credential id, the new name.
_RENAME = """
if redis.call('HEXISTS', KEYS[1], 'p:' .. ARGV[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], 'n:' .. ARGV[1], ARGV[2])
return 1
"""

# ARGV: the credential id, the new sign count, the new state. -1: no such passkey; 0: the
# counter did not grow (and is not 0 on both sides); 1: stored.
_USE = """
local state = redis.call('HGET', KEYS[1], 'u:' .. ARGV[1])
if not state then return -1 end
local count = tonumber(string.match(state, '^(%d+)'))
local new = tonumber(ARGV[2])
if not (new > count or (new == 0 and count == 0)) then return 0 end
redis.call('HSET', KEYS[1], 'u:' .. ARGV[1], ARGV[3])
return 1
"""


class _Fixed(msgspec.Struct, array_like=True):
    """The part of a passkey that never changes, as stored in its ``p:`` field."""

    public_key: bytes
    backup_eligible: bool
    transports: tuple[str, ...]
    created: float


def _field_id(credential_id: bytes) -> str:
    return base64.urlsafe_b64encode(credential_id).rstrip(b"=").decode()


def _state(sign_count: int, backed_up: bool, last_used: float | None) -> str:
    return f"{sign_count} {int(backed_up)} {'-' if last_used is None else repr(last_used)}"


class RedisFactorStore(FactorStore):
    """Factors in Redis hashes, one key per user, changed by Lua scripts.

    Get it from :meth:`sessionauth.backends.redis.RedisBackend.factor_store`, whose client it
    shares (or give it a client you own and close).

    Args:
        client: A ``redis.asyncio`` client (plain, Sentinel-managed or Cluster) with
            ``decode_responses=False``.
        prefix: Prepended to every key.
        timeout: Seconds an operation may take.
        owner: Clients that :meth:`aclose` closes.

    Raises:
        ConfigurationError: For a bad timeout.
    """

    def __init__(
        self,
        client: Redis | RedisCluster,
        *,
        prefix: str = DEFAULT_FACTOR_PREFIX,
        timeout: float = DEFAULT_TIMEOUT,
        owner: RedisClients | None = None,
    ):
        self._redis = ClientGuard(client, timeout=timeout, what="Redis factor store", owner=owner)
        self._client = client
        self._prefix = prefix
        self._scripts = {
            name: client.register_script(source)
            for name, source in (
                ("begin", _BEGIN),
                ("accept", _ACCEPT),
                ("reseal", _RESEAL),
                ("set_codes", _SET_CODES),
                ("add", _ADD_PASSKEY),
                ("rename", _RENAME),
                ("use", _USE),
            )
        }

    async def _run(self, script: str, user_id: str, *args: Any) -> int:
        await self._redis.ready()
        reply = await self._redis.guard(
            self._scripts[script](keys=[self._prefix + user_id], args=list(args))
        )
        return int(reply)

    async def _call(self, operation: Awaitable[_T]) -> _T:
        await self._redis.ready()
        return await self._redis.guard(operation)

    async def begin_totp(self, user_id: str, secret: bytes) -> bool:
        """Store an unconfirmed secret unless a confirmed one exists (one script)."""
        return await self._run("begin", user_id, secret) == 1

    async def get_totp(self, user_id: str) -> TotpRecord | None:
        """Return the user's TOTP factor, or ``None``."""
        secret, confirmed, last = await self._call(
            self._client.hmget(self._prefix + user_id, ["t:s", "t:c", "t:l"])
        )
        if secret is None or confirmed is None or last is None:
            return None
        return TotpRecord(secret=_bytes(secret), confirmed=confirmed == b"1", last_step=int(last))

    async def accept_totp_step(
        self,
        user_id: str,
        secret: bytes,
        step: int,
        *,
        confirm: bool = False,
        reseal: bytes | None = None,
    ) -> bool:
        """Compare-and-set the last accepted step (one script)."""
        flag = "0" if confirm else "1"
        return await self._run("accept", user_id, secret, step, flag, reseal or b"") == 1

    async def delete_totp(self, user_id: str) -> bool:
        """Delete the TOTP factor; return whether there was one."""
        key = self._prefix + user_id
        return bool(await self._call(self._client.hdel(key, "t:s", "t:c", "t:l")))

    async def totp_users(self) -> list[str]:
        """Return the users with a TOTP factor (``SCAN``, then ``HEXISTS`` of each key).

        ``SCAN`` walks every primary of a cluster. Each round trip has the store's timeout,
        not the whole walk, which can be long.
        """
        pattern = _GLOB_SPECIAL.sub(r"\\\g<0>", self._prefix) + "*"
        found = self._client.scan_iter(match=pattern, count=1000)
        users = []
        while True:
            try:
                key = await self._call(anext(found))
            except StopAsyncIteration:
                break
            if await self._call(self._client.hexists(key, "t:s")):
                users.append(_bytes(key)[len(self._prefix.encode()) :].decode())
        return users

    async def replace_totp_secret(self, user_id: str, secret: bytes, new: bytes) -> bool:
        """Compare-and-set the secret (one script)."""
        return await self._run("reseal", user_id, secret, new) == 1

    async def set_recovery_codes(self, user_id: str, hashes: Sequence[str]) -> None:
        """Replace the user's codes (one script)."""
        await self._run("set_codes", user_id, *sorted(set(hashes)))

    async def consume_recovery_code(self, user_id: str, code_hash: str) -> bool:
        """Delete one code's field; only the ``HDEL`` that found it wins."""
        key = self._prefix + user_id
        return bool(await self._call(self._client.hdel(key, f"r:{code_hash}")))

    async def count_recovery_codes(self, user_id: str) -> int:
        """Return how many codes are left."""
        fields = await self._call(self._client.hkeys(self._prefix + user_id))
        return sum(1 for field in fields if _bytes(field).startswith(b"r:"))

    async def add_passkey(self, user_id: str, passkey: Passkey) -> bool:
        """Register a passkey unless the user has one with its id (one script)."""
        fixed = _Fixed(
            passkey.public_key, passkey.backup_eligible, passkey.transports, passkey.created
        )
        added = await self._run(
            "add",
            user_id,
            _field_id(passkey.credential_id),
            msgspec.msgpack.encode(fixed),
            passkey.name,
            _state(passkey.sign_count, passkey.backed_up, passkey.last_used),
        )
        return added == 1

    async def list_passkeys(self, user_id: str) -> list[Passkey]:
        """Return the user's passkeys, oldest first."""
        stored = await self._call(self._client.hgetall(self._prefix + user_id))
        fields = {_bytes(name): _bytes(value) for name, value in stored.items()}
        found = []
        for field in fields:
            if field.startswith(b"p:"):
                passkey = _decode(field[2:].decode(), fields)
                if passkey is not None:
                    found.append(passkey)
        return sorted(found, key=lambda key: (key.created, key.credential_id))

    async def get_passkey(self, user_id: str, credential_id: bytes) -> Passkey | None:
        """Return one passkey, or ``None``."""
        fid = _field_id(credential_id)
        names = [f"p:{fid}", f"n:{fid}", f"u:{fid}"]
        values = await self._call(self._client.hmget(self._prefix + user_id, names))
        return _decode(
            fid,
            {
                name.encode(): None if v is None else _bytes(v)
                for name, v in zip(names, values, strict=True)
            },
        )

    async def rename_passkey(self, user_id: str, credential_id: bytes, name: str) -> bool:
        """Rename one passkey if it exists (one script)."""
        return await self._run("rename", user_id, _field_id(credential_id), name) == 1

    async def delete_passkey(self, user_id: str, credential_id: bytes) -> bool:
        """Delete one passkey if it exists."""
        fid = _field_id(credential_id)
        key = self._prefix + user_id
        return bool(await self._call(self._client.hdel(key, f"p:{fid}", f"n:{fid}", f"u:{fid}")))

    async def use_passkey(
        self, user_id: str, credential_id: bytes, *, sign_count: int, backed_up: bool, now: float
    ) -> PasskeyUse:
        """Compare-and-set the sign count (one script)."""
        state = _state(sign_count, backed_up, now)
        used = await self._run("use", user_id, _field_id(credential_id), sign_count, state)
        if used == 1:
            return PasskeyUse.ACCEPTED
        return PasskeyUse.COUNTER_REGRESSED if used == 0 else PasskeyUse.UNKNOWN

    async def reset(self, user_id: str) -> None:
        """Delete the user's key: every factor at once."""
        await self._call(self._client.delete(self._prefix + user_id))

    async def aclose(self) -> None:
        """Close the clients this store owns."""
        await self._redis.aclose()


def _bytes(value: bytes | str) -> bytes:
    """A reply as bytes (the client is built with ``decode_responses=False``)."""
    return value.encode() if isinstance(value, str) else value


def _decode(fid: str, fields: Mapping[bytes, bytes | None]) -> Passkey | None:
    """The passkey ``fid`` from its three fields, or ``None`` if any is missing or corrupt."""
    fixed_blob = fields.get(f"p:{fid}".encode())
    name = fields.get(f"n:{fid}".encode())
    state = fields.get(f"u:{fid}".encode())
    if fixed_blob is None or name is None or state is None:
        return None
    try:
        fixed = msgspec.msgpack.decode(fixed_blob, type=_Fixed)
        count, backed, last = state.decode().split(" ")
        return Passkey(
            credential_id=base64.urlsafe_b64decode(fid + "=" * (-len(fid) % 4)),
            public_key=fixed.public_key,
            sign_count=int(count),
            backup_eligible=fixed.backup_eligible,
            backed_up=backed == "1",
            transports=fixed.transports,
            name=name.decode(),
            created=fixed.created,
            last_used=None if last == "-" else float(last),
        )
    except (msgspec.DecodeError, ValueError, UnicodeDecodeError):
        # A field written by something else: treated as no passkey, never as a crash.
        return None
