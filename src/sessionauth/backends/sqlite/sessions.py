"""The embedded session store: one SQLite table, reached through aiosqlite.

Every statement runs on aiosqlite's worker thread, never on the event loop, in autocommit mode:
each operation is one statement, so each is atomic on its own and no transaction is ever held
open between awaits. The database runs in WAL mode, so readers never wait for a writer and
several processes (workers, the ``purge-expired`` CLI) can share one file.

Values are kept as ``{key: [value]}``: each value wrapped in a one-element JSON array. That is
what makes ``update`` a single atomic statement: SQLite's ``json_patch`` (RFC 7396) merges a
patch object into the stored one, where a ``null`` deletes a key and an object merges
recursively. With every value wrapped, a patch entry is either ``[value]``, which replaces the
old value wholesale (``None`` and nested objects included), or ``null``, which deletes the key.
No JSON path is ever built from a key, so keys with dots, quotes, brackets or any other
character need no quoting (SQLite's path syntax cannot even express a key holding a ``"``).

The ``meta`` column holds ``[binding, meta]``, binding the row to its id
(:mod:`sessionauth.backends.binding`): a row read under any other id is no session.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import aiosqlite
import msgspec

from sessionauth.backends.binding import decode_bound_meta, encode_bound_meta
from sessionauth.backends.sqlite.files import SQLiteDatabase, database_path
from sessionauth.errors import ConfigurationError, StoreError, StoreUnavailable
from sessionauth.policy import Clock, system_clock
from sessionauth.record import RecordUpdate, SessionRecord, decode_json, encode_json
from sessionauth.stores.base import DEFAULT_TIMEOUT, SessionStore

__all__ = ["DEFAULT_TABLE", "SQLiteStore"]

DEFAULT_TABLE = "sessionauth_sessions"
"""The table a store uses unless told otherwise."""

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")
_COLUMNS = "data, user_id, created, seen, issued, expires, meta"
_WHAT = "SQLite session store"


def _check_options(table: str, timeout: float) -> None:
    if not _IDENTIFIER.fullmatch(table):
        raise ConfigurationError(f"invalid table name {table!r}: use letters, digits and _")
    if not timeout > 0:
        raise ConfigurationError("the store timeout must be a positive number of seconds")


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
        table: The table's name, a plain SQL identifier.
        owned: Whether :meth:`aclose` closes ``database``.

    Raises:
        ConfigurationError: For an invalid table name, timeout or connection setting.
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
    ):
        _check_options(table, timeout)
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
        t = table
        # The table name is a validated identifier; every value goes in as a parameter.
        self._schema = (
            f"CREATE TABLE IF NOT EXISTS {t} ("
            " id TEXT PRIMARY KEY NOT NULL, user_id TEXT,"
            " created REAL NOT NULL, seen REAL NOT NULL, issued REAL NOT NULL,"
            " expires REAL NOT NULL, data TEXT NOT NULL, meta TEXT NOT NULL"
            ") WITHOUT ROWID",
            # Partial: anonymous sessions (no user) stay out of the per-user index.
            f"CREATE INDEX IF NOT EXISTS {t}_user ON {t} (user_id, created)"
            " WHERE user_id IS NOT NULL",
            f"CREATE INDEX IF NOT EXISTS {t}_expires ON {t} (expires)",
        )
        self._sql_load = f"SELECT {_COLUMNS} FROM {t} WHERE id = ? AND expires > ?"  # noqa: S608
        self._sql_create = (
            f"INSERT INTO {t} (id, {_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"  # noqa: S608
            " ON CONFLICT (id) DO UPDATE SET data = excluded.data, user_id = excluded.user_id,"
            " created = excluded.created, seen = excluded.seen, issued = excluded.issued,"
            f" expires = excluded.expires, meta = excluded.meta WHERE {t}.expires <= ?"
        )
        # A tampered row that is not a JSON object is left alone: json_patch would fail on
        # malformed JSON, or replace a non-object wholesale and so revive a dead record.
        is_object = "CASE WHEN json_valid(data) THEN json_type(data) = 'object' END"
        self._sql_update = (
            f"UPDATE {t} SET data = json_patch(data, ?), seen = ?, expires = ?"  # noqa: S608
            f" WHERE id = ? AND expires > ? AND {is_object}"
        )
        self._sql_touch = f"UPDATE {t} SET seen = ?, expires = ? WHERE id = ? AND expires > ?"  # noqa: S608
        self._sql_delete = f"DELETE FROM {t} WHERE id = ?"  # noqa: S608
        self._sql_list_user = (
            f"SELECT id, {_COLUMNS} FROM {t}"  # noqa: S608
            " WHERE user_id = ? AND expires > ? ORDER BY created, id"
        )
        self._sql_delete_user = (
            f"DELETE FROM {t} WHERE user_id = ? AND id IS NOT ? RETURNING expires"  # noqa: S608
        )
        self._sql_update_user = (
            f"UPDATE {t} SET data = json_patch(data, ?)"  # noqa: S608
            f" WHERE user_id = ? AND expires > ? AND {is_object}"
        )
        self._sql_purge = (
            f"DELETE FROM {t} WHERE id IN"  # noqa: S608
            f" (SELECT id FROM {t} WHERE expires <= ? LIMIT ?)"
        )

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        clock: Clock = system_clock,
        timeout: float = DEFAULT_TIMEOUT,
        table: str = DEFAULT_TABLE,
    ) -> SQLiteStore:
        """Return a store for the database a ``sqlite:///`` URL names; it owns its connection.

        Nothing is opened yet: on first use the parent directory is created if missing, the
        database switched to WAL with ``synchronous=NORMAL``, and the table created.

        Raises:
            ConfigurationError: For a bad URL or table name.
        """
        return cls(path=database_path(url), clock=clock, timeout=timeout, table=table)

    async def _ensure_schema(self) -> aiosqlite.Connection:
        if self._closed:
            raise StoreUnavailable("the SQLite store is closed")
        async with self._schema_lock:
            db = await self._database.connection()
            if not self._ready:
                for statement in self._schema:
                    await self._database.run(db.execute_fetchall(statement), _WHAT)
                self._ready = True
            return db

    async def _connection(self) -> aiosqlite.Connection:
        if not self._ready:
            return await self._ensure_schema()
        return await self._database.connection()

    async def _fetch(self, sql: str, params: Sequence[Any]) -> Iterable[Sequence[Any]]:
        """Run one statement and return its rows."""
        db = await self._connection()
        return await self._database.run(db.execute_fetchall(sql, params), _WHAT)

    async def _write(self, sql: str, params: Sequence[Any]) -> int:
        """Run one statement and return how many rows it changed."""
        db = await self._connection()
        cursor = await self._database.run(db.execute(sql, params), _WHAT)
        return cursor.rowcount

    async def load(self, sid: str) -> SessionRecord | None:
        """Return the live record under ``sid``, or ``None`` (also when it fails to decode)."""
        rows = await self._fetch(self._sql_load, (sid, self._clock()))
        for row in rows:
            return _decode(row, sid)
        return None

    async def create(self, sid: str, record: SessionRecord) -> None:
        """Insert ``record`` under ``sid``, replacing only a dead record of the same id.

        Raises:
            StoreError: If a live record already has this id (impossible for a fresh token).
        """
        params = (
            sid,
            _encode_values(record.data),
            record.user_id,
            record.created,
            record.seen,
            record.issued,
            record.expires,
            encode_bound_meta(sid, record.meta),
            self._clock(),
        )
        if not await self._write(self._sql_create, params):
            raise StoreError("refusing to overwrite a live session with a new one")

    async def update(self, sid: str, update: RecordUpdate) -> bool:
        """Merge ``update`` into the live record in one statement; ``False`` if it is gone."""
        patch: dict[str, Any] = {key: (value,) for key, value in update.set.items()}
        patch.update(dict.fromkeys(update.delete))
        params = (encode_json(patch), update.seen, update.expires, sid, self._clock())
        return await self._write(self._sql_update, params) > 0

    async def touch(self, sid: str, *, seen: float, expires: float) -> bool:
        """Move the live record's activity time and expiry; ``False`` if it is gone."""
        return await self._write(self._sql_touch, (seen, expires, sid, self._clock())) > 0

    async def delete(self, sid: str) -> None:
        """Delete the record under ``sid`` if present."""
        await self._write(self._sql_delete, (sid,))

    async def list_user(self, user_id: str) -> list[tuple[str, SessionRecord]]:
        """Return the user's live sessions, oldest first, skipping any that fail to decode."""
        rows = await self._fetch(self._sql_list_user, (user_id, self._clock()))
        found = []
        for sid, *columns in rows:
            record = _decode(columns, sid)
            if record is not None:
                found.append((sid, record))
        return found

    async def delete_user(self, user_id: str, *, keep: str | None = None) -> int:
        """Delete the user's sessions except ``keep``; return how many live ones went."""
        now = self._clock()
        rows = await self._fetch(self._sql_delete_user, (user_id, keep))
        return sum(1 for (expires,) in rows if expires > now)

    async def update_user(self, user_id: str, values: Mapping[str, Any]) -> int:
        """Set ``values`` in each of the user's live sessions, each row atomically."""
        patch = _encode_values(values)
        return await self._write(self._sql_update_user, (patch, user_id, self._clock()))

    async def purge_expired(self, *, batch_size: int = 500) -> int:
        """Delete expired records ``batch_size`` at a time until a batch comes up short.

        Each batch is one short statement (bounded by the timeout), so other processes' writes
        interleave between batches, and several purgers running at once only share the work.
        """
        if batch_size <= 0:
            raise ValueError("batch_size must be positive")
        total = 0
        while True:
            deleted = await self._write(self._sql_purge, (self._clock(), batch_size))
            total += deleted
            if deleted < batch_size:
                return total

    async def ping(self) -> None:
        """Raise ``StoreUnavailable`` unless the database answers a query from its file.

        Also when the file this store opened was deleted or replaced since (see
        :class:`~sessionauth.backends.sqlite.files.DatabaseFile`).
        """
        await self._fetch("SELECT 1", ())
        await self._database.check_file()

    async def aclose(self) -> None:
        """Stop serving; close the connection if this store owns it (an injected one stays open)."""
        self._closed, self._ready = True, False
        if self._owned:
            self._owned = False
            await self._database.aclose()


def _encode_values(values: Mapping[str, Any]) -> str:
    return encode_json({key: (value,) for key, value in values.items()})


def _decode(row: Sequence[Any], sid: str) -> SessionRecord | None:
    """The record of a row read under ``sid``; ``None`` if corrupt or bound to another id."""
    data, user_id, created, seen, issued, expires, meta = row
    meta_values = decode_bound_meta(sid, meta)
    if meta_values is None:
        return None
    try:
        values = _unwrap(decode_json(data))
    except msgspec.DecodeError:
        return None
    if values is None:
        return None
    return SessionRecord(
        data=values,
        created=created,
        seen=seen,
        issued=issued,
        expires=expires,
        user_id=user_id,
        meta=meta_values,
    )


def _unwrap(wrapped: dict[str, Any]) -> dict[str, Any] | None:
    # A value that is not a one-element array was not written by this store: no session.
    values = {}
    for key, box in wrapped.items():
        if type(box) is not list or len(box) != 1:
            return None
        values[key] = box[0]
    return values
