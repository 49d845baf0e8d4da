"""The SQLite store answers the loads of one event-loop iteration with one statement.

Each statement opens and closes a read transaction (the WAL read lock: two ``fcntl`` calls and
the pager's shared lock), which cost more than finding the row; batching is what brings the
embedded store level with the Redis store under load (benchmarks/README.md). The batches are
read on the event loop's own connection, so the statements are counted there.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from sessionauth.backends.sqlite.session_sql import LOAD_BATCH
from sessionauth.backends.sqlite.sessions import SQLiteStore
from sessionauth.errors import StoreUnavailable
from tests.support.clock import FakeClock
from tests.support.records import new_sid, record, sign_in


@pytest.fixture
async def traced(tmp_path: Path) -> AsyncIterator[tuple[SQLiteStore, list[str]]]:
    """A store on a file whose loop-thread reader logs every statement it runs."""
    async with SQLiteStore.from_url(f"sqlite:///{tmp_path / 'sessions.db'}") as store:
        assert isinstance(store, SQLiteStore)
        await store.load(new_sid())  # opens the file, the tables and the reader
        statements: list[str] = []
        reader = store._database._reader
        assert reader is not None
        reader.set_trace_callback(statements.append)
        yield store, statements


def loads_in(statements: list[str]) -> list[str]:
    return [sql for sql in statements if sql.startswith("SELECT") and " IN (" in sql]


async def test_concurrent_loads_share_one_statement_and_each_gets_its_own_record(
    traced: tuple[SQLiteStore, list[str]],
) -> None:
    """30 loads at once (two for one id, one for an unknown id): one SELECT answers all."""
    store, statements = traced
    sids = [new_sid(str(user)) for user in range(1, 29)]
    for user, sid in enumerate(sids, start=1):
        await sign_in(store, sid, record(str(user), n=user))
    unknown = new_sid("99")
    statements.clear()
    loaded = await asyncio.gather(*(store.load(sid) for sid in [*sids, sids[0], unknown]))
    assert len(loads_in(statements)) == 1
    owners = [None if found is None else (found.user_id, found.data["n"]) for found in loaded]
    assert owners == [*((str(user), user) for user in range(1, 29)), ("1", 1), None]
    assert loaded[0] is not loaded[28]  # each caller owns its copy
    assert all(found.principal is not None for found in loaded[:29] if found is not None)


async def test_a_batch_beyond_the_statement_size_takes_several_and_loses_none(
    traced: tuple[SQLiteStore, list[str]],
) -> None:
    """More loads than one statement reads (LOAD_BATCH ids): every one answered, in chunks."""
    store, statements = traced
    count = 2 * LOAD_BATCH + 6
    sids = [new_sid(str(user)) for user in range(count)]
    for user, sid in enumerate(sids):
        await sign_in(store, sid, record(str(user)))
    statements.clear()
    loaded = await asyncio.gather(*(store.load(sid) for sid in sids))
    assert [None if found is None else found.user_id for found in loaded] == [
        str(user) for user in range(count)
    ]
    assert len(loads_in(statements)) == 3


async def test_a_batch_sees_what_was_committed_before_it_and_nothing_expired(
    tmp_path: Path,
) -> None:
    """A load batched with others still answers from the time of the batch, not of the cache."""
    clock = FakeClock()
    async with SQLiteStore.from_url(f"sqlite:///{tmp_path / 's.db'}", clock=clock) as store:
        short, long = new_sid("1"), new_sid("2")
        await sign_in(store, short, record("1", ttl=10))
        await sign_in(store, long, record("2"))
        first = await asyncio.gather(store.load(short), store.load(long))
        assert [found is not None for found in first] == [True, True]
        clock.advance(11)
        await store.delete(long)
        second = await asyncio.gather(store.load(short), store.load(long))
        assert second == [None, None]


async def test_loads_pending_when_the_store_closes_are_answered_or_unavailable() -> None:
    """Closing mid-batch: each load gets its record or StoreUnavailable (a 503), no other error.

    ``:memory:`` has no loop reader, so the batch goes to the worker thread in chunks of
    LOAD_BATCH ids; the close lands while the first chunk runs.
    """
    store = SQLiteStore.from_url("sqlite:///:memory:")
    sids = [new_sid(str(user)) for user in range(3 * LOAD_BATCH)]
    for user, sid in enumerate(sids):
        await sign_in(store, sid, record(str(user)))
    loading = asyncio.gather(*(store.load(sid) for sid in sids), return_exceptions=True)
    for _ in range(3):  # the batch's send, its task, its first chunk queued on the thread
        await asyncio.sleep(0)
    await store.aclose()
    results = await asyncio.wait_for(loading, 5)
    odd = {type(result).__name__ for result in results} - {"SessionRecord", "StoreUnavailable"}
    assert odd == set()


@pytest.mark.parametrize("change", ["replaced", "deleted"])
async def test_the_loop_reader_opens_only_the_file_the_database_opened(
    tmp_path: Path, change: str
) -> None:
    """A reader opened after its path changed files refuses: loads fail (503), nothing made.

    The session store's reader opens on first use, maybe long after the database's own
    connection. Served from a replacement (a backup restored under the running server), logouts and
    revocations written to the file still open would not reach what the reader reads; a
    deleted file would come back empty, and readable by all (0644).
    """
    path = tmp_path / "sessions.db"
    sid = new_sid("1")
    async with SQLiteStore.from_url(f"sqlite:///{tmp_path / 'backup.db'}") as backup:
        await sign_in(backup, sid, record("1"))
    store = SQLiteStore.from_url(f"sqlite:///{path}")
    try:
        await store._database.connection()  # e.g. the user store's, at the server's start
        for name in (str(path), f"{path}-wal", f"{path}-shm"):
            with contextlib.suppress(FileNotFoundError):
                os.remove(name)
        if change == "replaced":
            os.replace(tmp_path / "backup.db", path)
        with pytest.raises(StoreUnavailable):
            await store.load(sid)
        assert ("sessions.db" in os.listdir(tmp_path)) is (change == "replaced")
    finally:
        await store.aclose()
