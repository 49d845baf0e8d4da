"""Sessions and principals in two PostgreSQL tables, through an asyncpg connection pool.

The sessions table (``sessionauth_sessions`` by default) holds one row per session::

    id text PRIMARY KEY, user_id text NULL, created/seen/issued/expires double precision,
    data jsonb, meta jsonb ([binding, meta]: see :mod:`sessionauth.backends.binding`),
    epoch text NULL, version smallint NULL

with an index on ``(user_id, created)`` for the per-user operations (the cap's oldest, the
pages) and one on ``expires`` for :meth:`PostgresStore.purge_expired`. Next to it,
``<table>_principals`` holds each user's principal and session count (see
:mod:`sessionauth.backends.sql_sessions`, shared with SQLite, for what the columns mean and
how a row is judged served). Times are POSIX seconds from the store's clock, never the
server's ``now()``, so expiry agrees with the policy that computed it.

* ``load`` is one statement, the session row ``LEFT JOIN`` its principal; the loads of one
  event-loop iteration share it (:mod:`~sessionauth.backends.load_batches`).
* ``update`` merges in SQL (``data || set - delete``) under ``WHERE expires > now``: concurrent
  writers of different keys each merge into the latest version of the row, and a write that
  lands after a delete finds no row, so it can never bring the session back.
* A login, a logout, a principal change and each purge batch are one transaction each, which
  lock a principal's row before its sessions' rows
  (:mod:`~sessionauth.backends.postgres.writes` says why that is race- and deadlock-free).
  An anonymous session is created and deleted by one statement.

Nothing connects when the store is built, and every operation runs under one deadline,
``timeout``: see :mod:`~sessionauth.backends.postgres.session_guard`, which opens the pool and
the tables on first use and classifies the errors.

JSON crosses the wire as text (:mod:`~sessionauth.backends.postgres.rows`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import asyncpg

from sessionauth.backends.binding import encode_bound_meta
from sessionauth.backends.load_batches import LoadBatcher
from sessionauth.backends.postgres import writes
from sessionauth.backends.postgres.pool import PostgresPool, advisory_key
from sessionauth.backends.postgres.rows import affected, to_record
from sessionauth.backends.postgres.session_guard import SessionGuard
from sessionauth.backends.postgres.sql import SCHEMA, STATEMENTS, parse_table
from sessionauth.backends.sql_sessions import decode_cursor, encode_cursor
from sessionauth.errors import ConfigurationError, StaleLogin
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
from sessionauth.tokens import group_of

__all__ = ["DEFAULT_TABLE", "PostgresStore"]

DEFAULT_TABLE = "sessionauth_sessions"


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
        max_sessions: Live sessions a user may have; a login beyond it ends the oldest.

    Raises:
        ConfigurationError: For an invalid table name, timeout, pool size or cap, or unless
            exactly one of ``pool`` and ``url`` is given.
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
        max_sessions: int = DEFAULT_MAX_SESSIONS,
    ):
        if max_sessions < 1:
            raise ConfigurationError("max_sessions must be at least 1")
        if (pool is not None) + (url is not None) + (database is not None) != 1:
            raise ConfigurationError(
                "give the PostgreSQL store exactly one of a pool, a url or a database"
            )
        quoted, principals, name = parse_table(table)
        self._max_sessions = max_sessions
        if database is None:
            database = PostgresPool(
                url, pool=pool, timeout=timeout, min_size=min_size, max_size=max_size
            )
            owned = url is not None
        self._clock = clock
        schema = ";\n".join(
            sql.format(table=quoted, principals=principals, name=name, lock_key=advisory_key(table))
            for sql in SCHEMA
        )
        self._guard = SessionGuard(
            database, schema=schema, table=quoted, principals=principals, owned=owned
        )
        self._sql = {
            key: template.format(table=quoted, principals=principals)
            for key, template in STATEMENTS.items()
        }
        self._loads = LoadBatcher(self._load_many, to_record)

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
        max_sessions: int = DEFAULT_MAX_SESSIONS,
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
            max_sessions=max_sessions,
        )

    async def load(self, sid: str) -> SessionRecord | None:
        """Return the live record under ``sid``, or ``None`` (also for a corrupt one).

        Loads issued together share one query (:mod:`~sessionauth.backends.load_batches`).
        """
        return await self._loads.load(sid)

    async def _load_many(self, sids: list[str]) -> list[asyncpg.Record]:
        rows: list[asyncpg.Record] = await self._guard.call(
            "fetch", self._sql["load_many"], sids, self._clock()
        )
        return rows

    async def create(self, sid: str, record: SessionRecord) -> Principal | None:
        """Store ``record`` under ``sid`` if its epoch is current; evict beyond the cap.

        An anonymous record is one statement; a user's too (the ``login`` statement: epoch
        check, count and insert), followed by one that evicts the oldest when the count
        exceeds the cap. An id already taken goes the slow way, one transaction
        (:func:`~sessionauth.backends.postgres.writes.create`).

        Raises:
            SessionExists: If a live record has this id.
            StaleLogin: If the user's principal is missing, disabled or has another epoch.
        """
        now = self._clock()
        user_id = record.user_id
        row = (
            sid,
            user_id,
            record.created,
            record.seen,
            record.issued,
            record.expires,
            encode_json(record.data),
            encode_bound_meta(sid, record.meta),
            None if user_id is None else record.epoch,
            FORMAT_VERSION,
        )
        if user_id is None:
            if not await self._guard.call("fetchval", self._sql["insert"], *row):
                await self._guard.transact(lambda c: writes.insert(c, self._sql, row, now=now))
            return None
        login = "login" if record.epoch is not None else "login_unchecked"
        try:
            claimed = await self._guard.call("fetchrow", self._sql[login], *row)
        except asyncpg.UniqueViolationError:  # the id is taken: live (refused) or expired
            return await self._guard.transact(
                lambda c: writes.create(
                    c, self._sql, row, epoch=record.epoch, now=now, max_sessions=self._max_sessions
                )
            )
        if claimed is None:
            raise StaleLogin("the user's principal changed during the login")
        if claimed["sessions"] > self._max_sessions:
            await self._guard.call("execute", self._sql["evict"], user_id, sid, self._max_sessions)
        if record.epoch is None:
            return None
        return Principal(epoch=claimed["epoch"], role=claimed["role"])

    async def update(self, sid: str, update: RecordUpdate) -> bool:
        """Merge ``update`` into the live record in one statement; ``False`` if it is gone."""
        status = await self._guard.call(
            "execute",
            self._sql["update"],
            sid,
            encode_json(update.set),
            list(update.delete),
            update.seen,
            update.expires,
            self._clock(),
        )
        return affected(status) == 1

    async def touch(self, sid: str, *, seen: float, expires: float) -> bool:
        """Move the live record's activity time and expiry; ``False`` if it is gone."""
        status = await self._guard.call(
            "execute", self._sql["touch"], sid, seen, expires, self._clock()
        )
        return affected(status) == 1

    async def delete(self, sid: str) -> bool:
        """Delete the record under ``sid`` if present, and uncount it from its user's.

        Returns whether there was one.
        """
        if group_of(sid) is None:  # an anonymous session's id: no principal's row to lock
            return bool(await self._guard.call("fetchval", self._sql["delete_any"], sid))
        return await self._guard.transact(lambda c: writes.delete(c, self._sql, sid))

    async def list_user(
        self, user_id: str, *, limit: int = MAX_PAGE, cursor: str | None = None
    ) -> SessionPage:
        """Return a page of the user's served sessions, newest first (keyset on created, id)."""
        position = decode_cursor(cursor)
        if position is None:
            return SessionPage([], None)
        limit = max(1, min(limit, MAX_PAGE))
        rows = await self._guard.call(
            "fetch",
            self._sql["list_user"],
            user_id,
            self._clock(),
            *position,
            limit + 1,
            FORMAT_VERSION,
        )
        found = [(row[-1], to_record(row, row[-1])) for row in rows[:limit]]
        page = [(sid, record) for sid, record in found if record is not None]
        if len(rows) <= limit:
            return SessionPage(page, None)
        last = rows[limit - 1]
        return SessionPage(page, encode_cursor(last[3], last[-1]))

    async def principal(self, user_id: str) -> Principal | None:
        """Return the principal of ``user_id``, or ``None``."""
        row = await self._guard.call("fetchrow", self._sql["principal"], user_id)
        if row is None or row[0] is None:
            return None
        return Principal(epoch=row[0], role=row[1], disabled=row[2])

    async def install_principal(self, user_id: str, principal: Principal) -> Principal:
        """Store ``principal`` unless the user has one, in one upsert; return the one in force."""
        row = await self._guard.call(
            "fetchrow",
            self._sql["install"],
            user_id,
            principal.epoch,
            principal.role,
            principal.disabled,
        )
        return Principal(epoch=row[0], role=row[1], disabled=row[2])

    async def change_principal(
        self, user_id: str, change: PrincipalChange
    ) -> tuple[Principal, int]:
        """Apply ``change`` in one transaction; a rotation deletes every session but ``keep``."""
        now = self._clock()
        return await self._guard.transact(
            lambda c: writes.change_principal(c, self._sql, user_id, change, now=now)
        )

    async def purge_expired(self, *, batch_size: int = 500) -> int:
        """Delete expired records, ``batch_size`` per transaction, until a batch comes up short.

        Each batch is its own short transaction, so purging never holds many locks for long;
        rows that another purger has locked are skipped, and that purger deletes them.
        """
        if batch_size <= 0:
            raise ValueError("batch_size must be positive")
        total = 0
        while True:
            candidates, deleted = await self._guard.transact(self._purge_batch(batch_size))
            total += deleted
            if candidates < batch_size or not deleted:
                return total

    def _purge_batch(
        self, batch_size: int
    ) -> Callable[[writes.Connection], Awaitable[tuple[int, int]]]:
        now = self._clock()
        return lambda c: writes.purge_batch(c, self._sql, now=now, batch_size=batch_size)

    async def ping(self) -> None:
        """Raise ``StoreUnavailable`` unless the server answers a query."""
        await self._guard.call("fetchval", "SELECT 1")

    async def aclose(self) -> None:
        """Stop serving; close the pool if this store owns it (an injected one stays open)."""
        await self._guard.aclose()
