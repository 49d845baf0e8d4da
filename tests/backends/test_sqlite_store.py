"""SQLite-specific behaviour of SQLiteStore; the shared semantics are in tests/contract/."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiosqlite
import pytest

from sessionauth.backends.sqlite.files import database_path
from sessionauth.backends.sqlite.sessions import DEFAULT_TABLE, SQLiteStore
from sessionauth.errors import ConfigurationError, StoreError, StoreUnavailable
from sessionauth.principal import PrincipalChange
from sessionauth.record import RecordUpdate, SessionRecord
from sessionauth.tokens import new_token, storage_id
from tests.support.clock import FakeClock
from tests.support.records import sign_in

DAY = 86400.0


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "sessions.db"


@pytest.fixture
async def store(db_path: Path, clock: FakeClock) -> AsyncIterator[SQLiteStore]:
    async with SQLiteStore.from_url(f"sqlite:///{db_path}", clock=clock) as opened:
        assert isinstance(opened, SQLiteStore)
        yield opened


def record(
    clock: FakeClock, *, user: str | None = None, ttl: float = DAY, **data: Any
) -> SessionRecord:
    now = clock()
    return SessionRecord(
        data=dict(data), created=now, seen=now, issued=now, expires=now + ttl, user_id=user
    )


def change(clock: FakeClock, *, delete: tuple[str, ...] = (), **values: Any) -> RecordUpdate:
    return RecordUpdate(set=values, delete=delete, seen=clock(), expires=clock() + DAY)


def new_sid() -> str:
    return storage_id(new_token())


async def raw(path: Path, sql: str, *params: Any) -> list[Any]:
    async with aiosqlite.connect(path, isolation_level=None) as db:
        return list(await db.execute_fetchall(sql, params))


@pytest.mark.parametrize(
    ("url", "path"),
    [
        ("sqlite:///sessions.db", "sessions.db"),
        ("sqlite:///./data/sessions.db", "./data/sessions.db"),
        ("sqlite:////var/lib/app/sessions.db", "/var/lib/app/sessions.db"),
        ("SQLite:///sessions.db", "sessions.db"),
        ("sqlite:///:memory:", ":memory:"),
    ],
)
def test_database_path_reads_relative_absolute_and_memory_urls(url: str, path: str) -> None:
    """sqlite:///rel, sqlite:////abs and sqlite:///:memory: name the expected database."""
    assert database_path(url) == path


@pytest.mark.parametrize(
    "url",
    [
        "sqlite://",
        "sqlite:///",
        "sqlite://host/sessions.db",
        "sqlite:///data/",
        "sqlite:///sessions.db?mode=ro",
        "sqlite:///sessions.db#x",
        "postgresql:///sessions",
        "sessions.db",
    ],
)
async def test_bad_urls_are_configuration_errors(url: str) -> None:
    """A URL with another scheme, a host, no file or options is refused at start-up."""
    with pytest.raises(ConfigurationError):
        SQLiteStore.from_url(url)


@pytest.mark.parametrize("table", ["", "1sessions", "sessions; DROP TABLE users", 'a"b', "x" * 64])
async def test_bad_table_names_are_refused_before_touching_the_disk(
    db_path: Path, table: str
) -> None:
    """A table name that is not a plain identifier is refused and no file is created."""
    with pytest.raises(ConfigurationError):
        SQLiteStore.from_url(f"sqlite:///{db_path}", table=table)
    assert not await asyncio.to_thread(db_path.exists)


async def test_non_positive_timeout_is_refused(db_path: Path) -> None:
    """A zero or negative timeout could never be met, so it is refused."""
    with pytest.raises(ConfigurationError):
        SQLiteStore.from_url(f"sqlite:///{db_path}", timeout=0)


async def test_from_url_creates_parent_directories_and_a_wal_database(tmp_path: Path) -> None:
    """First use makes missing directories and leaves the file in WAL mode with the table."""
    path = tmp_path / "a" / "b" / "sessions.db"
    async with SQLiteStore.from_url(f"sqlite:///{path}") as store:
        assert not path.exists()  # nothing is opened before the first operation
        await store.ping()
        assert path.is_file()
        assert await raw(path, "PRAGMA journal_mode") == [("wal",)]
        tables = await raw(
            path, "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name"
        )
        assert tables == [(DEFAULT_TABLE,), (f"{DEFAULT_TABLE}_principals",)]


async def test_relative_url_resolves_against_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, clock: FakeClock
) -> None:
    """sqlite:///data/s.db opens data/s.db under the current directory."""
    monkeypatch.chdir(tmp_path)
    async with SQLiteStore.from_url("sqlite:///data/s.db", clock=clock) as store:
        await store.create(new_sid(), record(clock))
    assert (tmp_path / "data" / "s.db").is_file()


async def test_memory_url_keeps_sessions_for_the_store_lifetime(clock: FakeClock) -> None:
    """sqlite:///:memory: works as a private, throwaway database."""
    sid = new_sid()
    async with SQLiteStore.from_url("sqlite:///:memory:", clock=clock) as store:
        await store.create(sid, record(clock, a=1))
        loaded = await store.load(sid)
    assert loaded is not None
    assert loaded.data == {"a": 1}


