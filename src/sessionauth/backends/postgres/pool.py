"""The one asyncpg pool a PostgreSQL backend keeps, shared by every view on its URL.

The session store, the login-attempt counter, the user store and the purge lock on one
database all run their statements on this pool
(:class:`~sessionauth.backends.postgres.PostgresBackend`), so a worker holds one pool per
database, not one per component. The pool is created on first
use, under the caller's deadline, so the backend can be built before the event loop runs.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Sequence
from typing import Any

import asyncpg
import asyncpg.exceptions as pg

from sessionauth.backends.postgres.calls import UNAVAILABLE, PooledCalls, unavailable
from sessionauth.backends.url_checks import check_url, redact
from sessionauth.errors import ConfigurationError, StoreMisconfigured, StoreUnavailable

__all__ = ["APPLICATION_NAME", "PostgresPool", "advisory_key"]

APPLICATION_NAME = "sessionauth"
"""The ``application_name`` of the pool's connections, as ``pg_stat_activity`` shows it."""

# Whether the table exists (and, if a column is named, has that column).
_PRESENT = (
    "SELECT to_regclass($1) IS NOT NULL AND ($2::text IS NULL OR EXISTS (SELECT 1 FROM"
    " pg_attribute WHERE attrelid = to_regclass($1) AND attname = $2 AND NOT attisdropped))"
)


# Errors of a connection attempt that are outages (class 08, 53 and 57: refused, too many
# connections, shutting down or starting up): waiting may fix them. Every other error the
# server answers a connection with (class 28: login refused; 3D000: no such database; an
# unknown or invalid setting) is a refusal of the URL, as is asyncpg's refusal of its contents.
_CONNECT_OUTAGES = (
    asyncpg.PostgresConnectionError,
    pg.OperatorInterventionError,
    pg.InsufficientResourcesError,
)


