"""The SQLite store under the contract suite, on a fresh database file per test."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import aiosqlite
import pytest

from sessionauth.backends.sqlite.sessions import DEFAULT_TABLE, SQLiteStore
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
                f"UPDATE {DEFAULT_TABLE} SET (user_id, created, seen, issued, expires, data, meta)"  # noqa: S608
                f" = (SELECT user_id, created, seen, issued, expires, data, meta"
                f" FROM {DEFAULT_TABLE} WHERE id = ?) WHERE id = ?",
                (source, target),
            )

    yield Harness(store=store, corrupt=corrupt, transplant=transplant)
