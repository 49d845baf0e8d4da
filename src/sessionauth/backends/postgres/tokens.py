"""The single-use token store on PostgreSQL (see :mod:`sessionauth.backends.sql_tokens`)."""

from __future__ import annotations

from sessionauth.backends.postgres.pool import PostgresPool
from sessionauth.backends.postgres.table_guard import TableGuard
from sessionauth.backends.sql_tokens import DEFAULT_TABLE, names, record_of, schema, statements
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
        self._table = table
        self._guard = TableGuard(
            database,
            table=table,
            quoted=t,
            schema=schema(
                t,
                index,
                'token_hash text COLLATE "C" PRIMARY KEY, user_id text NOT NULL,'
                " purpose text NOT NULL, binding text NOT NULL,"
                " expires double precision NOT NULL, payload text",
            ),
            what="PostgreSQL token store",
            owned=owned,
        )
        self._clock = clock
        self._sql = statements(t, "$", text_cast="::text")

    @property
    def table(self) -> str:
        """The table's name, as given: where to look for the records."""
        return self._table

    async def add(self, key: str, record: TokenRecord) -> None:
        """Insert the record."""
        await self._guard.call(
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
        row = await self._guard.call("fetchrow", self._sql["take"], key, user_id)
        if row is None:
            return None
        record = record_of(tuple(row))
        return record if record.expires > self._clock() else None

    async def purge_expired(self, now: float | None = None) -> int:
        """Delete expired rows; return how many."""
        cutoff = self._clock() if now is None else now
        return await self._guard.rowcount(self._sql["purge"], cutoff)

    async def aclose(self) -> None:
        """Stop serving; close the pool if this store owns it."""
        await self._guard.aclose()
