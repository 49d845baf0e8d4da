"""A user store in SQLite, through aiosqlite so queries never block the event loop.

One connection serves the whole process, shared with the session store and the attempt
counter on the same file (:class:`~sessionauth.backends.sqlite.SQLiteBackend`): aiosqlite runs
its queries in order on a dedicated thread, and every operation here is a single autocommitted
statement, so nothing interleaves badly. WAL mode lets other processes (the CLI, a second
worker) read while one writes, and the busy timeout makes a writer wait for a lock instead of
failing at once. The table is created on first use; a table of an older release gets the
``email_verified`` column then, with every existing account verified.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import aiosqlite

from sessionauth.backends.sql_users import SQLUserStore
from sessionauth.backends.sqlite.files import SQLiteDatabase, Transaction, database_path
from sessionauth.backends.sqlite.table_guard import TableGuard
from sessionauth.errors import ConfigurationError
from sessionauth.policy import Clock, system_clock
from sessionauth.stores.users import DEFAULT_TABLE, DEFAULT_TIMEOUT

__all__ = ["SQLiteUserStore"]

_WHAT = "the user database"
_EMAIL_VERIFIED = "email_verified INTEGER NOT NULL DEFAULT 1 CHECK (email_verified IN (0, 1))"


class SQLiteUserStore(SQLUserStore):
    """Keeps users in one SQLite table.

    Build it with :meth:`from_url` or ``path=`` (the store owns and closes the connection),
    with ``connection=`` (the caller does), or get it from a
    :class:`~sessionauth.backends.sqlite.SQLiteBackend`, whose connection it shares. Nothing
    is opened until the first operation, which also creates the table.

    Args:
        connection: An open aiosqlite connection in autocommit mode (the caller owns it).
        path: A database file to open on first use (the store owns the connection).
        database: A backend's shared connection (closed by :meth:`aclose` only if ``owned``).
        table: The table name; a plain identifier.
        clock: Time source for ``created_at``.
        timeout: Seconds an operation may take before raising ``StoreUnavailable`` (a
            ``database`` has its own).
        owned: Whether :meth:`aclose` closes ``database``.

    Raises:
        ConfigurationError: For a bad table name, or not exactly one of ``connection``,
            ``path`` and ``database``.
    """

    _duplicate = sqlite3.IntegrityError  # only the email's UNIQUE constraint can fail

    def __init__(
        self,
        connection: aiosqlite.Connection | None = None,
        *,
        path: str | Path | None = None,
        database: SQLiteDatabase | None = None,
        table: str = DEFAULT_TABLE,
        clock: Clock = system_clock,
        timeout: float = DEFAULT_TIMEOUT,
        owned: bool = False,
    ):
        super().__init__(table=table, clock=clock, parameter=lambda n: f"?{n}")
        if (connection is not None) + (path is not None) + (database is not None) != 1:
            raise ConfigurationError(
                "give the SQLite user store exactly one of a connection, a path or a database"
            )
        if database is None:
            database = SQLiteDatabase(
                None if path is None else str(path), connection=connection, timeout=timeout
            )
            owned = path is not None
        self._database = database
        self._guard = TableGuard(
            database, schema=self._create_schema, what=_WHAT, owned=owned, name="SQLite user store"
        )

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        table: str = DEFAULT_TABLE,
        clock: Clock = system_clock,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> SQLiteUserStore:
        """Return a store on the database a ``sqlite:///path`` URL names; it owns its connection.

        Raises:
            ConfigurationError: For a bad URL or table name.
        """
        return cls(path=database_path(url), table=table, clock=clock, timeout=timeout)

    async def _fetch(self, sql: str, *params: Any) -> Sequence[Iterable[Any]]:
        # execute_fetchall steps the statement to completion, so an INSERT/UPDATE … RETURNING
        # is committed before this returns (a half-read cursor would keep it pending).
        return list(await self._guard.fetch(sql, params))

    async def ping(self) -> None:
        """Raise ``StoreUnavailable`` unless the database answers, from the file it opened.

        Also once that file was deleted or replaced (see
        :class:`~sessionauth.backends.sqlite.identity.DatabaseFile`).
        """
        await super().ping()
        await self._database.check_file()

    async def _create_schema(self, tx: Transaction) -> None:
        """Create the table, or add the column an older table lacks (under the write lock)."""
        await tx.fetch(self._create_table)
        columns = await tx.fetch(f"SELECT name FROM pragma_table_info('{self._table}')")  # noqa: S608
        if ("email_verified",) not in {tuple(row) for row in columns}:
            # The default marks the accounts already there verified: they predate verification.
            await tx.fetch(f"ALTER TABLE {self._table} ADD COLUMN {_EMAIL_VERIFIED}")

    @property
    def _create_table(self) -> str:
        return f"""CREATE TABLE IF NOT EXISTS {self._table} (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            email TEXT NOT NULL,
            role TEXT NOT NULL,
            password_hash TEXT NOT NULL,
            disabled INTEGER NOT NULL DEFAULT 0 CHECK (disabled IN (0, 1)),
            created_at REAL NOT NULL,
            {_EMAIL_VERIFIED},
            CONSTRAINT {self._table}_email_key UNIQUE (email)
        )"""

    async def aclose(self) -> None:
        """Stop serving; close the connection if this store owns it."""
        await self._guard.aclose()
