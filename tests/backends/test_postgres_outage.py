"""The PostgreSQL session store when its server goes away, freezes, comes back, or is shared."""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import asyncpg
import pytest

from sessionauth.backends.postgres.sessions import PostgresStore
from sessionauth.errors import StoreUnavailable
from sessionauth.principal import Principal, PrincipalChange, new_epoch
from sessionauth.record import FORMAT_VERSION, RecordUpdate, SessionRecord
from sessionauth.tokens import new_token, storage_id
from tests.support.clock import FakeClock
from tests.support.services import PostgresServer

pytestmark = pytest.mark.postgres

# Generous bounds: they catch hangs, not slowness. The store's own timeout is far shorter.
FAIL_WITHIN = 5.0
RECOVER_WITHIN = 30.0
STORE_TIMEOUT = 1.0


def record(now: float, *, user: str = "user-1", ttl: float = 3600.0, **data: Any) -> SessionRecord:
    return SessionRecord(
        data=dict(data), created=now, seen=now, issued=now, expires=now + ttl, user_id=user
    )


def every_operation(store: PostgresStore, sid: str) -> dict[str, Callable[[], Awaitable[object]]]:
    """One call of each store operation, by name."""
    now = time.time()
    change = RecordUpdate(set={"a": 2}, delete=(), seen=now, expires=now + 3600)
    principal = Principal(epoch=new_epoch(), role="user")
    rotation = PrincipalChange(fallback_role="user", fallback_disabled=False, rotate=True)
    return {
        "load": lambda: store.load(sid),
        "create": lambda: store.create(secrets.token_hex(16), record(now)),
        "update": lambda: store.update(sid, change),
        "touch": lambda: store.touch(sid, seen=now, expires=now + 3600),
        "delete": lambda: store.delete(secrets.token_hex(16)),
        "delete_login": lambda: store.delete(storage_id(new_token("user-1"))),
        "list_user": lambda: store.list_user("user-1"),
        "principal": lambda: store.principal("user-1"),
        "install_principal": lambda: store.install_principal("user-1", principal),
        "change_principal": lambda: store.change_principal("user-1", rotation),
        "purge_expired": lambda: store.purge_expired(),
        "ping": lambda: store.ping(),
    }


async def assert_unavailable(operation: Awaitable[object]) -> None:
    """Assert ``operation`` raises StoreUnavailable, and does so well before FAIL_WITHIN."""
    with pytest.raises(StoreUnavailable):
        await asyncio.wait_for(operation, FAIL_WITHIN)


async def load_when_back(store: PostgresStore, sid: str) -> SessionRecord | None:
    """Poll ``load`` until the store answers again; fail after RECOVER_WITHIN seconds."""
    deadline = time.monotonic() + RECOVER_WITHIN
    while True:
        try:
            return await store.load(sid)
        except StoreUnavailable:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.05)


@pytest.fixture
async def own_store(private_postgres: PostgresServer) -> AsyncIterator[PostgresStore]:
    store = PostgresStore.from_url(private_postgres.dsn, timeout=STORE_TIMEOUT)
    yield store
    await store.aclose()


@pytest.fixture
async def shared_table(postgres_dsn: str) -> AsyncIterator[str]:
    name = f"sessions_{secrets.token_hex(6)}"
    yield name
    connection = await asyncpg.connect(postgres_dsn)
    try:
        await connection.execute(f"DROP TABLE IF EXISTS {name}, {name}_principals")
    finally:
        await connection.close()


async def test_every_operation_raises_store_unavailable_while_the_server_is_down(
    private_postgres: PostgresServer, own_store: PostgresStore
) -> None:
    """With the server stopped, each operation raises StoreUnavailable promptly, never hangs."""
    sid = secrets.token_hex(16)
    await own_store.create(sid, record(time.time(), a=1))
    await asyncio.to_thread(private_postgres.stop)
    for name, call in every_operation(own_store, sid).items():
        try:
            await assert_unavailable(call())
        except BaseException as exc:
            exc.add_note(f"store operation: {name}")
            raise


async def test_the_same_store_serves_again_after_the_server_restarts(
    private_postgres: PostgresServer, own_store: PostgresStore
) -> None:
    """After stop and start, the same store object loads the kept session and writes again."""
    sid = secrets.token_hex(16)
    await own_store.create(sid, record(time.time(), a=1))
    await asyncio.to_thread(private_postgres.stop)
    await assert_unavailable(own_store.load(sid))
    await asyncio.to_thread(private_postgres.start)
    loaded = await load_when_back(own_store, sid)
    assert loaded is not None
    assert loaded.data == {"a": 1}
    for call in every_operation(own_store, sid).values():
        await call()


async def test_a_store_built_while_the_server_is_down_opens_once_it_is_up(
    private_postgres: PostgresServer,
) -> None:
    """First use against a stopped server fails fast; a later use opens the pool and table."""
    await asyncio.to_thread(private_postgres.stop)
    store = PostgresStore.from_url(private_postgres.dsn, timeout=STORE_TIMEOUT)
    try:
        await assert_unavailable(store.ping())
        await asyncio.to_thread(private_postgres.start)
        assert await load_when_back(store, "no-such-session") is None
        sid = secrets.token_hex(16)
        await store.create(sid, record(time.time(), a=1))
        assert await store.load(sid) is not None
    finally:
        await store.aclose()


