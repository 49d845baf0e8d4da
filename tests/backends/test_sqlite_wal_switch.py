"""Several processes opening one rollback-journal SQLite file at once all get it, in WAL.

Switching a file to WAL upgrades a read lock to an exclusive one, and SQLite answers that
upgrade with SQLITE_BUSY at once, without the busy timeout, while another connection writes:
three server processes starting on a file of an older release failed one in twenty-five runs
with "database is locked" (CI, tests/contract/test_user_email.py). Here the other writer is a
plain connection holding ``BEGIN IMMEDIATE``, which makes the refusal certain, and the pause
between two attempts is where the test lets it go.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from sessionauth.backends.sqlite import files
from sessionauth.backends.sqlite.files import SQLiteDatabase
from sessionauth.errors import StoreUnavailable


@pytest.fixture
def rollback_file(tmp_path: Path) -> Path:
    """A database in SQLite's default rollback-journal mode, as an older release or tool left it."""
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE kept (value TEXT)")
        db.execute("INSERT INTO kept VALUES ('still here')")
    db.close()
    return path


@pytest.fixture
def writer(rollback_file: Path) -> Iterator[sqlite3.Connection]:
    """Another process in the middle of a write transaction on that file."""
    connection = sqlite3.connect(rollback_file, isolation_level=None, check_same_thread=False)
    connection.execute("BEGIN IMMEDIATE")
    yield connection
    connection.close()


def journal_mode(path: Path) -> str:
    with sqlite3.connect(path) as db:
        mode: str = db.execute("PRAGMA journal_mode").fetchone()[0]
    db.close()
    return mode


async def test_a_switch_refused_while_another_process_writes_is_tried_again(
    rollback_file: Path, writer: sqlite3.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The switch refused while another process writes succeeds once it lets go; data kept."""
    pauses: list[float] = []

    async def pause(seconds: float) -> None:
        pauses.append(seconds)
        if writer.in_transaction:
            writer.execute("COMMIT")  # the other process finishes its write

    monkeypatch.setattr(files, "_pause", pause)
    database = SQLiteDatabase(path=str(rollback_file), timeout=5.0)
    try:
        db = await database.connection()
        rows = list(await db.execute_fetchall("SELECT value FROM kept"))
    finally:
        await database.aclose()

    assert len(pauses) == 1  # refused once, while the other process held its write
    assert [tuple(row) for row in rows] == [("still here",)]
    assert journal_mode(rollback_file) == "wal"


async def test_a_writer_that_never_lets_go_is_a_store_outage_after_the_timeout(
    rollback_file: Path, writer: sqlite3.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A lock never released is StoreUnavailable after the timeout, with growing pauses."""
    pauses: list[float] = []

    async def pause(seconds: float) -> None:
        pauses.append(seconds)
        await files.asyncio.sleep(seconds)

    monkeypatch.setattr(files, "_pause", pause)
    database = SQLiteDatabase(path=str(rollback_file), timeout=0.3)
    with pytest.raises(StoreUnavailable, match="timed out"):
        await database.connection()
    await database.aclose()

    # Growing pauses, each no longer than the last one, rather than a busy loop.
    assert len(pauses) >= 2
    assert pauses[:2] == [files._FIRST_PAUSE, 2 * files._FIRST_PAUSE]
    assert max(pauses) <= files._LAST_PAUSE
    writer.execute("ROLLBACK")
    assert journal_mode(rollback_file) == "delete"  # nothing was changed behind its back
