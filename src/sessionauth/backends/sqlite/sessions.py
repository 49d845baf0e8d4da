"""The embedded session store: a SQLite table of sessions and one of principals.

Every write runs on aiosqlite's worker thread, never on the event loop; so does every read
but ``load`` on a file the store opened, which reads on the loop's own connection and falls
back to the thread only when the read would wait
(:meth:`~sessionauth.backends.sqlite.files.SQLiteDatabase.read_now`). The database runs in WAL
mode, so readers never wait for a writer and several processes (workers, the ``purge-expired``
CLI) can share one file.

* ``load`` is one statement: the session row ``LEFT JOIN`` its user's principal row; whether
  the row is served is decided in Python (:func:`~sessionauth.backends.sql_sessions.served`).
  The loads of one event-loop iteration share that statement, and its read transaction
  (:mod:`~sessionauth.backends.load_batches`).
* ``update`` and ``touch`` are single autocommitted statements guarded by ``expires > now``,
  so a write racing a logout or a revocation finds no row and never brings a session back.
* ``create``, ``delete``, ``change_principal`` and each batch of ``purge_expired`` are one
  ``BEGIN IMMEDIATE`` transaction each
  (:meth:`~sessionauth.backends.sqlite.files.SQLiteDatabase.transaction`): the file's write
  lock is taken before the first read, so the epoch check, the insert, the count and the
  eviction of a login are one step that no rotation (in this process or another) can split,
  and the count of a user's sessions changes with the rows it counts.

Values are kept as ``{key: [value]}`` so that ``update`` is one ``json_patch``
(:mod:`sessionauth.backends.sqlite.rows`).

The ``meta`` column holds ``[binding, meta]``, binding the row to its id
(:mod:`sessionauth.backends.binding`): a row read under any other id is no session. The
``version`` column holds the record format; tables of 0.1 get the ``epoch`` and ``version``
columns on first use (``ALTER TABLE … ADD COLUMN``, in the schema's transaction, after a
look at ``pragma_table_info``), and their rows, with no version, are no sessions.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable, Iterable, Sequence
from functools import partial
from typing import Any, TypeVar

import aiosqlite

from sessionauth.backends.binding import encode_bound_meta
from sessionauth.backends.load_batches import LoadBatcher
from sessionauth.backends.sql_sessions import decode_cursor, encode_cursor
from sessionauth.backends.sqlite import writes
from sessionauth.backends.sqlite.files import SQLiteDatabase, Transaction, database_path
from sessionauth.backends.sqlite.rows import decode_row, encode_values
from sessionauth.backends.sqlite.session_sql import (
    LOAD_BATCH,
    create_schema,
    load_many,
    statements,
)
from sessionauth.errors import ConfigurationError, StoreUnavailable
from sessionauth.policy import Clock, system_clock
from sessionauth.principal import Principal, PrincipalChange
from sessionauth.record import (
    FORMAT_VERSION,
    RecordUpdate,
    SessionRecord,
    encode_json,
)
from sessionauth.stores.base import (
    DEFAULT_MAX_SESSIONS,
    DEFAULT_TIMEOUT,
    MAX_PAGE,
    SessionPage,
    SessionStore,
)

__all__ = ["DEFAULT_TABLE", "SQLiteStore"]

DEFAULT_TABLE = "sessionauth_sessions"
"""The table a store uses unless told otherwise."""

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")
_WHAT = "SQLite session store"
_T = TypeVar("_T")


def _check_options(table: str, timeout: float, max_sessions: int) -> None:
    if not _IDENTIFIER.fullmatch(table):
        raise ConfigurationError(f"invalid table name {table!r}: use letters, digits and _")
    if not timeout > 0:
        raise ConfigurationError("the store timeout must be a positive number of seconds")
    if max_sessions < 1:
        raise ConfigurationError("max_sessions must be at least 1")


class SQLiteStore(SessionStore):
    """Session store on one SQLite table.

    Build it with :meth:`from_url` (or ``path=``), which opens its own connection in WAL mode on
    first use and closes it on :meth:`aclose`, so the store can be built before the event loop
    runs; or hand it an open aiosqlite connection that you own and close; or get it from a
    :class:`~sessionauth.backends.sqlite.SQLiteBackend`, whose connection it shares. An
    injected connection is used as configured (give it WAL and a ``timeout``); it must be in
    autocommit mode (``isolation_level=None``) and return rows as sequences. The table and its
    indexes are created if missing, before the first operation.

    Args:
        connection: An open aiosqlite connection (the caller owns it).
        path: A database file to open on first use (the store owns the connection).
        database: A backend's shared connection (closed by :meth:`aclose` only if ``owned``).
        clock: The time source used to decide expiry.
        timeout: Seconds an operation may take before it raises ``StoreUnavailable`` (a
            ``database`` has its own).
        table: The table's name, a plain SQL identifier; the principals go in
            ``<table>_principals``.
        owned: Whether :meth:`aclose` closes ``database``.
        max_sessions: Live sessions a user may have; a login beyond it ends the oldest.

    Raises:
        ConfigurationError: For an invalid table name, timeout, cap or connection setting.
    """

    def __init__(
        self,
        connection: aiosqlite.Connection | None = None,
        *,
        path: str | None = None,
        database: SQLiteDatabase | None = None,
        clock: Clock = system_clock,
        timeout: float = DEFAULT_TIMEOUT,
        table: str = DEFAULT_TABLE,
        owned: bool = False,
        max_sessions: int = DEFAULT_MAX_SESSIONS,
    ):
        _check_options(table, timeout, max_sessions)
        if (connection is not None) + (path is not None) + (database is not None) != 1:
            raise ConfigurationError(
                "give the SQLite store exactly one of a connection, a path or a database"
            )
        if database is None:
            # A store given a path opens (on first use) and closes its own connection.
            database = SQLiteDatabase(path, connection=connection, timeout=timeout)
            owned = path is not None
        self._database = database
        self._clock = clock
        self._owned = owned
        self._closed = False
        # False until the table exists, and again once closed: the one flag the hot path checks.
        self._ready = False
        self._schema_lock = asyncio.Lock()
        self._max_sessions = max_sessions
        self._table = table
        # The table name is a validated identifier; every value goes in as a parameter.
        self._sql = statements(table)
        self._loads = LoadBatcher(self._load_many, decode_row, fetch_now=self._load_now)

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        clock: Clock = system_clock,
        timeout: float = DEFAULT_TIMEOUT,
        table: str = DEFAULT_TABLE,
        max_sessions: int = DEFAULT_MAX_SESSIONS,
    ) -> SQLiteStore:
        """Return a store for the database a ``sqlite:///`` URL names; it owns its connection.

        Nothing is opened yet: on first use the parent directory is created if missing, the
        database switched to WAL with ``synchronous=NORMAL``, and the tables created.

        Raises:
            ConfigurationError: For a bad URL or table name.
        """
        return cls(
            path=database_path(url),
            clock=clock,
            timeout=timeout,
            table=table,
            max_sessions=max_sessions,
        )

    async def _ensure_schema(self) -> aiosqlite.Connection:
        if self._closed:
            raise StoreUnavailable("the SQLite store is closed")
        async with self._schema_lock:
            db = await self._database.connection()
            if not self._ready:
                await self._database.transaction(
                    partial(create_schema, sql=self._sql, table=self._table), _WHAT
                )
                await self._database.open_reader()
                self._ready = True
            return db

    async def _connection(self) -> aiosqlite.Connection:
        if not self._ready:
            return await self._ensure_schema()
        return await self._database.connection()

    async def _fetch(self, name: str, params: Sequence[Any]) -> Iterable[Sequence[Any]]:
        """Run one statement and return its rows."""
        db = await self._connection()
        return await self._database.run(db.execute_fetchall(self._sql[name], params), _WHAT)

    async def _write(self, name: str, params: Sequence[Any]) -> int:
        """Run one statement and return how many rows it changed."""
        db = await self._connection()
        cursor = await self._database.run(db.execute(self._sql[name], params), _WHAT)
        return cursor.rowcount

    async def _transaction(self, work: Callable[[Transaction], Awaitable[_T]]) -> _T:
        await self._connection()
        return await self._database.transaction(work, _WHAT)

    async def load(self, sid: str) -> SessionRecord | None:
        """Return the live record under ``sid`` with its principal, or ``None``.

        ``None`` also for a row that fails to decode, has another format version, or is a
        login whose principal is missing, disabled or has another epoch. Loads issued together
        share one statement (:mod:`~sessionauth.backends.load_batches`).
        """
        return await self._loads.load(sid)

    def _load_now(self, sids: list[str]) -> list[Any] | None:
        """The rows of ``sids``, read on the event loop; ``None``: go through :meth:`_load_many`."""
        if not self._ready:
            return None
        rows: list[Any] = []
        for sql, params in self._load_statements(sids):
            found = self._database.read_now(sql, params, _WHAT)
            if found is None:  # the read would wait: the whole batch goes to the thread
                return None
            rows += found
        return rows

    async def _load_many(self, sids: list[str]) -> list[Any]:
        """The rows of ``sids`` read on the worker thread (no loop reader, or it would wait)."""
        db = await self._connection()
        # Queued on the thread together: a close cannot land between two of them.
        found = await asyncio.gather(
            *(
                self._database.run(db.execute_fetchall(sql, params), _WHAT)
                for sql, params in self._load_statements(sids)
            )
        )
        return [row for rows in found for row in rows]

    def _load_statements(self, sids: list[str]) -> list[tuple[str, tuple[Any, ...]]]:
        """The statements that load ``sids``, :data:`LOAD_BATCH` ids each, with their values."""
        now = self._clock()
        chunks = [sids[at : at + LOAD_BATCH] for at in range(0, len(sids), LOAD_BATCH)]
        return [(load_many(self._table, len(chunk)), (*chunk, now)) for chunk in chunks]

    async def create(self, sid: str, record: SessionRecord) -> Principal | None:
        """Insert ``record`` under ``sid`` if its epoch is current; evict beyond the cap.

        One transaction: the principal's row is checked and counted, the row inserted (an
        expired row with this id replaced), and the user's oldest sessions deleted while the
        count exceeds ``max_sessions``.

        Raises:
            SessionExists: If a live record has this id.
            StaleLogin: If the user's principal is missing, disabled or has another epoch.
        """
        now = self._clock()
        row = (
            sid,
            encode_values(record.data),
            record.user_id,
            record.created,
            record.seen,
            record.issued,
            record.expires,
            encode_bound_meta(sid, record.meta),
            record.epoch if record.user_id is not None else None,
            FORMAT_VERSION,
        )

        return await self._transaction(
            lambda tx: writes.create(
                tx,
                self._sql,
                row,
                epoch=record.epoch,
                now=now,
                max_sessions=self._max_sessions,
            )
        )

    async def update(self, sid: str, update: RecordUpdate) -> bool:
        """Merge ``update`` into the live record in one statement; ``False`` if it is gone."""
        patch: dict[str, Any] = {key: (value,) for key, value in update.set.items()}
        patch.update(dict.fromkeys(update.delete))
        params = (encode_json(patch), update.seen, update.expires, sid, self._clock())
        return await self._write("update", params) > 0

    async def touch(self, sid: str, *, seen: float, expires: float) -> bool:
        """Move the live record's activity time and expiry; ``False`` if it is gone."""
        return await self._write("touch", (seen, expires, sid, self._clock())) > 0

    async def delete(self, sid: str) -> bool:
        """Delete the record under ``sid`` if present (and uncount it, in one transaction).

        Returns whether there was one.
        """
        return await self._transaction(lambda tx: writes.delete(tx, self._sql, sid))

    async def list_user(
        self, user_id: str, *, limit: int = MAX_PAGE, cursor: str | None = None
    ) -> SessionPage:
        """Return a page of the user's served sessions, newest first (keyset on created, id)."""
        position = decode_cursor(cursor)
        if position is None:
            return SessionPage([], None)
        limit = max(1, min(limit, MAX_PAGE))
        rows = list(
            await self._fetch(
                "list_user", (user_id, self._clock(), *position, FORMAT_VERSION, limit + 1)
            )
        )
        found = []
        for sid, *columns in rows[:limit]:
            record = decode_row(columns, sid)
            if record is not None:
                found.append((sid, record))
        if len(rows) <= limit:
            return SessionPage(found, None)
        last = rows[limit - 1]
        return SessionPage(found, encode_cursor(last[3], last[0]))

    async def principal(self, user_id: str) -> Principal | None:
        """Return the principal of ``user_id``, or ``None``."""
        for epoch, role, disabled in await self._fetch("principal", (user_id,)):
            if epoch is not None:
                return Principal(epoch=epoch, role=role, disabled=bool(disabled))
        return None

    async def install_principal(self, user_id: str, principal: Principal) -> Principal:
        """Store ``principal`` unless the user has one, in one upsert; return the one in force."""
        params = (user_id, principal.epoch, principal.role, principal.disabled)
        for epoch, role, disabled in await self._fetch("install", params):
            return Principal(epoch=epoch, role=role, disabled=bool(disabled))
        raise AssertionError("an upsert with RETURNING returns its row")  # pragma: no cover

    async def change_principal(
        self, user_id: str, change: PrincipalChange
    ) -> tuple[Principal, int]:
        """Apply ``change`` in one transaction; a rotation deletes every session but ``keep``."""
        now = self._clock()
        return await self._transaction(
            lambda tx: writes.change_principal(tx, self._sql, user_id, change, now=now)
        )

    async def purge_expired(self, *, batch_size: int = 500) -> int:
        """Delete expired records ``batch_size`` at a time until a batch comes up short.

        Each batch is one short transaction (bounded by the timeout) that also uncounts the
        rows it deleted, so other processes' writes interleave between batches, and several
        purgers running at once only share the work.
        """
        if batch_size <= 0:
            raise ValueError("batch_size must be positive")

        total = 0
        while True:
            now = self._clock()
            deleted = await self._transaction(
                partial(writes.purge_batch, sql=self._sql, now=now, batch_size=batch_size)
            )
            total += deleted
            if deleted < batch_size:
                return total

    async def ping(self) -> None:
        """Raise ``StoreUnavailable`` unless the database answers a query from its file.

        Also when the file this store opened was deleted or replaced since (see
        :class:`~sessionauth.backends.sqlite.identity.DatabaseFile`).
        """
        db = await self._connection()
        await self._database.run(db.execute_fetchall("SELECT 1"), _WHAT)
        await self._database.check_file()

    async def aclose(self) -> None:
        """Stop serving; close the connection if this store owns it (an injected one stays open)."""
        self._closed, self._ready = True, False
        if self._owned:
            self._owned = False
            await self._database.aclose()
