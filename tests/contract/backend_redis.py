"""The Redis store under the contract suite, on the shared Redis, under a prefix of its own."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import msgspec
import pytest
from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster

from sessionauth.backends.binding import binding
from sessionauth.backends.redis.sessions import RedisStore
from sessionauth.errors import StoreUnavailable
from sessionauth.record import SessionRecord
from sessionauth.tokens import new_token, storage_id
from tests.contract.harness import Harness
from tests.support.clock import FakeClock

# A byte that msgpack never uses: no decoder accepts a value made of it.
INVALID_MSGPACK = b"\xc1"


async def delete_keys(client: Redis | RedisCluster, prefix: str) -> int:
    """Delete every key under ``prefix`` (SCAN MATCH, one key per DEL; never FLUSHDB).

    Works on Cluster too: the scan visits every master and each DEL goes to its key's slot.
    """
    if not prefix or any(char in prefix for char in "*?[]\\"):
        raise ValueError(f"refusing to delete by the prefix {prefix!r}: it must be literal")
    keys = [key async for key in client.scan_iter(match=f"{prefix}*", count=500)]
    for key in keys:
        await client.delete(key)
    return len(keys)


async def corrupt_session(client: Redis | RedisCluster, prefix: str, sid: str) -> None:
    """Overwrite the session's record (a user's hash field, or a string key) with bad bytes."""
    await write_raw(client, prefix, sid, INVALID_MSGPACK)


def location(prefix: str, sid: str) -> tuple[bytes, bytes]:
    """Where the store keeps the record of ``sid``: (key, hash field; ``b""`` for a string key).

    A user's session is the field named by the first 11 characters of its digest (the layout
    in :mod:`sessionauth.backends.redis.keys`).
    """
    group, dot, digest = sid.partition(".")
    if not dot:
        return f"{prefix}a:{sid}".encode(), b""
    return f"{prefix}u:{group}".encode(), digest[:11].encode()


async def write_raw(client: Redis | RedisCluster, prefix: str, sid: str, blob: bytes) -> None:
    """Store ``blob`` where the store keeps the record of ``sid``."""
    key, field = location(prefix, sid)
    if field:
        await client.hset(key, field, blob)  # type: ignore[misc]
    else:
        await client.set(key, blob, keepttl=True)


def encode_v1(record: SessionRecord, sid: str) -> bytes:
    """``record`` as sessionauth 0.1 stored it: an array without a format version or an epoch.

    The 8 elements of ``git show 8e71824:src/sessionauth/stores/redis_codec.py``.
    """
    created = round(record.created * 1000)
    return msgspec.msgpack.encode(
        [
            round(record.expires * 1000),
            created,
            round(record.seen * 1000) - created,
            round(record.issued * 1000) - created,
            record.user_id or "",
            msgspec.json.encode(record.meta).decode() if record.meta else "",
            {key: msgspec.json.encode(value).decode() for key, value in record.data.items()},
            binding(sid),
        ]
    )


async def read_raw(client: Redis | RedisCluster, prefix: str, sid: str) -> bytes:
    """The stored bytes of the record of ``sid``."""
    key, field = location(prefix, sid)
    blob = await (client.hget(key, field) if field else client.get(key))  # type: ignore[misc]
    assert isinstance(blob, bytes), f"no record stored for {sid}"
    return blob


async def until_replicas_acknowledge(store: RedisStore, *, within: float = 30.0) -> None:
    """Wait until a session ``create`` (which WAITs for replicas) succeeds.

    A replica that has just synced is listed as online, but the master streams to it only after
    its first acknowledgement, up to a second later; until then every WAIT times out.
    """
    deadline = time.monotonic() + within
    sid, now = storage_id(new_token()), time.time()
    probe = SessionRecord(data={}, created=now, seen=now, issued=now, expires=now + 60)
    while True:
        try:
            await store.create(sid, probe)
            break
        except StoreUnavailable:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.05)
    await store.delete(sid)


@asynccontextmanager
async def redis_harness(
    url: str, clock: FakeClock, prefix: str, **options: Any
) -> AsyncIterator[Harness]:
    """Yield a store on ``url`` under ``prefix``; afterwards delete every key under it."""
    store = RedisStore.from_url(url, clock=clock, prefix=prefix, **options)
    # A second store of our own for the backdoor and the cleanup: the suite closes the first.
    backdoor = RedisStore.from_url(url, clock=clock, prefix=prefix, wait_replicas=0)
    client = backdoor._client
    if store._wait_replicas:
        await until_replicas_acknowledge(store)

    async def corrupt(sid: str) -> None:
        await corrupt_session(client, prefix, sid)

    async def transplant(source: str, target: str) -> None:
        await write_raw(client, prefix, target, await read_raw(client, prefix, source))

    async def write_v1(sid: str, record: SessionRecord) -> None:
        await write_raw(client, prefix, sid, encode_v1(record, sid))
        if record.user_id is None:
            await client.pexpireat(f"{prefix}a:{sid}".encode(), round(record.expires * 1000))

    try:
        yield Harness(
            store=store,
            corrupt=corrupt,
            transplant=transplant,
            write_v1=write_v1,
            expires_by_itself=True,
        )
    finally:
        try:
            await delete_keys(client, prefix)
        finally:
            await backdoor.aclose()


@asynccontextmanager
async def open_harness(clock: FakeClock, request: pytest.FixtureRequest) -> AsyncIterator[Harness]:
    """Yield a store on the shared Redis (DB 13) under this test's own key prefix."""
    url: str = request.getfixturevalue("redis_url")
    prefix: str = request.getfixturevalue("redis_prefix")
    async with redis_harness(url, clock, prefix) as harness:
        yield harness
