"""SQLite's principals: the 0.1 upgrade, the count behind the cap, its index, its transactions."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiosqlite
import msgspec
import pytest

from sessionauth.backends.binding import encode_bound_meta
from sessionauth.backends.sqlite.session_sql import statements
from sessionauth.backends.sqlite.sessions import DEFAULT_TABLE, SQLiteStore
from sessionauth.errors import SessionExists, StaleLogin
from sessionauth.principal import Principal, PrincipalChange
from sessionauth.record import RecordUpdate, SessionRecord, encode_json
from sessionauth.tokens import new_token, storage_id
from tests.support.clock import FakeClock
from tests.support.records import sign_in

DAY = 86400.0
T = DEFAULT_TABLE
ROTATE = PrincipalChange(fallback_role="user", fallback_disabled=False, rotate=True)

# sessionauth 0.1's table and INSERT (git show 8e71824:src/sessionauth/stores/sqlite.py).
V1_SCHEMA = (
    f"CREATE TABLE {T} (id TEXT PRIMARY KEY NOT NULL, user_id TEXT,"
    " created REAL NOT NULL, seen REAL NOT NULL, issued REAL NOT NULL,"
    " expires REAL NOT NULL, data TEXT NOT NULL, meta TEXT NOT NULL) WITHOUT ROWID",
    f"CREATE INDEX {T}_user ON {T} (user_id, created) WHERE user_id IS NOT NULL",
    f"CREATE INDEX {T}_expires ON {T} (expires)",
)
V1_INSERT = (
    f"INSERT INTO {T} (id, data, user_id, created, seen, issued, expires, meta)"  # noqa: S608
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "sessions.db"


@pytest.fixture
async def store(db_path: Path, clock: FakeClock) -> AsyncIterator[SQLiteStore]:
    async with SQLiteStore.from_url(f"sqlite:///{db_path}", clock=clock, max_sessions=3) as opened:
        assert isinstance(opened, SQLiteStore)
        yield opened


def record(clock: FakeClock, user: str | None, *, ttl: float = DAY, **data: Any) -> SessionRecord:
    now = clock()
    return SessionRecord(
        data=dict(data), created=now, seen=now, issued=now, expires=now + ttl, user_id=user
    )


def sid_of(user: str | None) -> str:
    return storage_id(new_token(user))


async def raw(path: Path, sql: str, *params: Any) -> list[Any]:
    async with aiosqlite.connect(path, isolation_level=None) as db:
        return list(await db.execute_fetchall(sql, params))


async def count_matches_rows(path: Path, user: str) -> tuple[int, int]:
    """The principal's count, and the user's rows it should count (those with a version)."""
    [(count,)] = await raw(path, f"SELECT sessions FROM {T}_principals WHERE user_id = ?", user)  # noqa: S608
    [(rows,)] = await raw(
        path,
        f"SELECT count(*) FROM {T} WHERE user_id = ? AND version IS NOT NULL",  # noqa: S608
        user,
    )
    return count, rows


async def test_a_table_of_0_1_is_migrated_and_its_rows_are_no_sessions(
    db_path: Path, clock: FakeClock
) -> None:
    """0.1's rows stay in the upgraded table as no sessions; new logins work beside them."""
    for statement in V1_SCHEMA:
        await raw(db_path, statement)
    old_user, old_anonymous = sid_of("7"), sid_of(None)
    for sid, user in ((old_user, "7"), (old_anonymous, None)):
        stored = record(clock, user, role="admin")
        await raw(
            db_path,
            V1_INSERT,
            sid,
            encode_json({"role": ["admin"]}),
            user,
            stored.created,
            stored.seen,
            stored.issued,
            stored.expires,
            encode_bound_meta(sid, {}),
        )
    async with SQLiteStore.from_url(f"sqlite:///{db_path}", clock=clock) as store:
        assert await store.load(old_user) is None
        assert await store.load(old_anonymous) is None
        fresh = sid_of("7")
        await sign_in(store, fresh, record(clock, "7", cart=[1]))
        assert (await store.load(fresh)) is not None
        assert [sid for sid, _ in (await store.list_user("7")).sessions] == [fresh]
        columns = {row[1] for row in await raw(db_path, f"PRAGMA table_info({T})")}
        assert {"epoch", "version"} <= columns
        clock.advance(2 * DAY)
        assert await store.purge_expired() == 3
    assert await count_matches_rows(db_path, "7") == (0, 0)


