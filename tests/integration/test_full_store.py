"""A full store (Redis at maxmemory, SQLite at its size limit) raises StoreFull.

Reads are still served and a due touch is skipped, while creates and updates answer 503 and
``/readyz`` says degraded.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
import redis
from starlette.applications import Starlette

from sessionauth.backends.redis.attempts import RedisCounter
from sessionauth.backends.redis.sessions import RedisStore
from sessionauth.backends.sqlite.files import open_sqlite
from sessionauth.backends.sqlite.sessions import SQLiteStore
from sessionauth.errors import StoreFull
from sessionauth.middleware import SessionMiddleware
from sessionauth.policy import TimeoutPolicy
from sessionauth.record import RecordUpdate, SessionRecord
from sessionauth.server.readiness import ATTEMPT_COUNTER, Readiness
from sessionauth.server.watched_counter import WatchedCounter
from tests.support.apps import running_app
from tests.support.clock import FakeClock
from tests.support.services import RedisServer
from tests.unit.test_middleware import KEYRING, NAME, ROUTES, cookie_value

PASSWORD = "correct horse battery"


class Filler:
    """Fills a private Redis (``maxmemory`` 2 MB, ``noeviction``) until it refuses writes."""

    LIMIT = 2 * 1024 * 1024

    def __init__(self, server: RedisServer):
        self.client = redis.Redis(host=server.host, port=server.port)
        self.client.config_set("maxmemory-policy", "noeviction")
        self.client.config_set("maxmemory", self.LIMIT)

    def fill(self) -> None:
        # Filling up to the limit leaves Redis a few KB short of it, and the memory it frees on
        # its own (a client's query buffer shrunk by its cron) could let a small write through
        # a moment later. So once the data reaches the limit, the limit drops well below what
        # is used: every write is refused until drain() deletes the filler keys.
        for n in range(100_000):
            try:
                self.client.set(f"filler:{n}", b"x" * 16_384)
            except redis.exceptions.OutOfMemoryError:
                used = int(self.client.info("memory")["used_memory"])
                self.client.config_set("maxmemory", used - 512 * 1024)
                return
        raise AssertionError("Redis never filled up")

    def drain(self) -> None:
        for key in self.client.scan_iter("filler:*"):
            self.client.delete(key)
        self.client.config_set("maxmemory", self.LIMIT)


@pytest.fixture
def filler(private_redis: RedisServer) -> Iterator[Filler]:
    """A private Redis with a small maxmemory, and the means to fill and drain it."""
    full = Filler(private_redis)
    try:
        yield full
    finally:
        full.client.close()


@pytest.fixture
async def redis_store(private_redis: RedisServer) -> AsyncIterator[tuple[RedisStore, FakeClock]]:
    clock = FakeClock()
    store = RedisStore.from_url(private_redis.url, clock=clock)
    yield store, clock
    await store.aclose()


async def test_a_full_redis_skips_a_due_touch_but_refuses_creates_and_updates(
    filler: Filler, redis_store: tuple[RedisStore, FakeClock]
) -> None:
    """At maxmemory: a read with a due touch is served (skip counted), writes answer 503."""
    store, clock = redis_store
    skipped: list[StoreFull] = []
    policy = TimeoutPolicy(idle_timeout=3600, absolute_timeout=86400, touch_interval=60)
    app = SessionMiddleware(
        Starlette(routes=ROUTES),
        store=store,
        keyring=KEYRING,
        clock=clock,
        policy=policy,
        on_touch_skipped=skipped.append,
    )
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="https://testserver") as client:
        cookie = cookie_value(await client.get("/login"))
        client.cookies.clear()
        headers = {"cookie": f"{NAME}={cookie}"}
        filler.fill()
        clock.advance(120)  # the touch is due
        read = await client.get("/read", headers=headers)
        assert read.status_code == 200
        assert read.json()["user"] == "1"
        assert len(skipped) == 1
        assert (await client.get("/write?x=1", headers=headers)).status_code == 503
        assert (await client.get("/login?user=2")).status_code == 503
        filler.drain()
        assert (await client.get("/write?x=1", headers=headers)).status_code == 200
        assert len(skipped) == 1


async def test_reads_between_refused_writes_do_not_end_the_logged_outage(
    filler: Filler, redis_store: tuple[RedisStore, FakeClock], caplog: pytest.LogCaptureFixture
) -> None:
    """50 refused logins between served reads: one line for the full store, one when it ends."""
    store, clock = redis_store
    app = SessionMiddleware(Starlette(routes=ROUTES), store=store, keyring=KEYRING, clock=clock)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="https://testserver") as client:
        cookie = cookie_value(await client.get("/login"))
        client.cookies.clear()
        headers = {"cookie": f"{NAME}={cookie}"}
        filler.fill()
        with caplog.at_level(logging.INFO, logger="sessionauth"):
            for _ in range(50):
                assert (await client.get("/read", headers=headers)).status_code == 200
                assert (await client.get("/login?user=2")).status_code == 503
            filler.drain()
            assert (await client.get("/login?user=2")).status_code == 200
    messages = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(messages) == 2, messages
    assert messages[0].startswith("session store writes unavailable: Redis session store is full")
    assert messages[1].startswith("session store writes available again after ")
    assert "50 requests failed" in messages[1]


async def test_a_full_redis_raises_store_full_on_create(
    filler: Filler, redis_store: tuple[RedisStore, FakeClock]
) -> None:
    """Redis's OOM reply on a create is StoreFull; a load still answers."""
    store, clock = redis_store
    now = clock()
    record = SessionRecord(data={"a": 1}, created=now, seen=now, issued=now, expires=now + 60)
    sid = secrets.token_hex(32)
    await store.create(sid, record)
    filler.fill()
    with pytest.raises(StoreFull):
        await store.create(secrets.token_hex(32), record)
    assert await store.load(sid) is not None


