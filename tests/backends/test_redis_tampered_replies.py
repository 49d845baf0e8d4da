"""Replies tampered with between Redis and the store never hand a request another user's session.

A proxy written for these tests (:mod:`tests.support.redis_proxy`) sits between the Redis store
and a real Redis and swaps two replies, or slips a frame between two, on the read connection.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from sessionauth.backends.redis.sessions import RedisStore
from tests.support.records import new_sid, record
from tests.support.redis_proxy import RedisProxy, redis_proxy
from tests.support.services import RedisServer

pytestmark = pytest.mark.redis

GUARD = 5.0  # seconds; longer is a hang
# A client-tracking invalidation as RESP3 delivers it, and an array no GET is ever answered with.
PUSH_FRAME = b">2\r\n$10\r\ninvalidate\r\n*1\r\n$4\r\ntp:x\r\n"
ARRAY_FRAME = b"*1\r\n$1\r\nx\r\n"


@pytest.fixture
async def proxy(private_redis: RedisServer) -> AsyncIterator[RedisProxy]:
    async with redis_proxy(private_redis.host, private_redis.port) as started:
        yield started


@pytest.fixture
async def sessions(proxy: RedisProxy) -> AsyncIterator[tuple[RedisStore, list[str]]]:
    """A store reached through the proxy, holding one session each for users 1 and 2."""
    store = RedisStore.from_url(proxy.url, prefix="tp:")
    sids = [new_sid("1"), new_sid("2")]
    for user, sid in enumerate(sids, start=1):
        await store.create(sid, record(str(user)))
    # The read connection is open (its handshake done) before any reply is tampered with.
    assert await owners(store, sids) == ["1", "2"]
    try:
        yield store, sids
    finally:
        await store.aclose()


async def owners(store: RedisStore, sids: list[str]) -> list[str | None]:
    """Load every session at once (one pipelined write); return each one's user, or None."""
    loaded = await asyncio.wait_for(asyncio.gather(*(store.load(sid) for sid in sids)), GUARD)
    return [None if found is None else found.user_id for found in loaded]


async def test_swapped_replies_are_no_session_not_the_other_users(
    proxy: RedisProxy, sessions: tuple[RedisStore, list[str]], caplog: pytest.LogCaptureFixture
) -> None:
    """Each of two swapped replies holds the other's record: both are refused and logged."""
    store, sids = sessions
    proxy.swap_next_two_replies()
    with caplog.at_level("ERROR", logger="sessionauth.stores"):
        assert await owners(store, sids) == [None, None]
    assert proxy.tampered.is_set()
    logged = " ".join(entry.getMessage() for entry in caplog.records)
    assert sids[0] in logged
    assert sids[1] in logged
    assert await owners(store, sids) == ["1", "2"]  # untampered replies are served again


async def test_a_push_frame_between_replies_answers_no_read(
    proxy: RedisProxy, sessions: tuple[RedisStore, list[str]], private_redis: RedisServer
) -> None:
    """An invalidation slipped between two replies is consumed: each read gets its own reply.

    Consumed, not taken for garbage: the read connection is kept (no read is sent twice).
    """
    store, sids = sessions
    admin = Redis.from_url(private_redis.url)
    try:
        connections = (await admin.info("stats"))["total_connections_received"]
        proxy.inject_after_next_reply(PUSH_FRAME)
        assert await owners(store, sids) == ["1", "2"]
        assert proxy.tampered.is_set()
        assert await owners(store, sids[::-1]) == ["2", "1"]
        assert (await admin.info("stats"))["total_connections_received"] == connections
    finally:
        await admin.aclose()


async def test_a_frame_no_read_is_answered_with_costs_the_connection_not_a_wrong_answer(
    proxy: RedisProxy, sessions: tuple[RedisStore, list[str]]
) -> None:
    """An array between two replies: the connection is dropped, the reads are sent again."""
    store, sids = sessions
    proxy.inject_after_next_reply(ARRAY_FRAME)
    assert await owners(store, sids) == ["1", "2"]
    assert proxy.tampered.is_set()
    assert await owners(store, sids[::-1]) == ["2", "1"]