async def test_the_cap_finds_the_oldest_through_the_index(
    store: SQLiteStore, db_path: Path
) -> None:
    """The eviction's lookup of the oldest sessions searches the (user_id, created) index."""
    await store.ping()
    evict = statements(T)["evict"]
    oldest = evict[evict.index("SELECT id") : evict.index(") RETURNING")]
    plan = " / ".join(
        row[3] for row in await raw(db_path, f"EXPLAIN QUERY PLAN {oldest}", "u", "s", 3)
    )
    assert f"SEARCH {T} USING COVERING INDEX {T}_user (user_id=?)" in plan, plan
    assert "TEMP B-TREE" not in plan, plan  # ordered by the index, no sort of the user's rows


async def test_the_count_follows_every_way_a_session_goes(
    store: SQLiteStore, db_path: Path, clock: FakeClock
) -> None:
    """Logins, the cap, a logout, a purge and a rotation each leave the count equal to the rows."""
    sids = []
    for _ in range(5):
        sids.append(sid_of("u"))
        await sign_in(store, sids[-1], record(clock, "u", ttl=10 if len(sids) == 4 else DAY))
        clock.advance(1)
    assert await count_matches_rows(db_path, "u") == (3, 3)
    assert [await store.load(sid) is None for sid in sids] == [True, True, False, False, False]
    await store.delete(sids[2])
    assert await count_matches_rows(db_path, "u") == (2, 2)
    clock.advance(20)
    assert await store.purge_expired() == 1
    assert await count_matches_rows(db_path, "u") == (1, 1)
    await sign_in(store, sid_of("u"), record(clock, "u"))
    _, deleted = await store.change_principal("u", msgspec.structs.replace(ROTATE, keep=sids[4]))
    assert deleted == 1
    assert await count_matches_rows(db_path, "u") == (1, 1)


async def test_a_refused_login_rolls_back_and_lets_other_writes_through(
    store: SQLiteStore, db_path: Path, clock: FakeClock
) -> None:
    """A create that fails after counting undoes its count; a write issued meanwhile persists."""
    live = sid_of("u")
    await sign_in(store, live, record(clock, "u"))
    other = sid_of(None)
    await store.create(other, record(clock, None, a=1))
    loaded = await store.load(live)
    assert loaded is not None
    update = RecordUpdate(set={"b": 2}, delete=(), seen=clock(), expires=clock() + DAY)
    results = await asyncio.gather(
        store.create(live, msgspec.structs.replace(record(clock, "u"), epoch=loaded.epoch)),
        store.update(other, update),
        return_exceptions=True,
    )
    assert isinstance(results[0], SessionExists)
    assert results[1] is True
    again = await store.load(other)
    assert again is not None
    assert again.data == {"a": 1, "b": 2}
    assert await count_matches_rows(db_path, "u") == (1, 1)


async def test_logins_racing_rotations_from_another_process_are_never_served(
    store: SQLiteStore, db_path: Path, clock: FakeClock
) -> None:
    """Creates on one connection racing rotations on another never leave a stale session."""
    principal = await store.install_principal("r", Principal(epoch="e" * 11, role="user"))
    async with SQLiteStore.from_url(f"sqlite:///{db_path}", clock=clock) as other:
        for _ in range(20):
            sid = sid_of("r")
            stamped = msgspec.structs.replace(record(clock, "r"), epoch=principal.epoch)
            results = await asyncio.gather(
                store.create(sid, stamped),
                other.change_principal("r", ROTATE),
                return_exceptions=True,
            )
            assert isinstance(results[0], Principal | StaleLogin)
            assert not isinstance(results[1], BaseException)
            principal = results[1][0]
            assert await store.load(sid) is None
            assert await other.load(sid) is None
    assert await count_matches_rows(db_path, "r") == (0, 0)


async def test_a_first_principal_without_rotation_keeps_set_user_sessions(
    store: SQLiteStore, clock: FakeClock
) -> None:
    """A role change that installs the first principal ends nothing; a rotation then does."""
    sid = sid_of("n")
    assert await store.create(sid, record(clock, "n", a=1)) is None
    grant = PrincipalChange(fallback_role="user", fallback_disabled=False, role="admin")
    principal, ended = await store.change_principal("n", grant)
    assert (principal.role, ended) == ("admin", 0)
    loaded = await store.load(sid)
    assert loaded is not None
    assert loaded.principal is None  # a set_user() session has no rights, principal or not
    assert (await store.change_principal("n", ROTATE))[1] == 1
    assert await store.load(sid) is None
