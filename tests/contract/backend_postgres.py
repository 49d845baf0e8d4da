"""The PostgreSQL store under the contract suite, on a table of its own in the run's database."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
import pytest

from sessionauth.backends.postgres.sessions import PostgresStore
from tests.contract.harness import Harness
from tests.support.clock import FakeClock


@asynccontextmanager
async def open_harness(clock: FakeClock, request: pytest.FixtureRequest) -> AsyncIterator[Harness]:
    """Yield a store owning its pool, on a fresh table that is dropped afterwards."""
    dsn: str = request.getfixturevalue("postgres_dsn")
    table = f"sessions_{secrets.token_hex(6)}"
    store = PostgresStore.from_url(dsn, clock=clock, table=table)

    async def corrupt(sid: str) -> None:
        # A jsonb column always holds valid JSON, so "undecodable" means "not an object": a
        # scalar is the worst case (jsonb's "-" operator raises on it instead of ignoring it).
        connection = await asyncpg.connect(dsn)
        try:
            await connection.execute(
                f"UPDATE {table} SET data = to_jsonb('not an object'::text)"  # noqa: S608 - our name
                " WHERE id = $1",
                sid,
            )
        finally:
            await connection.close()

    async def transplant(source: str, target: str) -> None:
        connection = await asyncpg.connect(dsn)
        try:
            await connection.execute(
                f"UPDATE {table} SET (user_id, created, seen, issued, expires, data, meta)"  # noqa: S608 - our name
                f" = (SELECT user_id, created, seen, issued, expires, data, meta"
                f" FROM {table} WHERE id = $1) WHERE id = $2",
                source,
                target,
            )
        finally:
            await connection.close()

    try:
        yield Harness(store=store, corrupt=corrupt, transplant=transplant)
    finally:
        await store.aclose()
        connection = await asyncpg.connect(dsn)
        try:
            await connection.execute(f"DROP TABLE IF EXISTS {table}")
        finally:
            await connection.close()