async def test_a_sqlite_file_at_its_size_limit_raises_store_full(tmp_path: Path) -> None:
    """SQLite's "database or disk is full" (max_page_count reached) is StoreFull; reads work."""
    connection = await open_sqlite(str(tmp_path / "sessions.db"), timeout=2.0)
    store = SQLiteStore(connection)
    try:
        now = time.time()
        record = SessionRecord(data={"a": 1}, created=now, seen=now, issued=now, expires=now + 60)
        sid = secrets.token_hex(32)
        await store.create(sid, record)
        pages = (await connection.execute_fetchall("PRAGMA page_count"))[0][0]
        await connection.execute(f"PRAGMA max_page_count = {pages}")
        big = SessionRecord(
            data={"blob": "x" * 100_000}, created=now, seen=now, issued=now, expires=now + 60
        )
        with pytest.raises(StoreFull):
            await store.create(secrets.token_hex(32), big)
        change = RecordUpdate(set={"blob": "y" * 100_000}, delete=(), seen=now, expires=now + 60)
        with pytest.raises(StoreFull):
            await store.update(sid, change)
        assert await store.load(sid) is not None
    finally:
        await store.aclose()
        await connection.close()


async def test_readyz_is_degraded_not_503_while_the_store_refuses_writes(
    filler: Filler, private_redis: RedisServer, tmp_path: Path
) -> None:
    """A full store: login 503, signed-in reads 200, /readyz 200 degraded; then back to ok."""
    async with running_app(tmp_path, store_url=private_redis.url) as app:
        auth = app.state.authenticator
        await auth.users.create("a@example.com", await auth.hasher.hash(PASSWORD))
        await auth.users.create("b@example.com", await auth.hasher.hash(PASSWORD))
        transport = httpx.ASGITransport(app=app)
        async with (
            httpx.AsyncClient(transport=transport, base_url="http://testserver") as alice,
            httpx.AsyncClient(transport=transport, base_url="http://testserver") as bob,
        ):
            body = {"email": "a@example.com", "password": PASSWORD}
            assert (await alice.post("/login", json=body)).status_code == 200
            filler.fill()
            body = {"email": "b@example.com", "password": PASSWORD}
            assert (await bob.post("/login", json=body)).status_code == 503
            assert (await alice.get("/dashboard")).status_code == 200
            ready = await bob.get("/readyz")
            assert ready.status_code == 200
            assert ready.json()["status"] == "degraded"
            # The login's first write is its attempt reservation, in the same Redis: whichever
            # of the two refused it is the degraded check.
            refused = {
                name: check
                for name, check in ready.json()["checks"].items()
                if check["status"] == "degraded"
            }
            assert set(refused) <= {"session_store_writes", "attempt_counter_writes"}, refused
            assert refused, ready.json()
            assert all("OutOfMemoryError" in check["reason"] for check in refused.values())
            filler.drain()
            assert (await bob.post("/login", json=body)).status_code == 200
            ready = await bob.get("/readyz")
            assert ready.json()["status"] == "ok"


async def test_a_full_attempt_counter_is_reported_degraded_until_it_takes_writes(
    filler: Filler, private_redis: RedisServer
) -> None:
    """WatchedCounter: a refused reservation makes the counter degraded, the next one ok."""
    readiness = Readiness()
    async with RedisCounter.from_url(private_redis.url, clock=FakeClock()) as inner:
        counter = WatchedCounter(inner, readiness)
        assert (await counter.reserve("a:first", 60, 5))[0]
        assert readiness.report()["status"] == "ok"
        filler.fill()
        with pytest.raises(StoreFull):
            await counter.reserve("a:second", 60, 5)
        report = readiness.report()
        assert report["status"] == "degraded"
        assert "OutOfMemoryError" in report["checks"][ATTEMPT_COUNTER]["reason"]
        assert (await counter.count("a:first"))[0] == 1  # reads still pass through
        filler.drain()
        assert (await counter.reserve("a:second", 60, 5))[0]
        assert readiness.report()["status"] == "ok"
