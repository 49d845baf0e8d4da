"""PostgreSQL's principals: the 0.1 upgrade, races on two pools, the cap's index, lock waits."""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest

from sessionauth.backends.binding import encode_bound_meta
from sessionauth.backends.postgres.sessions import PostgresStore
from sessionauth.backends.postgres.sql import STATEMENTS
from sessionauth.errors import SessionExists, StaleLogin, StoreUnavailable
from sessionauth.principal import Principal, PrincipalChange, new_epoch
from sessionauth.record import SessionRecord, encode_json
from sessionauth.tokens import new_token, storage_id
from tests.support.clock import FakeClock
from tests.support.records import sign_in

pytestmark = pytest.mark.postgres

DAY = 86400.0
ROTATE = PrincipalChange(fallback_role="user", fallback_disabled=False, rotate=True)


@pytest.fixture
async def table(postgres_dsn: str) -> AsyncIterator[str]:
    name = f"sessions_{secrets.token_hex(6)}"
    yield name
    connection = await asyncpg.connect(postgres_dsn)
    try:
        await connection.execute(f"DROP TABLE IF EXISTS {name}, {name}_principals")
    finally:
        await connection.close()


@pytest.fixture
async def admin(postgres_dsn: str) -> AsyncIterator[asyncpg.Connection]:
    """A connection of the test's own, as an operator or another process would have."""
    connection = await asyncpg.connect(postgres_dsn)
    try:
        yield connection
    finally:
        await connection.close()


def record(clock: FakeClock, user: str | None, *, epoch: str | None = None) -> SessionRecord:
    now = clock()
    return SessionRecord(
        data={"a": 1}, created=now, seen=now, issued=now, expires=now + DAY, user_id=user,
        epoch=epoch,
    )  # fmt: skip


def sid_of(user: str | None) -> str:
    return storage_id(new_token(user))


async def count_and_rows(admin: asyncpg.Connection, table: str, user: str) -> tuple[int, int]:
    """The principal's count, and the user's rows it should count (those with a version)."""
    count = await admin.fetchval(
        f"SELECT sessions FROM {table}_principals WHERE user_id = $1",  # noqa: S608 - ours
        user,
    )
    rows = await admin.fetchval(
        f"SELECT count(*) FROM {table} WHERE user_id = $1 AND version IS NOT NULL",  # noqa: S608
        user,
    )
    return count, rows


async def test_a_table_of_0_1_is_migrated_and_its_rows_are_no_sessions(
    postgres_dsn: str, table: str, admin: asyncpg.Connection
) -> None:
    """0.1's table gains the new columns on first use; its rows load as None, logins work."""
    # 0.1's table and INSERT (git show 8e71824:src/sessionauth/stores/postgres_sql.py).
    await admin.execute(
        f'CREATE TABLE {table} (id text COLLATE "C" PRIMARY KEY, user_id text COLLATE "C",'
        " created double precision NOT NULL, seen double precision NOT NULL,"
        " issued double precision NOT NULL, expires double precision NOT NULL,"
        " data jsonb NOT NULL, meta jsonb NOT NULL)"
    )
    clock = FakeClock()
    old = {sid_of("7"): "7", sid_of(None): None}
    for sid, user in old.items():
        stored = record(clock, user)
        await admin.execute(
            f"INSERT INTO {table} (id, user_id, created, seen, issued, expires, data, meta)"  # noqa: S608
            " VALUES ($1, $2, $3, $4, $5, $6, $7::text::jsonb, $8::text::jsonb)",
            sid, user, stored.created, stored.seen, stored.issued, stored.expires,
            encode_json({"role": "admin"}), encode_bound_meta(sid, {}),
        )  # fmt: skip
    store = PostgresStore.from_url(postgres_dsn, table=table, clock=clock)
    try:
        assert [await store.load(sid) for sid in old] == [None, None]
        fresh = sid_of("7")
        await sign_in(store, fresh, record(clock, "7"))
        assert await store.load(fresh) is not None
        assert [sid for sid, _ in (await store.list_user("7")).sessions] == [fresh]
        clock.advance(2 * DAY)
        assert await store.purge_expired() == 3
        assert await count_and_rows(admin, table, "7") == (0, 0)
    finally:
        await store.aclose()


async def test_logins_racing_rotations_on_two_pools_are_never_served(
    postgres_dsn: str, table: str, admin: asyncpg.Connection
) -> None:
    """20 creates racing 20 rotations from another pool: each is refused or deleted, never left."""
    clock = FakeClock()
    logins = PostgresStore.from_url(postgres_dsn, table=table, clock=clock)
    changes = PostgresStore.from_url(postgres_dsn, table=table, clock=clock)
    try:
        principal = await logins.install_principal("r", Principal(epoch=new_epoch(), role="user"))
        await changes.ping()
        outcomes = set()
        for _ in range(20):
            sid = sid_of("r")
            results = await asyncio.gather(
                logins.create(sid, record(clock, "r", epoch=principal.epoch)),
                changes.change_principal("r", ROTATE),
                return_exceptions=True,
            )
            assert isinstance(results[0], Principal | StaleLogin)
            assert not isinstance(results[1], BaseException)
            outcomes.add(type(results[0]))
            principal = results[1][0]
            assert await logins.load(sid) is None
            assert await changes.load(sid) is None
        assert await count_and_rows(admin, table, "r") == (0, 0)
    finally:
        await logins.aclose()
        await changes.aclose()