async def test_directory_that_cannot_be_created_is_unavailable(tmp_path: Path) -> None:
    """A parent path that is a file cannot become a directory: the first use fails closed."""
    (tmp_path / "file").write_text("")
    async with SQLiteStore.from_url(f"sqlite:///{tmp_path}/file/sessions.db") as store:
        with pytest.raises(StoreUnavailable):
            await store.ping()


async def test_database_that_cannot_be_opened_is_unavailable(tmp_path: Path) -> None:
    """A path that is a directory cannot be opened as a database: StoreUnavailable."""
    async with SQLiteStore.from_url(f"sqlite:///{tmp_path}") as store:
        with pytest.raises(StoreUnavailable):
            await store.ping()


async def test_custom_table_name_is_used(db_path: Path, clock: FakeClock) -> None:
    """A configured table name holds the sessions instead of the default one."""
    sid = new_sid()
    async with SQLiteStore.from_url(f"sqlite:///{db_path}", table="my_sessions") as s:
        await s.create(sid, record(clock))
    assert await raw(db_path, "SELECT id FROM my_sessions") == [(sid,)]


async def test_update_replaces_objects_and_lists_instead_of_merging_them(
    store: SQLiteStore, clock: FakeClock
) -> None:
    """Assigning a dict or list replaces the old value wholesale; nested keys do not linger."""
    sid = new_sid()
    await store.create(sid, record(clock, prefs={"a": 1, "b": {"c": 2}}, cart=[1, 2, 3]))
    assert await store.update(sid, change(clock, prefs={"b": {"d": None}}, cart=[]))
    loaded = await store.load(sid)
    assert loaded is not None
    assert loaded.data == {"prefs": {"b": {"d": None}}, "cart": []}


@pytest.mark.parametrize("stored", ["[1]", '"text"', '{"a": 1}', '{"a": [1, 2]}', "{broken"])
async def test_rows_this_store_did_not_write_are_no_session_and_stay_dead(
    store: SQLiteStore, db_path: Path, clock: FakeClock, stored: str
) -> None:
    """Tampered data (not an object of one-element arrays) loads as None and is never revived."""
    sid = new_sid()
    await store.create(sid, record(clock, user="u1", a=1))
    await raw(db_path, f"UPDATE {DEFAULT_TABLE} SET data = ? WHERE id = ?", stored, sid)  # noqa: S608
    assert await store.load(sid) is None
    assert (await store.list_user("u1")).sessions == []
    if stored in ("[1]", '"text"', "{broken"):
        assert await store.update(sid, change(clock, a=2)) is False
    assert await store.load(sid) is None


async def test_create_replaces_a_dead_record_but_never_a_live_one(
    store: SQLiteStore, clock: FakeClock
) -> None:
    """An expired row with the same id is replaced; a live one makes create raise."""
    sid = new_sid()
    await store.create(sid, record(clock, ttl=10, old=True))
    with pytest.raises(StoreError):
        await store.create(sid, record(clock, new=True))
    clock.advance(10)
    await store.create(sid, record(clock, new=True))
    loaded = await store.load(sid)
    assert loaded is not None
    assert loaded.data == {"new": True}


async def test_two_stores_on_one_file_see_each_others_writes(
    store: SQLiteStore, db_path: Path, clock: FakeClock
) -> None:
    """Two stores on one file, like two worker processes, share sessions and revocations."""
    sid = storage_id(new_token("u1"))
    async with SQLiteStore.from_url(f"sqlite:///{db_path}", clock=clock) as other:
        await sign_in(store, sid, record(clock, user="u1", a=1))
        assert await other.update(sid, change(clock, b=2))
        loaded = await store.load(sid)
        assert loaded is not None
        assert loaded.data == {"a": 1, "b": 2}
        rotation = PrincipalChange(fallback_role="user", fallback_disabled=False, rotate=True)
        assert (await other.change_principal("u1", rotation))[1] == 1
        assert await store.load(sid) is None


async def test_fifty_writers_across_two_stores_all_persist(
    store: SQLiteStore, db_path: Path, clock: FakeClock
) -> None:
    """50 concurrent updates of different keys, split over two connections, all persist."""
    sid = new_sid()
    await store.create(sid, record(clock, base=0))
    async with SQLiteStore.from_url(f"sqlite:///{db_path}", clock=clock) as other:
        results = await asyncio.gather(
            *((store, other)[n % 2].update(sid, change(clock, **{f"k{n}": n})) for n in range(50))
        )
    assert all(results)
    loaded = await store.load(sid)
    assert loaded is not None
    assert loaded.data == {"base": 0, **{f"k{n}": n for n in range(50)}}


