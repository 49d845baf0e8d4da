"""ReadPipeline on a real Redis: every reply reaches its own read, whatever fails around it."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest
from redis import exceptions as rx
from redis.asyncio import Redis

from sessionauth.backends.redis.reads import ReadPipeline
from tests.support.services import RedisServer

pytestmark = pytest.mark.redis

TIMEOUT = 0.5  # the pipeline's timeout in these tests
GUARD = 5.0  # a read taking longer than this is a hang, and fails the test
KEYS = 50


@pytest.fixture
async def client(private_redis: RedisServer) -> AsyncIterator[Redis]:
    """A client of a private server holding ``k0``..``k49`` = ``v0``..``v49``."""
    opened = Redis.from_url(private_redis.url)
    await opened.mset({f"k{n}": f"v{n}" for n in range(KEYS)})
    try:
        yield opened
    finally:
        await opened.aclose()


@pytest.fixture
async def reads(client: Redis) -> AsyncIterator[ReadPipeline]:
    pipeline = ReadPipeline(client, timeout=TIMEOUT)
    try:
        yield pipeline
    finally:
        await pipeline.aclose()


async def read_all(reads: ReadPipeline, *, reverse: bool = False) -> list[bytes | None]:
    """Read every key, all at once; in reverse order, a reply given to the wrong read shows."""
    order = range(KEYS - 1, -1, -1) if reverse else range(KEYS)
    futures = [reads.get(f"k{n}".encode()) for n in order]
    replies = await asyncio.wait_for(asyncio.gather(*futures), GUARD)
    return replies[::-1] if reverse else replies


EXPECTED = [f"v{n}".encode() for n in range(KEYS)]


async def test_concurrent_reads_each_get_their_own_reply(
    reads: ReadPipeline, client: Redis
) -> None:
    """GET and HGET, present and absent, 50 at a time on one connection, in any order."""
    await client.hset("h", mapping={"f": "hv"})
    assert await read_all(reads) == EXPECTED
    mixed = await asyncio.gather(
        reads.hget(b"h", b"f"), reads.get(b"absent"), reads.hget(b"h", b"nope"), reads.get(b"k7")
    )
    assert mixed == [b"hv", None, None, b"v7"]
    clients = await client.client_list()
    assert len(clients) == 2  # this test's client, and the pipeline's one connection


async def test_abandoned_reads_do_not_shift_the_replies_of_later_ones(
    reads: ReadPipeline,
) -> None:
    """Callers that gave up (cancelled) still have their replies consumed, in order."""
    abandoned = [reads.get(f"k{n}".encode()) for n in range(0, KEYS, 2)]
    kept = [reads.get(f"k{n}".encode()) for n in range(1, KEYS, 2)]
    for future in abandoned[::3]:
        future.cancel()
    assert await asyncio.gather(*kept) == EXPECTED[1::2]
    assert await read_all(reads) == EXPECTED


async def test_a_connection_killed_while_idle_costs_no_failed_read(
    reads: ReadPipeline, client: Redis
) -> None:
    """The server closed our idle connection (restart, idle timeout): reads go on a new one."""
    assert await read_all(reads) == EXPECTED
    killed = await client.execute_command("CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes")
    assert killed == 1
    assert await read_all(reads) == EXPECTED


async def test_an_error_reply_fails_only_its_own_read(reads: ReadPipeline, client: Redis) -> None:
    """HGET on a string key is answered WRONGTYPE; the reads around it are answered right."""
    before, wrong, after = reads.get(b"k1"), reads.hget(b"k2", b"f"), reads.get(b"k3")
    assert await before == b"v1"
    with pytest.raises(rx.ResponseError, match="WRONGTYPE"):
        await wrong
    assert await after == b"v3"


async def test_a_frozen_server_fails_reads_in_time_then_replies_stay_matched(
    reads: ReadPipeline, private_redis: RedisServer
) -> None:
    """Reads to a frozen (SIGSTOP) server fail after the timeout.

    After it resumes, its late replies are never handed to newer reads: the connection that
    timed out was closed.
    """
    assert await read_all(reads) == EXPECTED
    private_redis.pause()
    try:
        started = time.monotonic()
        with pytest.raises(TimeoutError):
            await read_all(reads)
        elapsed = time.monotonic() - started
    finally:
        private_redis.resume()
    assert elapsed < TIMEOUT + 0.25
    assert await read_all(reads, reverse=True) == EXPECTED


async def test_a_stopped_server_fails_reads_fast_and_a_restarted_one_serves_them(
    private_redis: RedisServer,
) -> None:
    """Refused connections fail at once; once the server is back, reads succeed again."""
    client = Redis.from_url(private_redis.url)
    reads = ReadPipeline(client, timeout=TIMEOUT)
    try:
        await client.set(b"k", b"v")
        assert await reads.get(b"k") == b"v"
        private_redis.stop()
        started = time.monotonic()
        with pytest.raises(rx.ConnectionError):
            await asyncio.wait_for(reads.get(b"k"), GUARD)
        assert time.monotonic() - started < TIMEOUT
        private_redis.start()
        async with Redis.from_url(private_redis.url) as fresh:
            await fresh.set(b"k", b"again")  # the restarted server kept nothing
        assert await reads.get(b"k") == b"again"
    finally:
        await reads.aclose()
        await client.aclose()


async def test_closing_fails_pending_and_later_reads(client: Redis) -> None:
    """aclose answers every read: pending ones and later ones fail with ConnectionError."""
    reads = ReadPipeline(client, timeout=TIMEOUT)
    pending = reads.get(b"k1")
    await reads.aclose()
    with pytest.raises(rx.ConnectionError):
        await pending
    with pytest.raises(rx.ConnectionError):
        await reads.get(b"k1")
