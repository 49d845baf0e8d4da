"""The single-use token store on PostgreSQL (see :mod:`sessionauth.backends.sql_tokens`)."""

from __future__ import annotations

import asyncio
from typing import Any

from sessionauth.backends.postgres.calls import UNAVAILABLE, unavailable
from sessionauth.backends.postgres.pool import PostgresPool
from sessionauth.backends.sql_tokens import DEFAULT_TABLE, names, record_of, schema, statements
from sessionauth.errors import StoreUnavailable
from sessionauth.policy import Clock, system_clock
from sessionauth.stores.tokens import TokenRecord, TokenStore

__all__ = ["PostgresTokenStore"]


class PostgresTokenStore(TokenStore):
    """Token records in a PostgreSQL table, on a backend's shared pool.

    The table is created if missing, on first use. Each ``take`` is one ``DELETE …
    RETURNING``: concurrent takes from any number of connections serialise on the row's lock
    and only the first gets it.

    Args:
        database: The backend's pool (closed by :meth:`aclose` only if ``owned``).
        clock: The time source deciding expiry.
        table: The table's name, optionally ``schema.table``.
        owned: Whether :meth:`aclose` closes ``database``.

    Raises:
        ConfigurationError: For an invalid table name.
    """

    def __init__(
        self,
        *,
        database: PostgresPool,
        clock: Clock = system_clock,
        table: str = DEFAULT_TABLE,
        owned: bool = False,
    ):
        t, index = names(table, database.timeout, schemas=True)
        self._database = database
        self._owned = owned
        self._clock = clock
        self._timeout = database.timeout
        self._ready = False
        self._closed = False
        self._lock = asyncio.Lock()
        self._schema = schema(
            t,
            index,
            'token_hash text COLLATE "C" PRIMARY KEY, user_id text NOT NULL,'
            " purpose text NOT NULL, binding text NOT NULL, expires double precision NOT NULL,"
            " payload text",
        )
        self._table, self._quoted = table, t
        self._sql = statements(t, "$", text_cast="::text")

    async def _ensure_table(self) -> None:
        async with self._lock:
            if self._closed:
                raise StoreUnavailable("the PostgreSQL token store is closed")
            if not self._ready:
                await self._database.create_tables(self._table, self._quoted, self._schema)
                self._ready = True

    async def _call(self, method: str, sql: str, *args: Any) -> Any:
        """Run one statement, first use's setup included, under one deadline."""
        try:
            async with asyncio.timeout(self._timeout):
                if not self._ready:
                    await self._ensure_table()
                return await self._database.run(method, sql, *args)
        except UNAVAILABLE as exc:
            raise unavailable(exc, "PostgreSQL token store") from exc

    async def add(self, key: str, record: TokenRecord) -> None:
        """Insert the record."""
        await self._call(
            "execute",
            self._sql["add"],
            key,
            record.user_id,
            record.purpose,
            record.binding,
            record.expires,
            record.payload,
        )

    async def take(self, key: str, *, user_id: str | None = None) -> TokenRecord | None:
        """Delete and return the live record under ``key`` in one statement."""
        row = await self._call("fetchrow", self._sql["take"], key, user_id)
        if row is None:
            return None
        record = record_of(tuple(row))
        return record if record.expires > self._clock() else None

    async def purge_expired(self, now: float | None = None) -> int:
        """Delete expired rows; return how many."""
        cutoff = self._clock() if now is None else now
        status = await self._call("execute", self._sql["purge"], cutoff)
        return int(status.rpartition(" ")[2])

    async def aclose(self) -> None:
        """Stop serving; close the pool if this store owns it."""
        async with self._lock:
            self._closed, self._ready = True, False
        if self._owned:
            self._owned = False
            await self._database.aclose()