def advisory_key(name: str) -> int:
    """The signed 64-bit advisory lock key for ``name`` (a table, a purpose)."""
    digest = hashlib.sha256(f"sessionauth:{name}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


async def _keep_session_state(connection: asyncpg.Connection) -> None:
    """Pool reset hook for owned pools: skip asyncpg's reset query on every release.

    No view leaves session state behind (no ``SET``, ``LISTEN``, cursors or session-level
    advisory locks), and asyncpg still rolls back an unfinished transaction, so the default
    reset would only cost a round trip per operation.
    """
    del connection


class PostgresPool:
    """An asyncpg pool created on first use (or handed in), and how statements run on it.

    Args:
        url: A ``postgresql://`` DSN to open the pool on (this object owns the pool).
        pool: An open asyncpg pool (the caller owns it). Exactly one of ``url`` and ``pool``.
        timeout: Seconds for connecting; the pool's ``command_timeout`` too.
        min_size: Connections an owned pool keeps open.
        max_size: Connections an owned pool may open.
        application_name: What ``pg_stat_activity`` shows for an owned pool's connections.

    Raises:
        ConfigurationError: For a bad timeout or pool size, a malformed URL (see
            :func:`~sessionauth.backends.url_checks.check_url`), or not exactly one of ``url``
            and ``pool``.
    """

    def __init__(
        self,
        url: str | None = None,
        *,
        pool: asyncpg.Pool[asyncpg.Record] | None = None,
        timeout: float,
        min_size: int = 1,
        max_size: int = 10,
        application_name: str = APPLICATION_NAME,
    ):
        if (pool is None) == (url is None):
            raise ConfigurationError("give the PostgreSQL backend either a pool or a url")
        if url is not None:
            check_url(url)  # asyncpg sends options it does not know to the server as settings
        if not timeout > 0:
            raise ConfigurationError("the store timeout must be a positive number of seconds")
        if not 0 <= min_size <= max_size or max_size < 1:
            raise ConfigurationError("the pool sizes need 0 <= min_size <= max_size, max_size >= 1")
        self._url = url
        self._pool = pool
        self._size = (min_size, max_size)
        self._application_name = application_name
        self.timeout = timeout
        self.calls = PooledCalls(timeout)
        self._lock = asyncio.Lock()
        self._closed = False

    async def get(self) -> asyncpg.Pool[asyncpg.Record]:
        """Return the pool, creating it on first use (bound by the caller's deadline).

        Raises:
            StoreUnavailable: Once closed.
            StoreMisconfigured: When the server refuses the URL's settings (see
                :meth:`_connect`).
        """
        pool = self._pool
        if pool is not None and not self._closed:
            return pool
        async with self._lock:
            if self._closed:
                raise StoreUnavailable("the PostgreSQL backend is closed")
            if self._pool is None and self._url is not None:
                min_size, max_size = self._size
                self._pool = await asyncpg.create_pool(
                    self._url,
                    min_size=min_size,
                    max_size=max_size,
                    timeout=self.timeout,
                    # Bounds the cancel request asyncpg sends for a timed-out query.
                    command_timeout=self.timeout,
                    reset=_keep_session_state,
                    server_settings={"application_name": self._application_name},
                    connect=self._connect,
                )
            assert self._pool is not None  # noqa: S101 - given, or just created
            return self._pool

    async def _connect(self, *args: Any, **kwargs: Any) -> asyncpg.Connection:
        """``asyncpg.connect`` for the pool, with a refused configuration as StoreMisconfigured.

        The pool opens connections at creation and whenever it grows, so every one comes
        here. A server that answers the connection with an error that waiting will not fix (a
        refused login, a missing database, an unknown setting) raises ``StoreMisconfigured``:
        a 503 per request, which ``sessionauth serve`` and ``check`` refuse. The outages of
        :data:`UNAVAILABLE` (refused, shutting down, too many connections) pass unchanged.
        """
        try:
            return await asyncpg.connect(*args, **kwargs)
        except (asyncpg.PostgresError, ValueError) as exc:  # ClientConfigurationError too
            if isinstance(exc, _CONNECT_OUTAGES):
                raise
            raise StoreMisconfigured(
                f"PostgreSQL at {redact(self._url or '')} refuses the URL's settings: "
                f"{type(exc).__name__}: {exc}"
            ) from exc

    async def run(self, method: str, sql: str, *args: Any) -> Any:
        """Return ``connection.<method>(sql, *args)`` on a pooled connection.

        See :class:`~sessionauth.backends.postgres.calls.PooledCalls`.
        """
        return await self.calls.run(await self.get(), method, sql, *args)

    async def ping(self) -> None:
        """Raise ``StoreUnavailable`` unless the server answers a query in time."""
        try:
            async with asyncio.timeout(self.timeout):
                await self.run("fetchval", "SELECT 1")
        except UNAVAILABLE as exc:
            raise unavailable(exc, "PostgreSQL") from exc

    async def create_tables(
        self, name: str, table: str, statements: Sequence[str], *, column: str | None = None
    ) -> None:
        """Unless ``table`` exists, run ``statements`` in one transaction, under a lock.

        Concurrent ``CREATE … IF NOT EXISTS`` can still collide in the catalog's unique
        indexes, so replicas starting together take turns on an advisory lock named ``name``.
        A table that exists already is left alone without writing anything, so a read-only
        standby (after a failover) still serves reads.

        Args:
            name: Names the advisory lock.
            table: The table, as SQL names it (quoted or not, optionally schema-qualified).
            statements: Create the table and its indexes (and add what older tables lack).
            column: The table counts as existing only once it has this column, the last one
                a release added: an older table gets ``statements`` run on it too.
        """
        pool = await self.get()
        if await self.calls.run(pool, "fetchval", _PRESENT, table, column):
            return
        async with pool.acquire() as connection, connection.transaction():
            await connection.execute("SELECT pg_advisory_xact_lock($1)", advisory_key(name))
            for statement in statements:
                await connection.execute(statement)

    async def aclose(self) -> None:
        """Close the pool if this object created it, forcibly if that takes too long; safe twice."""
        async with self._lock:  # a first-use open in flight finishes (or fails) first
            self._closed = True
            pool, self._pool = self._pool, None
        if pool is None or self._url is None:
            return
        try:
            async with asyncio.timeout(self.timeout):
                await pool.close()
        except UNAVAILABLE:
            # Connections that will not close gracefully (the server is gone) are dropped.
            pool.terminate()