async def test_a_frozen_backend_costs_one_timeout_then_the_store_recovers(
    own_store: PostgresStore, private_postgres: PostgresServer
) -> None:
    """A server process that stops answering mid-query makes load fail, not hang, then heal."""
    sid = secrets.token_hex(16)
    await own_store.create(sid, record(time.time(), a=1))
    admin = await asyncpg.connect(private_postgres.dsn)
    try:
        backends = await admin.fetch(
            "SELECT pid FROM pg_stat_activity WHERE application_name = 'sessionauth'"
        )
        pids = [row["pid"] for row in backends]
        assert pids
        for pid in pids:
            os.kill(pid, signal.SIGSTOP)
        try:
            await assert_unavailable(own_store.load(sid))
        finally:
            for pid in pids:
                os.kill(pid, signal.SIGCONT)
    finally:
        await admin.close()
    loaded = await load_when_back(own_store, sid)
    assert loaded is not None
    assert loaded.data == {"a": 1}


async def test_a_query_stuck_on_a_lock_raises_within_the_timeout(
    postgres_dsn: str, shared_table: str
) -> None:
    """An update blocked by another transaction's row lock raises instead of waiting on."""
    store = PostgresStore.from_url(postgres_dsn, table=shared_table, timeout=0.5)
    sid = secrets.token_hex(16)
    try:
        await store.create(sid, record(time.time(), a=1))
        blocker = await asyncpg.connect(postgres_dsn)
        try:
            async with blocker.transaction():
                await blocker.execute(
                    f"SELECT 1 FROM {shared_table} WHERE id = $1 FOR UPDATE",  # noqa: S608 - ours
                    sid,
                )
                now = time.time()
                change = RecordUpdate(set={"a": 2}, delete=(), seen=now, expires=now + 60)
                await assert_unavailable(store.update(sid, change))
        finally:
            await blocker.close()
        loaded = await store.load(sid)
        assert loaded is not None
        # The cancel request races the lock's release: a timed-out write may or may not land.
        assert loaded.data in ({"a": 1}, {"a": 2})
    finally:
        await store.aclose()


async def test_concurrent_purges_from_two_stores_delete_each_expired_row_once(
    postgres_dsn: str, shared_table: str
) -> None:
    """Two replicas purging at once delete every expired row exactly once, and no live one."""
    clock = FakeClock()
    first = PostgresStore.from_url(postgres_dsn, table=shared_table, clock=clock)
    second = PostgresStore.from_url(postgres_dsn, table=shared_table, clock=clock)
    expired, live = 3000, 50
    try:
        await first.ping()  # creates the table
        connection = await asyncpg.connect(postgres_dsn)
        try:
            await connection.execute(
                f"INSERT INTO {shared_table}"  # noqa: S608 - a generated table name
                " (id, user_id, created, seen, issued, expires, data, meta, version)"
                " SELECT 'sid-' || n, NULL, $1::float8, $1::float8, $1::float8,"
                " $1::float8 + CASE WHEN n <= $2 THEN 10 ELSE 3600 END, '{}',"
                # meta holds [binding, meta]; the binding is the id's last 11 characters.
                " jsonb_build_array(right('sid-' || n, 11), '{}'::jsonb), $4"
                " FROM generate_series(1, $3::int) AS n",
                clock(),
                expired,
                expired + live,
                FORMAT_VERSION,
            )
        finally:
            await connection.close()
        clock.advance(60)
        counts = await asyncio.gather(
            first.purge_expired(batch_size=40), second.purge_expired(batch_size=40)
        )
        assert sum(counts) == expired
        assert await first.purge_expired() == 0
        assert await second.load(f"sid-{expired + 1}") is not None
    finally:
        await first.aclose()
        await second.aclose()


async def test_several_processes_can_create_the_table_at_once(
    postgres_dsn: str, shared_table: str
) -> None:
    """Stores starting together on a missing table all open; the table is created once."""
    stores = [PostgresStore.from_url(postgres_dsn, table=shared_table) for _ in range(6)]
    try:
        await asyncio.gather(*(store.ping() for store in stores))
        sid = secrets.token_hex(16)
        await stores[0].create(sid, record(time.time(), a=1))
        assert await stores[-1].load(sid) is not None
    finally:
        for store in stores:
            await store.aclose()


async def test_an_injected_pool_is_used_and_left_open(postgres_dsn: str, shared_table: str) -> None:
    """A store on the caller's pool creates its table, serves, and aclose leaves the pool open."""
    pool = await asyncpg.create_pool(postgres_dsn, min_size=1, max_size=2)
    try:
        store = PostgresStore(pool, table=shared_table)
        sid = secrets.token_hex(16)
        await store.create(sid, record(time.time(), a=1))
        assert await store.load(sid) is not None
        await store.aclose()
        assert await pool.fetchval("SELECT 1") == 1
        await assert_unavailable(store.load(sid))
    finally:
        await pool.close()
