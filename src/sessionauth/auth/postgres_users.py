"""A user store in PostgreSQL, through an asyncpg connection pool.

Needs the ``postgres`` extra (``pip install 'sessionauth[postgres]'``); importing this module is
the only thing that imports asyncpg. Each operation is one statement on a pooled connection,
bounded by the store's ``timeout`` and classified like the session store's errors (see
:mod:`sessionauth.stores.postgres_calls`: a failed call never waits for its connection's
release, and a read-only standby is an outage, not a bug); the table is created on open under
an advisory lock, so several replicas starting at once do not trip over each other's
``CREATE TABLE``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterable, Sequence
from typing import Any

import asyncpg

from sessionauth.auth.sql_users import SQLUserStore
from sessionauth.auth.users import DEFAULT_TABLE, DEFAULT_TIMEOUT, sql_table_name
from sessionauth.errors import ConfigurationError
from sessionauth.policy import Clock, system_clock
from sessionauth.stores.postgres_calls import UNAVAILABLE, PooledCalls, unavailable

__all__ = ["PostgresUserStore"]

# Refusals that are outages once running (a database dropped, a role's login revoked) but
# mistakes in the settings when they happen on the very first connection.
_REFUSED = (
    asyncpg.exceptions.InvalidAuthorizationSpecificationError,
    asyncpg.exceptions.InvalidCatalogNameError,
)


class PostgresUserStore(SQLUserStore):
    """Keeps users in one PostgreSQL table.

    Build it with :meth:`from_url` (the store owns and closes its pool) or :meth:`with_pool`
    (the caller does).

    Args:
        pool: An asyncpg pool.
        table: The table name; a plain identifier.
        clock: Time source for ``created_at``.
        timeout: Seconds an operation may take before raising ``StoreUnavailable``.
        owns_pool: Whether :meth:`aclose` closes ``pool``.
    """

    _duplicate = asyncpg.UniqueViolationError

    def __init__(
        self,
        pool: asyncpg.Pool[asyncpg.Record],
        *,
        table: str = DEFAULT_TABLE,
        clock: Clock = system_clock,
        timeout: float = DEFAULT_TIMEOUT,
        owns_pool: bool = False,
    ):
        super().__init__(table=table, clock=clock, timeout=timeout, parameter=lambda n: f"${n}")
        self._pool = pool
        self._owns_pool = owns_pool
        self._calls = PooledCalls(timeout)

    @classmethod
    async def with_pool(
        cls,
        pool: asyncpg.Pool[asyncpg.Record],
        *,
        table: str = DEFAULT_TABLE,
        clock: Clock = system_clock,
        timeout: float = DEFAULT_TIMEOUT,  # noqa: ASYNC109 - configures the store
    ) -> PostgresUserStore:
        """Return a store on the caller's pool (left open by ``aclose``), table created.

        Raises:
            StoreUnavailable: If the database cannot be reached.
        """
        store = cls(pool, table=table, clock=clock, timeout=timeout)
        await store._create_schema()
        return store

    @classmethod
    async def from_url(
        cls,
        dsn: str,
        *,
        table: str = DEFAULT_TABLE,
        clock: Clock = system_clock,
        timeout: float = DEFAULT_TIMEOUT,  # noqa: ASYNC109 - configures the store
        min_size: int = 1,
        max_size: int = 10,
    ) -> PostgresUserStore:
        """Connect a pool to ``dsn`` (``postgresql://…``) and create the table if needed.

        Args:
            dsn: A libpq-style connection URL.
            table: The table name; a plain identifier.
            clock: Time source for ``created_at``.
            timeout: Seconds for connecting and for each operation.
            min_size: Connections the pool keeps open.
            max_size: Most connections the pool opens.

        Raises:
            StoreUnavailable: If the database cannot be reached in time.
            ConfigurationError: If the server refuses the credentials or the database name.
        """
        sql_table_name(table)  # a bad name fails before any connection is made
        try:
            async with asyncio.timeout(timeout * 2):  # connect, then a first query
                pool = await asyncpg.create_pool(
                    dsn,
                    min_size=min_size,
                    max_size=max_size,
                    timeout=timeout,
                    command_timeout=timeout,
                )
        except _REFUSED as exc:
            # The server answered and said no: a wrong password or database name will not
            # fix itself by retrying, so at start-up it is a configuration error, not a 503.
            raise ConfigurationError(f"the user database refused the connection: {exc!r}") from exc
        except UNAVAILABLE as exc:
            raise unavailable(exc, "the user database") from exc
        except asyncpg.PostgresError as exc:
            raise ConfigurationError(f"the user database refused the connection: {exc!r}") from exc
        store = cls(pool, table=table, clock=clock, timeout=timeout, owns_pool=True)
        try:
            await store._create_schema()
        except BaseException:
            pool.terminate()
            raise
        return store

    @contextlib.asynccontextmanager
    async def _guard(self) -> AsyncIterator[None]:
        try:
            async with asyncio.timeout(self._timeout):
                yield
        except UNAVAILABLE as exc:
            raise unavailable(exc, "the user database") from exc

    async def _fetch(self, sql: str, *params: Any) -> Sequence[Iterable[Any]]:
        async with self._guard():
            rows: Sequence[Iterable[Any]] = await self._calls.run(self._pool, "fetch", sql, *params)
            return rows

    async def _fetch_serialised(self, sql: str, *params: Any) -> Sequence[Iterable[Any]]:
        # Under READ COMMITTED two guarded statements would each see the other's target still
        # an admin (write skew): two admins demoting each other would both succeed. They queue
        # on a transaction-scoped advisory lock instead; the statement after it takes a fresh
        # snapshot, so it sees the change the previous holder committed.
        async with self._guard(), self._pool.acquire() as connection, connection.transaction():
            await connection.execute(
                "SELECT pg_advisory_xact_lock(hashtext($1))", f"sessionauth-admins:{self._table}"
            )
            return await connection.fetch(sql, *params)

    async def _create_schema(self) -> None:
        async with self._guard(), self._pool.acquire() as connection, connection.transaction():
            # Concurrent CREATE TABLE IF NOT EXISTS can still fail on the catalog's unique
            # index; a transaction-scoped advisory lock makes replicas take turns.
            await connection.execute(
                "SELECT pg_advisory_xact_lock(hashtext($1))", f"sessionauth:{self._table}"
            )
            await connection.execute(
                f"""CREATE TABLE IF NOT EXISTS {self._table} (
                    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                    email TEXT NOT NULL,
                    role TEXT NOT NULL,
                    password_hash TEXT NOT NULL,
                    disabled BOOLEAN NOT NULL DEFAULT FALSE,
                    created_at DOUBLE PRECISION NOT NULL,
                    CONSTRAINT {self._table}_email_key UNIQUE (email)
                )"""
            )

    async def aclose(self) -> None:
        """Close the pool if this store opened it, forcibly if that takes too long."""
        if not self._owns_pool:
            return
        try:
            async with asyncio.timeout(self._timeout):
                await self._pool.close()
        except TimeoutError:
            self._pool.terminate()