async def test_logouts_rotations_logins_and_purges_together_never_deadlock(
    postgres_dsn: str, table: str, admin: asyncpg.Connection
) -> None:
    """Every kind of write of one user's rows, at once on two pools, completes; the count holds."""
    clock = FakeClock()
    first = PostgresStore.from_url(postgres_dsn, table=table, clock=clock, max_sessions=5)
    second = PostgresStore.from_url(postgres_dsn, table=table, clock=clock, max_sessions=5)
    try:
        sids = [sid_of("d") for _ in range(30)]
        for sid in sids[:10]:
            await sign_in(first, sid, record(clock, "d"))
        clock.advance(DAY + 1)  # the first ten are expired: the purge has work
        for _ in range(3):
            principal = await first.principal("d")
            assert principal is not None
            calls: list[Any] = [
                first.create(sid, record(clock, "d", epoch=principal.epoch)) for sid in sids[10:20]
            ]
            calls += [second.delete(sid) for sid in sids[5:15]]
            calls += [second.change_principal("d", ROTATE), first.purge_expired(batch_size=2)]
            results = await asyncio.gather(*calls, return_exceptions=True)
            unexpected = [r for r in results if isinstance(r, BaseException)]
            assert all(isinstance(r, StaleLogin | SessionExists) for r in unexpected), unexpected
        count, rows = await count_and_rows(admin, table, "d")
        assert count == rows
        assert rows <= 5
    finally:
        await first.aclose()
        await second.aclose()


async def test_the_cap_finds_the_oldest_through_the_index(
    postgres_dsn: str, table: str, admin: asyncpg.Connection
) -> None:
    """With 20,000 sessions of one user, the eviction reads the oldest from the user index."""
    store = PostgresStore.from_url(postgres_dsn, table=table)
    try:
        await store.ping()
    finally:
        await store.aclose()
    await admin.execute(
        f"INSERT INTO {table} (id, user_id, created, seen, issued, expires, data, meta, version)"  # noqa: S608
        " SELECT 's' || n, CASE WHEN n % 2 = 0 THEN 'big' ELSE 'u' || n END, n, n, n, n + 1e9,"
        " '{}', '[]', 2 FROM generate_series(1, 40000) AS n"
    )
    await admin.execute(f"ANALYZE {table}")
    evict = STATEMENTS["evict"].format(table=f'"{table}"', principals=f'"{table}_principals"')
    await admin.execute(
        f"INSERT INTO {table}_principals (user_id, epoch, sessions) VALUES ('big', 'e', 20001)"  # noqa: S608
    )
    plan = "\n".join(row[0] for row in await admin.fetch(f"EXPLAIN {evict}", "big", "s2", 20000))
    assert f"Index Scan using {table}_user_idx" in plan, plan
    assert "Seq Scan" not in plan, plan
    # Rows come in index order (created); only ties on created are sorted (incrementally), so
    # a LIMIT k reads about k index entries however many sessions the user has.
    assert "Presorted Key: " in plan, plan
    assert not [line for line in plan.splitlines() if line.strip().startswith("->  Sort ")], plan


async def test_a_login_stuck_on_a_locked_principal_fails_within_the_timeout(
    postgres_dsn: str, table: str, admin: asyncpg.Connection
) -> None:
    """A create waiting on a held principal row raises StoreUnavailable at once, then works."""
    clock = FakeClock()
    store = PostgresStore.from_url(postgres_dsn, table=table, clock=clock, timeout=0.5)
    try:
        principal = await store.install_principal("s", Principal(epoch=new_epoch(), role="user"))
        async with admin.transaction():
            await admin.execute(
                f"SELECT 1 FROM {table}_principals WHERE user_id = 's' FOR UPDATE"  # noqa: S608
            )
            started = time.monotonic()
            with pytest.raises(StoreUnavailable):
                await store.create(sid_of("s"), record(clock, "s", epoch=principal.epoch))
            assert time.monotonic() - started < 2.0
        sid = sid_of("s")
        assert await store.create(sid, record(clock, "s", epoch=principal.epoch)) == principal
        # The cancel request races the lock's release: the timed-out login may have landed,
        # but never half of it (a session without its count or the reverse).
        count, rows = await count_and_rows(admin, table, "s")
        assert count == rows
        assert rows in (1, 2)
    finally:
        await store.aclose()


async def test_a_replaced_expired_row_is_uncounted(
    postgres_dsn: str, table: str, admin: asyncpg.Connection
) -> None:
    """A login reusing an expired session's id replaces it, and the count stays the rows'."""
    clock = FakeClock()
    store = PostgresStore.from_url(postgres_dsn, table=table, clock=clock)
    try:
        sid = sid_of("x")
        stale = await sign_in(store, sid, record(clock, "x"))
        with pytest.raises(SessionExists):
            await store.create(sid, record(clock, "x", epoch=stale.epoch))
        clock.advance(DAY + 1)
        await store.create(sid, record(clock, "x", epoch=stale.epoch))
        assert await store.load(sid) is not None
        assert await count_and_rows(admin, table, "x") == (1, 1)
    finally:
        await store.aclose()


async def test_a_first_principal_without_rotation_keeps_set_user_sessions(
    postgres_dsn: str, table: str
) -> None:
    """A role change that installs the first principal ends nothing; a rotation then does."""
    clock = FakeClock()
    store = PostgresStore.from_url(postgres_dsn, table=table, clock=clock)
    try:
        sid = sid_of("n")
        assert await store.create(sid, record(clock, "n")) is None
        grant = PrincipalChange(fallback_role="user", fallback_disabled=False, role="admin")
        principal, ended = await store.change_principal("n", grant)
        assert (principal.role, ended) == ("admin", 0)
        loaded = await store.load(sid)
        assert loaded is not None
        assert loaded.principal is None  # a set_user() session has no rights, principal or not
        assert (await store.change_principal("n", ROTATE))[1] == 1
        assert await store.load(sid) is None
    finally:
        await store.aclose()
