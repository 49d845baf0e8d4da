"""The PostgreSQL store under the contract suite, on a table of its own in the run's database."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
import pytest

from sessionauth.backends.binding import encode_bound_meta
from sessionauth.backends.postgres.sessions import PostgresStore
from sessionauth.record import SessionRecord, encode_json
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
                f"UPDATE {table} SET (user_id, created, seen, issued, expires, data,"  # noqa: S608 - our name
                f" meta, epoch, version) = (SELECT user_id, created, seen, issued, expires,"
                f" data, meta, epoch, version"
                f" FROM {table} WHERE id = $1) WHERE id = $2",
                source,
                target,
            )
        finally:
            await connection.close()

    async def write_v1(sid: str, record: SessionRecord) -> None:
        # 0.1's INSERT (git show 8e71824:src/sessionauth/stores/postgres_sql.py): its columns.
        await store.ping()  # the tables exist, as an upgraded deployment has them
        connection = await asyncpg.connect(dsn)
        try:
            await connection.execute(
                f"INSERT INTO {table} (id, user_id, created, seen, issued, expires, data, meta)"  # noqa: S608 - our name
                " VALUES ($1, $2, $3, $4, $5, $6, $7::text::jsonb, $8::text::jsonb)",
                sid,
                record.user_id,
                record.created,
                record.seen,
                record.issued,
                record.expires,
                encode_json(record.data),
                encode_bound_meta(sid, record.meta),
            )
        finally:
            await connection.close()

    try:
        yield Harness(store=store, corrupt=corrupt, transplant=transplant, write_v1=write_v1)
    finally:
        await store.aclose()
        connection = await asyncpg.connect(dsn)
        try:
            await connection.execute(f"DROP TABLE IF EXISTS {table}, {table}_principals")
        finally:
            await connection.close()
