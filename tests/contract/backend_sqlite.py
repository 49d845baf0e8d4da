"""The SQLite store under the contract suite, on a fresh database file per test."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import aiosqlite
import pytest

from sessionauth.backends.binding import encode_bound_meta
from sessionauth.backends.sqlite.sessions import DEFAULT_TABLE, SQLiteStore
from sessionauth.record import SessionRecord, encode_json
from tests.contract.harness import Harness
from tests.support.clock import FakeClock


@asynccontextmanager
async def open_harness(clock: FakeClock, request: pytest.FixtureRequest) -> AsyncIterator[Harness]:
    """Yield a store that owns its connection to a WAL database in the test's tmp_path."""
    path: Path = request.getfixturevalue("tmp_path") / "sessions.db"
    store = SQLiteStore.from_url(f"sqlite:///{path}", clock=clock)

    async def corrupt(sid: str) -> None:
        # Through a connection of its own, as another process tampering with the file would.
        async with aiosqlite.connect(path, isolation_level=None) as db:
            await db.execute(
                f"UPDATE {DEFAULT_TABLE} SET data = ? WHERE id = ?",  # noqa: S608
                ("{not json", sid),
            )

    async def transplant(source: str, target: str) -> None:
        async with aiosqlite.connect(path, isolation_level=None) as db:
            await db.execute(
                f"UPDATE {DEFAULT_TABLE} SET (user_id, created, seen, issued, expires, data,"  # noqa: S608
                f" meta, epoch, version) = (SELECT user_id, created, seen, issued, expires,"
                f" data, meta, epoch, version"
                f" FROM {DEFAULT_TABLE} WHERE id = ?) WHERE id = ?",
                (source, target),
            )

    async def write_v1(sid: str, record: SessionRecord) -> None:
        # 0.1's INSERT (git show 8e71824:src/sessionauth/stores/sqlite.py): its columns only.
        await store.ping()  # the tables exist, as an upgraded deployment has them
        async with aiosqlite.connect(path, isolation_level=None) as db:
            await db.execute(
                f"INSERT INTO {DEFAULT_TABLE} (id, data, user_id, created, seen, issued,"  # noqa: S608
                " expires, meta) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    sid,
                    encode_json({key: (value,) for key, value in record.data.items()}),
                    record.user_id,
                    record.created,
                    record.seen,
                    record.issued,
                    record.expires,
                    encode_bound_meta(sid, record.meta),
                ),
            )

    yield Harness(store=store, corrupt=corrupt, transplant=transplant, write_v1=write_v1)
