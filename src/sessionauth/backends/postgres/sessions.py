"""Sessions in one PostgreSQL table, through an asyncpg connection pool.

The table (``sessionauth_sessions`` by default) holds one row per session::

    id text PRIMARY KEY, user_id text NULL, created/seen/issued/expires double precision,
    data jsonb, meta jsonb ([binding, meta]: see :mod:`sessionauth.backends.binding`)

with an index on ``(user_id, created)`` for the per-user operations and one on ``expires`` for
:meth:`PostgresStore.purge_expired`. Times are POSIX seconds from the store's clock, never the
server's ``now()``, so expiry agrees with the policy that computed it.

Concurrency rests on PostgreSQL's row locks, one statement per operation:

* ``update`` merges in SQL (``data || set - delete``) under ``WHERE expires > now``: concurrent
  writers of different keys each merge into the latest version of the row, and a write that
  lands after a delete finds no row, so it can never bring the session back.
* The per-user operations lock the user's rows in ``id`` order, so two of them never deadlock.
* ``purge_expired`` takes batches with ``FOR UPDATE SKIP LOCKED``: several replicas purging at
  once split the work instead of waiting on (or double-counting) each other's rows.

Nothing connects when the store is built: the pool (for :meth:`PostgresStore.from_url`, or the
backend's, :mod:`sessionauth.backends.postgres.pool`) and the table are created on first use,
so a store can be built before the event loop runs.

Every operation runs under one deadline, ``timeout``, covering first-use setup, pool acquire,
connect, query and release. When it passes mid-query the caller gets ``StoreUnavailable`` at
once; asyncpg's cancellation of the query, and the connection's return to the pool (or its
termination if the server never acknowledges), finish in the background within another
``timeout`` (see :mod:`sessionauth.backends.postgres.calls`, shared with the user store and the
attempt counter, which also classifies the errors).

JSON crosses the wire as text and is encoded and decoded here with msgspec (see
:mod:`sessionauth.record`); casting in SQL (``::text``) keeps that independent of any jsonb codec
the owner of an injected pool may have registered. A ``data`` value that is not a JSON object,
or a ``meta`` value that is not bound to the row's id, counts as no session.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

import asyncpg
import asyncpg.exceptions
import msgspec

from sessionauth.backends.binding import decode_bound_meta, encode_bound_meta
from sessionauth.backends.postgres.calls import UNAVAILABLE, unavailable
from sessionauth.backends.postgres.loads import LoadBatcher
from sessionauth.backends.postgres.pool import PostgresPool, advisory_key
from sessionauth.backends.postgres.sql import SCHEMA, STATEMENTS, parse_table
from sessionauth.errors import ConfigurationError, StoreUnavailable
from sessionauth.policy import Clock, system_clock
from sessionauth.record import RecordUpdate, SessionRecord, decode_json, encode_json
from sessionauth.stores.base import DEFAULT_TIMEOUT, SessionStore

__all__ = ["DEFAULT_TABLE", "PostgresStore"]

DEFAULT_TABLE = "sessionauth_sessions"


def _affected(status: str) -> int:
    """Return the row count of a command status such as ``UPDATE 3``."""
    return int(status.rpartition(" ")[2])


def _to_record(row: asyncpg.Record, sid: str) -> SessionRecord | None:
    """The record of a row read under ``sid``; ``None`` if corrupt or bound to another id."""
    meta = decode_bound_meta(sid, row[1])
    if meta is None:
        return None
    try:
        data = decode_json(row[0])
    except msgspec.DecodeError:
        return None
    return SessionRecord(
        data=data,
        meta=meta,
        user_id=row[2],
        created=row[3],
        seen=row[4],
        issued=row[5],
        expires=row[6],
    )


class PostgresStore(SessionStore):
    """Keeps sessions in a PostgreSQL table through an asyncpg pool.

    Build it with :meth:`from_url` (or ``url=``), which creates its own pool on first use and
    closes it on :meth:`aclose`; or hand it an open pool that you own and close; or get it from a
    :class:`~sessionauth.backends.postgres.PostgresBackend`, whose pool it shares. Either way
    the table and its indexes are created if missing, before the first operation.

    Args:
        pool: An open asyncpg pool (the caller owns it). Give it a connect ``timeout``.
        url: A ``postgresql://`` DSN to open a pool on, on first use (the store owns it).
        clock: The time source used to decide expiry.
        timeout: Seconds any operation may take (first-use setup, pool acquire, connect,
            query and release) before it raises ``StoreUnavailable``; also the connect
            timeout of an owned pool.
        table: The table name, optionally schema-qualified (``schema.table``); the schema
            must exist.
        min_size: Connections an owned pool keeps open.
        max_size: Connections an owned pool may open.
        database: A backend's shared pool instead of ``pool`` or ``url`` (closed by
            :meth:`aclose` only if ``owned``).
        owned: Whether :meth:`aclose` closes ``database``.

    Raises:
        ConfigurationError: For an invalid table name, timeout or pool size, or unless exactly
            one of ``pool`` and ``url`` is given.
    """

    def __init__(
        self,
        pool: asyncpg.Pool[asyncpg.Record] | None = None,
        *,
        url: str | None = None,
        clock: Clock = system_clock,
        timeout: float = DEFAULT_TIMEOUT,
        table: str = DEFAULT_TABLE,
        min_size: int = 1,
        max_size: int = 10,
        database: PostgresPool | None = None,
        owned: bool = False,
    ):
        if (pool is not None) + (url is not None) + (database is not None) != 1:
            raise ConfigurationError(
                "give the PostgreSQL store exactly one of a pool, a url or a database"
            )
        quoted, name = parse_table(table)
        if database is None:
            database = PostgresPool(
                url, pool=pool, timeout=timeout, min_size=min_size, max_size=max_size
            )
            owned = url is not None
        self._database = database
        self._owned = owned
        self._pool: asyncpg.Pool[asyncpg.Record] | None = None
        self._clock = clock
        self._timeout = database.timeout
        # False until the pool and the table exist, and again once closed: the one flag the
        # hot path checks.
        self._ready = False
        self._closed = False
        self._open_lock = asyncio.Lock()
        self._calls = database.calls
        self._schema = ";\n".join(
            sql.format(table=quoted, name=name, lock_key=advisory_key(table)) for sql in SCHEMA
        )
        self._sql = {key: template.format(table=quoted) for key, template in STATEMENTS.items()}
        self._loads = LoadBatcher(self._load_many, _to_record)

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        clock: Clock = system_clock,
        timeout: float = DEFAULT_TIMEOUT,
        table: str = DEFAULT_TABLE,
        min_size: int = 1,
        max_size: int = 10,
    ) -> PostgresStore:
        """Return a store that opens its own pool on ``url`` on first use and owns it.

        Raises:
            ConfigurationError: For an invalid table name, timeout or pool size.
        """
        return cls(
            url=url,
            clock=clock,
            timeout=timeout,
            table=table,
            min_size=min_size,
            max_size=max_size,
        )

    async def _open(self) -> None:
        """Create the owned pool if needed, then the table (under the caller's deadline)."""
        async with self._open_lock:
            if self._closed:
                raise StoreUnavailable("the PostgreSQL session store is closed")
            self._pool = await self._database.get()
            if not self._ready:
                await self._run("execute", self._schema)
                self._ready = True

    async def _call(self, method: str, sql: str, *args: Any) -> Any:
        """Return ``connection.<method>(sql, *args)`` on a pooled connection, within the timeout.

        One timer bounds the whole operation: there is no separate acquire or query timer.
        """
        try:
            async with asyncio.timeout(self._timeout):
                if not self._ready:
                    await self._open()
                return await self._run(method, sql, *args)
        except UNAVAILABLE as exc:
            raise unavailable(exc, "PostgreSQL session store") from exc
        except asyncpg.exceptions.UntranslatableCharacterError as exc:
            # jsonb cannot hold U+0000 inside a string; retrying will not change that.
            raise ValueError("PostgreSQL cannot store U+0000 (NUL) in session values") from exc

    async def _run(self, method: str, sql: str, *args: Any) -> Any:
        pool = self._pool
        if pool is None:
            raise StoreUnavailable("the PostgreSQL session store is not open")
        return await self._calls.run(pool, method, sql, *args)

    async def load(self, sid: str) -> SessionRecord | None:
        """Return the live record under ``sid``, or ``None`` (also for a corrupt one).

        Loads issued together share one query (:mod:`~sessionauth.backends.postgres.loads`).
        """
        return await self._loads.load(sid)

    async def _load_many(self, sids: list[str]) -> list[asyncpg.Record]:
        rows: list[asyncpg.Record] = await self._call(
            "fetch", self._sql["load_many"], sids, self._clock()
        )
        return rows

    async def create(self, sid: str, record: SessionRecord) -> None:
        """Store ``record`` under ``sid`` (replacing only an expired record with that id)."""
        await self._call(
            "execute",
            self._sql["create"],
            sid,
            record.user_id,
            record.created,
            record.seen,
            record.issued,
            record.expires,
            encode_json(record.data),
            encode_bound_meta(sid, record.meta),
            self._clock(),
        )

    async def update(self, sid: str, update: RecordUpdate) -> bool:
        """Merge ``update`` into the live record in one statement; ``False`` if it is gone."""
        status = await self._call(
            "execute",
            self._sql["update"],
            sid,
            encode_json(update.set),
            list(update.delete),
            update.seen,
            update.expires,
            self._clock(),
        )
        return _affected(status) == 1

    async def touch(self, sid: str, *, seen: float, expires: float) -> bool:
        """Move the live record's activity time and expiry; ``False`` if it is gone."""
        status = await self._call("execute", self._sql["touch"], sid, seen, expires, self._clock())
        return _affected(status) == 1

    async def delete(self, sid: str) -> None:
        """Delete the record under ``sid`` if present."""
        await self._call("execute", self._sql["delete"], sid)

    async def list_user(self, user_id: str) -> list[tuple[str, SessionRecord]]:
        """Return the user's live sessions, oldest first (corrupt ones left out)."""
        rows = await self._call("fetch", self._sql["list_user"], user_id, self._clock())
        found = ((row[7], _to_record(row, row[7])) for row in rows)
        return [(sid, record) for sid, record in found if record is not None]

    async def delete_user(self, user_id: str, *, keep: str | None = None) -> int:
        """Delete the user's sessions except ``keep``; count the live ones among them."""
        count = await self._call("fetchval", self._sql["delete_user"], user_id, keep, self._clock())
        return int(count)

    async def update_user(self, user_id: str, values: Mapping[str, Any]) -> int:
        """Set ``values`` in each of the user's live sessions in one statement."""
        status = await self._call(
            "execute", self._sql["update_user"], user_id, encode_json(values), self._clock()
        )
        return _affected(status)

    async def purge_expired(self, *, batch_size: int = 500) -> int:
        """Delete expired records, ``batch_size`` per statement, until a batch comes up short.

        Each batch is its own short transaction, so purging never holds many locks for long;
        rows that another purger has locked are skipped, and that purger deletes them.
        """
        if batch_size <= 0:
            raise ValueError("batch_size must be positive")
        total = 0
        while True:
            status = await self._call("execute", self._sql["purge"], self._clock(), batch_size)
            deleted = _affected(status)
            total += deleted
            if deleted < batch_size:
                return total

    async def ping(self) -> None:
        """Raise ``StoreUnavailable`` unless the server answers a query."""
        await self._call("fetchval", "SELECT 1")

    async def aclose(self) -> None:
        """Stop serving; close the pool if this store owns it (an injected one stays open)."""
        self._closed, self._ready = True, False
        async with self._open_lock:  # a first-use open in flight finishes (or fails) first
            self._pool = None
        if self._owned:
            self._owned = False
            await self._database.aclose()