async def test_concurrent_loads_each_get_their_own_record(
    store: SQLiteStore, clock: FakeClock
) -> None:
    """32 concurrent loads of distinct and missing ids each return the right answer."""
    sids = [new_sid() for _ in range(32)]
    for n, sid in enumerate(sids[:24]):
        await store.create(sid, record(clock, n=n))
    loaded = await asyncio.gather(*(store.load(sid) for sid in sids))
    assert [r.data["n"] if r else None for r in loaded] == [*range(24), *[None] * 8]


@pytest.mark.parametrize(("expired", "statements"), [(25, 3), (20, 3), (0, 1)])
async def test_purge_deletes_in_batches_until_a_short_one(
    db_path: Path, clock: FakeClock, expired: int, statements: int
) -> None:
    """purge_expired deletes batch_size rows per statement, stopping after a short batch."""
    async with aiosqlite.connect(db_path, isolation_level=None) as db:
        store = SQLiteStore(db, clock=clock)
        for _ in range(expired):
            await store.create(new_sid(), record(clock, ttl=5))
        live = new_sid()
        await store.create(live, record(clock))
        clock.advance(5)
        deletes: list[str] = []
        await db.set_trace_callback(
            lambda sql: deletes.append(sql) if sql.startswith("DELETE") else None
        )
        assert await store.purge_expired(batch_size=10) == expired
        assert len(deletes) == statements
        assert await store.load(live) is not None
        assert await raw(db_path, f"SELECT count(*) FROM {DEFAULT_TABLE}") == [(1,)]  # noqa: S608


async def test_injected_connection_gets_the_table_and_stays_open(
    db_path: Path, clock: FakeClock
) -> None:
    """A store on a caller's connection creates its table on first use and never closes it."""
    async with aiosqlite.connect(db_path, isolation_level=None) as db:
        store = SQLiteStore(db, clock=clock)
        sid = new_sid()
        await store.create(sid, record(clock, a=1))
        await store.aclose()
        assert list(await db.execute_fetchall("SELECT count(*) FROM sessionauth_sessions")) == [
            (1,)
        ]


async def test_injected_connection_must_be_in_autocommit_mode(db_path: Path) -> None:
    """A connection that would hold writes in an open transaction is refused."""
    async with aiosqlite.connect(db_path) as db:
        with pytest.raises(ConfigurationError):
            SQLiteStore(db)


async def test_locked_database_makes_writes_unavailable_while_reads_go_on(
    db_path: Path, clock: FakeClock
) -> None:
    """With another connection holding the write lock, writes raise StoreUnavailable; loads work."""
    sid = new_sid()
    url = f"sqlite:///{db_path}"
    # The file, its WAL switch and the schema first, with the default timeout: on a busy
    # machine those first writes (fsyncs) alone can take longer than the 0.3 s under test.
    async with SQLiteStore.from_url(url, clock=clock) as first:
        await first.create(sid, record(clock, a=1))
    async with SQLiteStore.from_url(url, clock=clock, timeout=0.3) as store:
        assert await store.load(sid) is not None
        async with aiosqlite.connect(db_path, isolation_level=None) as locker:
            await locker.execute("BEGIN EXCLUSIVE")
            with pytest.raises(StoreUnavailable):
                await store.update(sid, change(clock, a=2))
            with pytest.raises(StoreUnavailable):
                await store.create(new_sid(), record(clock))
            assert await store.load(sid) is not None  # WAL: readers never wait for the writer
            await store.ping()
            await locker.execute("ROLLBACK")
        assert await store.update(sid, change(clock, a=3))


async def test_closed_store_is_unavailable(db_path: Path, clock: FakeClock) -> None:
    """Closing twice is harmless, and a closed store answers StoreUnavailable, never reopens."""
    store = SQLiteStore.from_url(f"sqlite:///{db_path}", clock=clock)
    await store.aclose()
    await store.aclose()
    with pytest.raises(StoreUnavailable):
        await store.load(new_sid())
    with pytest.raises(StoreUnavailable):
        await store.delete(new_sid())


async def test_loads_neither_wait_for_an_open_transaction_nor_see_its_writes(
    store: SQLiteStore, clock: FakeClock
) -> None:
    """While a transaction holds the connection, a load answers from committed data at once."""
    sid, late = new_sid(), new_sid()
    await store.create(sid, record(clock, a=1))
    inside, release = asyncio.Event(), asyncio.Event()

    async def slow(tx: Any) -> None:
        await tx.fetch(
            "INSERT INTO sessionauth_sessions (id, data, created, seen, issued, expires, meta,"
            " version) SELECT ?, data, created, seen, issued, expires, meta, version"
            " FROM sessionauth_sessions WHERE id = ?",
            (late, sid),
        )
        inside.set()
        await release.wait()

    writing = asyncio.create_task(store._database.transaction(slow, "test"))
    await inside.wait()
    # The worker thread's connection is taken until `release`: through it, this would hang.
    loaded = await asyncio.wait_for(store.load(sid), 1)
    assert loaded is not None
    assert loaded.data == {"a": 1}
    assert await asyncio.wait_for(store.load(late), 1) is None  # not committed yet
    release.set()
    await writing
