"""A user store in PostgreSQL, through an asyncpg connection pool.

Needs the ``postgres`` extra (``pip install 'sessionauth[postgres]'``). Each operation is one
statement on a pooled connection (the backend's, shared with the session store and the
attempt counter: :mod:`sessionauth.backends.postgres.pool`), bounded by the store's
``timeout`` and classified like every PostgreSQL error (see
:mod:`sessionauth.backends.postgres.calls`: a failed call never waits for its connection's
release, and a refused login, a missing database or a read-only standby is an outage, not a
bug). The table is created on first use under an advisory lock, so several replicas starting
at once do not trip over each other's ``CREATE TABLE``; a table of an older release gets the
``email_verified`` column then, with every existing account verified.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import asyncpg

from sessionauth.backends.postgres.pool import PostgresPool
from sessionauth.backends.postgres.table_guard import TableGuard
from sessionauth.backends.sql_users import SQLUserStore
from sessionauth.errors import ConfigurationError
from sessionauth.policy import Clock, system_clock
from sessionauth.stores.users import DEFAULT_TABLE, DEFAULT_TIMEOUT

__all__ = ["PostgresUserStore"]

_WHAT = "the user database"


class PostgresUserStore(SQLUserStore):
    """Keeps users in one PostgreSQL table.

    Build it with :meth:`from_url` (the store owns and closes its pool), with ``pool=`` (the
    caller does), or get it from a :class:`~sessionauth.backends.postgres.PostgresBackend`,
    whose pool it shares. Nothing connects until the first operation, which also creates the
    table.

    Args:
        pool: An asyncpg pool (the caller owns it).
        database: A backend's shared pool (closed by :meth:`aclose` only if ``owned``).
            Exactly one of ``pool`` and ``database``.
        table: The table name; a plain identifier.
        clock: Time source for ``created_at``.
        timeout: Seconds an operation may take before raising ``StoreUnavailable`` (a
            ``database`` has its own).
        owned: Whether :meth:`aclose` closes ``database``.
    """

    _duplicate = asyncpg.UniqueViolationError

    def __init__(
        self,
        pool: asyncpg.Pool[asyncpg.Record] | None = None,
        *,
        database: PostgresPool | None = None,
        table: str = DEFAULT_TABLE,
        clock: Clock = system_clock,
        timeout: float = DEFAULT_TIMEOUT,
        owned: bool = False,
    ):
        super().__init__(table=table, clock=clock, parameter=lambda n: f"${n}")
        if (pool is None) == (database is None):
            raise ConfigurationError("give the PostgreSQL user store a pool or a database")
        if database is None:
            database = PostgresPool(pool=pool, timeout=timeout)
        self._guard = TableGuard(
            database,
            table=self._table,
            quoted=self._table,
            schema=[self._create_table_sql, self._add_email_verified_sql],
            what=_WHAT,
            owned=owned,
            column="email_verified",
            name="PostgreSQL user store",
        )

    @classmethod
    def from_url(
        cls,
        dsn: str,
        *,
        table: str = DEFAULT_TABLE,
        clock: Clock = system_clock,
        timeout: float = DEFAULT_TIMEOUT,
        min_size: int = 1,
        max_size: int = 10,
    ) -> PostgresUserStore:
        """Return a store that opens its own pool on ``dsn`` on first use and owns it.

        Raises:
            ConfigurationError: For a bad table name, timeout or pool size.
        """
        database = PostgresPool(dsn, timeout=timeout, min_size=min_size, max_size=max_size)
        return cls(database=database, table=table, clock=clock, owned=True)

    async def _fetch(self, sql: str, *params: Any) -> Sequence[Iterable[Any]]:
        rows: Sequence[Iterable[Any]] = await self._guard.call("fetch", sql, *params)
        return rows

    async def _fetch_serialised(self, sql: str, *params: Any) -> Sequence[Iterable[Any]]:
        # Under READ COMMITTED two guarded statements would each see the other's target still
        # an admin (write skew): two admins demoting each other would both succeed. They queue
        # on a transaction-scoped advisory lock instead; the statement after it takes a fresh
        # snapshot, so it sees the change the previous holder committed.
        # (The lock's name is the one earlier releases used, so old and new workers queue on it
        # together during a rolling upgrade.)
        async with (
            self._guard.pool() as pool,
            pool.acquire() as connection,
            connection.transaction(),
        ):
            await connection.execute(
                "SELECT pg_advisory_xact_lock(hashtext($1))", f"sessionauth-admins:{self._table}"
            )
            return await connection.fetch(sql, *params)

    @property
    def _create_table_sql(self) -> str:
        return f"""CREATE TABLE IF NOT EXISTS {self._table} (
            id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            email TEXT NOT NULL,
            role TEXT NOT NULL,
            password_hash TEXT NOT NULL,
            disabled BOOLEAN NOT NULL DEFAULT FALSE,
            created_at DOUBLE PRECISION NOT NULL,
            email_verified BOOLEAN NOT NULL DEFAULT TRUE,
            CONSTRAINT {self._table}_email_key UNIQUE (email)
        )"""

    @property
    def _add_email_verified_sql(self) -> str:
        # An older table's accounts predate verification: the default marks them verified.
        return (
            f"ALTER TABLE {self._table} ADD COLUMN IF NOT EXISTS"
            " email_verified BOOLEAN NOT NULL DEFAULT TRUE"
        )

    async def aclose(self) -> None:
        """Stop serving; close the pool if this store owns it."""
        await self._guard.aclose()
