"""Out-of-band frames never answer a read: client-tracking pushes aimed at the read connection.

Redis 6+ lets any client turn on tracking with ``REDIRECT <id>``: the invalidation messages then
go to connection ``<id>``, in RESP3 as push frames mixed with its replies. A read connection
that matched replies by order alone took such a frame for the oldest read's reply and shifted
every later reply by one: a request got another user's session. These tests aim a stream of
invalidations at the store's own read connection while many reads are in flight, against a real
Redis, at the pipeline, the store and the reference server.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis

from sessionauth.backends.redis.reads import ReadPipeline
from sessionauth.backends.redis.sessions import RedisStore
from tests.support.apps import running_app
from tests.support.records import new_sid, record, sign_in
from tests.support.services import RedisServer

pytestmark = pytest.mark.redis

READERS = 8
KEYS = 40
PASSWORD = "correct horse battery"
NAME = "sessionauth-reads-under-test"  # the client name that singles out the read connection
PACE = 10  # each reader waits for a fresh invalidation every PACE reads
GUARD = 10.0  # seconds; a stream that stalls this long fails the test


async def read_connection_id(admin: Redis) -> int:
    """The id of the one connection named ``NAME`` that has sent a command."""
    for entry in await admin.client_list():
        if entry.get("name") == NAME and entry.get("cmd") in {"get", "hget", "hmget"}:
            return int(entry["id"])
    raise AssertionError(f"no read connection named {NAME} in CLIENT LIST")


class Invalidations:
    """Counts of the invalidation stream, and a way for readers to let it keep pace."""

    def __init__(self) -> None:
        self.writes = 0
        self.aimed = 0  # how many read connections the stream was aimed at (1 = never replaced)
        self._changed = asyncio.Condition()

    async def wrote(self) -> None:
        async with self._changed:
            self.writes += 1
            self._changed.notify_all()

    async def after_next_write(self) -> None:
        """Return once one more invalidation has been sent: reads and pushes interleave."""
        async with asyncio.timeout(GUARD), self._changed:
            seen = self.writes
            await self._changed.wait_for(lambda: self.writes > seen)


@contextlib.asynccontextmanager
async def invalidations_aimed_at_reads(url: str, key: bytes) -> AsyncIterator[Invalidations]:
    """Keep writing ``key`` with tracking redirected to the read connection, until the block ends.

    Each write sends the read connection an invalidation. Should the read connection be replaced
    (a connection that choked on a frame is closed), the redirect follows the new one, so the
    stream never stops.
    """
    admin = Redis.from_url(url)
    tracker = Redis.from_url(url, single_connection_client=True, protocol=3)
    writer = Redis.from_url(url)
    stream = Invalidations()
    stop = asyncio.Event()

    async def aim() -> int:
        target = await read_connection_id(admin)
        await tracker.execute_command("CLIENT", "TRACKING", "OFF")
        await tracker.execute_command(
            "CLIENT", "TRACKING", "ON", "REDIRECT", target, "BCAST", "PREFIX", key
        )
        stream.aimed += 1
        return target

    async def write_forever() -> None:
        target = await aim()
        while not stop.is_set():
            await writer.set(key + b"x", b"invalidate-me")
            await stream.wrote()
            if stream.writes % 25 == 0 and await read_connection_id(admin) != target:
                target = await aim()

    task = asyncio.create_task(write_forever())
    try:
        yield stream
    finally:
        stop.set()
        await task
        for client in (tracker, writer, admin):
            await client.aclose()


async def hammer(
    stream: Invalidations,
    read: Callable[[int], Awaitable[Any]],
    check: Callable[[int, Any], bool],
    total: int,
) -> tuple[int, int]:
    """Run ``total`` reads from ``READERS`` loops; return the (wrong, failed) counts.

    Each loop waits for a fresh invalidation every ``PACE`` reads, so pushes arrive all along.
    """
    wrong = failed = 0

    async def loop(reader: int) -> None:
        nonlocal wrong, failed
        for done, n in enumerate(range(reader, total, READERS)):
            if done % PACE == 0:
                await stream.after_next_write()
            index = n % KEYS
            try:
                value = await read(index)
            except Exception:
                failed += 1
                continue
            if not check(index, value):
                wrong += 1

    await asyncio.gather(*(loop(reader) for reader in range(READERS)))
    return wrong, failed


async def test_the_pipeline_never_hands_a_read_an_invalidation_or_another_keys_value(
    private_redis: RedisServer,
) -> None:
    """12,000 GETs while invalidations stream at the read connection: every reply is its own."""
    url = f"{private_redis.url}?client_name={NAME}"
    admin = Redis.from_url(private_redis.url)
    client = Redis.from_url(url)
    reads = ReadPipeline(client, timeout=2.0)
    await admin.mset({f"pt:k{n}": f"v{n}" for n in range(KEYS)})
    try:
        assert await reads.get(b"pt:k0") == b"v0"
        async with invalidations_aimed_at_reads(private_redis.url, b"pt:") as stream:
            wrong, failed = await hammer(
                stream,
                lambda n: reads.get(f"pt:k{n}".encode()),
                lambda n, value: value == f"v{n}".encode(),
                12_000,
            )
        assert stream.writes >= 12_000 // READERS // PACE  # pushes came all along the reads
        # Every reply its own, no read failed, and no frame ever cost the connection.
        assert (wrong, failed, stream.aimed) == (0, 0, 1)
    finally:
        await reads.aclose()
        await client.aclose()
        await admin.aclose()


async def test_the_store_never_loads_another_users_session_under_invalidations(
    private_redis: RedisServer,
) -> None:
    """10,000 store loads of 40 users' sessions under invalidations: each its own user's."""
    url = f"{private_redis.url}?client_name={NAME}"
    admin = Redis.from_url(private_redis.url)
    store = RedisStore.from_url(url, prefix="pt:")
    sids = [new_sid(str(n + 1)) for n in range(KEYS)]
    for n, sid in enumerate(sids):
        await sign_in(store, sid, record(str(n + 1)), role=f"role-{n + 1}")
    try:
        assert await store.load(sids[0]) is not None
        async with invalidations_aimed_at_reads(private_redis.url, b"pt:") as stream:
            wrong, failed = await hammer(
                stream,
                lambda n: store.load(sids[n]),
                lambda n, loaded: (
                    loaded is not None
                    and loaded.user_id == str(n + 1)
                    and loaded.principal is not None
                    and loaded.principal.role == f"role-{n + 1}"
                ),
                10_000,
            )
        assert stream.writes >= 10_000 // READERS // PACE
        assert (wrong, failed, stream.aimed) == (0, 0, 1)
    finally:
        await store.aclose()
        await admin.aclose()


@pytest.mark.parametrize("handed_in", [True, False], ids=["resp3-client", "resp3-url"])
async def test_the_read_connection_speaks_resp2_even_for_a_resp3_client(
    private_redis: RedisServer, handed_in: bool
) -> None:
    """A RESP3 client, handed in or asked for in the URL, still reads over a RESP2 connection.

    In RESP2 a connection that subscribes to nothing is sent no push frame at all; the store's
    other commands keep the client's protocol.
    """
    admin = Redis.from_url(private_redis.url)
    client = Redis.from_url(f"{private_redis.url}?client_name={NAME}", protocol=3)
    if handed_in:
        store = RedisStore(client, prefix="pt:")
    else:
        store = RedisStore.from_url(f"{private_redis.url}?client_name={NAME}&protocol=3")
    try:
        sid = new_sid("1")
        await sign_in(store, sid, record("1"))
        loaded = await store.load(sid)
        assert loaded is not None
        assert loaded.user_id == "1"
        spoken = {
            entry["cmd"]: entry["resp"]
            for entry in await admin.client_list()
            if entry.get("name") == NAME
        }
        assert spoken == {"hmget": "2", "evalsha": "3"}
    finally:
        await store.aclose()
        await client.aclose()
        await admin.aclose()


async def test_the_server_answers_every_user_as_themselves_under_invalidations(
    private_redis: RedisServer, tmp_path: Path
) -> None:
    """8 users x 150 GET /dashboard under invalidations: 1,200 answers, each the caller's id."""
    admin = Redis.from_url(private_redis.url)
    async with running_app(tmp_path, store_url=f"{private_redis.url}?client_name={NAME}") as app:
        auth = app.state.authenticator
        clients: list[tuple[int, httpx.AsyncClient]] = []
        for n in range(READERS):
            user = await auth.users.create(
                f"user{n}@example.com", await auth.hasher.hash(PASSWORD), role="user"
            )
            client = httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url="http://testserver"
            )
            login = {"email": f"user{n}@example.com", "password": PASSWORD}
            assert (await client.post("/login", json=login)).status_code == 200
            clients.append((user.id, client))
        try:
            assert (await clients[0][1].get("/dashboard")).status_code == 200
            answers: list[tuple[int, int, Any]] = []

            async def browse(user_id: int, client: httpx.AsyncClient) -> None:
                for done in range(150):
                    if done % PACE == 0:
                        await stream.after_next_write()
                    response = await client.get("/dashboard")
                    answers.append((user_id, response.status_code, response.json()))

            async with invalidations_aimed_at_reads(private_redis.url, b"sa:") as stream:
                await asyncio.gather(*(browse(user_id, client) for user_id, client in clients))
            assert stream.writes >= 150 // PACE
            assert len(answers) == READERS * 150
            others = [a for a in answers if a[1] == 200 and a[2] != {"userId": a[0]}]
            refused = [a for a in answers if a[1] != 200]
            # Neither another user's session nor a spurious 401 (a read answered wrongly).
            assert (len(others), len(refused)) == (0, 0)
        finally:
            for _, client in clients:
                await client.aclose()
            await admin.aclose()
