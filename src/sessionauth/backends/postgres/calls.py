"""One statement on an asyncpg pool under one deadline, and what its failures mean.

Shared by every PostgreSQL component (the session store, the user store, the attempt counter),
so they time out alike and classify outages alike:

* :data:`UNAVAILABLE` lists the asyncpg (and socket) errors that mean the database is
  unavailable, and :func:`unavailable` picks the exception to raise for one: a
  :class:`~sessionauth.errors.StoreFull` for SQLSTATE class 53 (insufficient resources: disk
  full, out of memory, a configured limit such as ``temp_file_limit``), a plain
  :class:`~sessionauth.errors.StoreUnavailable` for the rest (connection lost or refused, the
  server shutting down or starting, login refused, the database gone, a read-only standby
  after a failover).
* :class:`PooledCalls` runs a statement on a pooled connection and hands it back. After a
  timeout or a cancellation asyncpg waits for the server to acknowledge the cancelled query
  before the connection can be reused, and against a frozen server that wait is a second
  timeout. So a failed call returns at once, and the connection's release (or, if the server
  never answers, its termination) finishes in the background, bounded by the timeout.
  :meth:`PooledCalls.transact` does the same for a transaction: a caller that gives up gets
  its error at once, and the rollback runs in the background before the connection goes back.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import asyncpg
import asyncpg.exceptions as pg

from sessionauth.errors import StoreFull, StoreUnavailable

__all__ = ["UNAVAILABLE", "PooledCalls", "unavailable"]

_T = TypeVar("_T")

UNAVAILABLE: tuple[type[BaseException], ...] = (
    OSError,  # connection refused, reset or unreachable
    TimeoutError,  # connect, pool acquire or query past the caller's deadline
    asyncpg.PostgresConnectionError,  # class 08: the connection died mid-operation
    asyncpg.InterfaceError,  # "connection is closed" when it dies between acquire and query
    pg.OperatorInterventionError,  # class 57: shutting down, starting up, query cancelled
    pg.InsufficientResourcesError,  # class 53: too many connections, disk or memory full
    pg.InvalidAuthorizationSpecificationError,  # class 28: login refused
    pg.InvalidCatalogNameError,  # the database is gone
    pg.ReadOnlySQLTransactionError,  # a standby after a failover
    # "cannot switch to state 12; another operation (2) is in progress": a pooled connection
    # that got the server's FATAL (shutdown, pg_terminate_backend) while idle, before asyncpg
    # saw the socket close (MagicStack/asyncpg#1069). PooledCalls terminates it.
    pg.InternalClientError,
)
"""What "the database is down, unreachable, too slow, refusing or full" looks like."""


def unavailable(exc: BaseException, what: str) -> StoreUnavailable:
    """Return the exception to raise for ``exc``, one of :data:`UNAVAILABLE`, in ``what``.

    Args:
        exc: What asyncpg (or the socket, or the deadline) raised.
        what: Names the component in the message, e.g. ``"PostgreSQL session store"``.

    Returns:
        ``StoreFull`` for SQLSTATE class 53, else ``StoreUnavailable``.
    """
    # The DSN is never in the message: it may hold a password.
    if isinstance(exc, pg.InsufficientResourcesError):
        return StoreFull(f"{what} is out of resources: {exc!r}")
    return StoreUnavailable(f"{what} unavailable: {exc!r}")


class PooledCalls:
    """Runs statements on pooled connections without waiting for a failed one's release.

    Args:
        timeout: Seconds the background release of a failed connection may take before
            asyncpg terminates the connection.
    """

    def __init__(self, timeout: float):
        self._timeout = timeout
        self._releasing: set[asyncio.Task[None]] = set()

    async def run(self, pool: asyncpg.Pool[Any], method: str, sql: str, *args: Any) -> Any:
        """Return ``connection.<method>(sql, *args)`` on a connection from ``pool``.

        The caller bounds the call (``asyncio.timeout``); on failure or cancellation the
        connection goes back to the pool in the background and the error propagates at once.
        """
        connection = await pool.acquire()
        try:
            result = await getattr(connection, method)(sql, *args)
        except BaseException as exc:
            if isinstance(exc, pg.InternalClientError):
                # Its protocol state is broken for good: the pool must open a fresh one.
                connection.terminate()
            self._release_later(pool, connection)
            raise
        await pool.release(connection)
        return result

    async def transact(self, pool: asyncpg.Pool[Any], work: Callable[[Any], Awaitable[_T]]) -> _T:
        """Return ``await work(connection)`` run in one transaction on a pooled connection.

        The transaction runs in a task of its own: when the caller's deadline passes (or it is
        cancelled), the caller's error propagates at once while the task is cancelled and rolls
        back, and only then is the connection released, all in the background. An exception
        raised by ``work`` rolls back before it propagates.
        """
        connection = await pool.acquire()
        task = asyncio.get_running_loop().create_task(_in_transaction(connection, work))
        try:
            result = await asyncio.shield(task)
        except BaseException as exc:
            task.cancel()
            if isinstance(exc, pg.InternalClientError):
                connection.terminate()
            self._release_later(pool, connection, after=task)
            raise
        await pool.release(connection)
        return result

    def _release_later(
        self, pool: asyncpg.Pool[Any], connection: Any, after: asyncio.Task[Any] | None = None
    ) -> None:
        task = asyncio.get_running_loop().create_task(self._release(pool, connection, after))
        self._releasing.add(task)
        task.add_done_callback(self._released)

    async def _release(
        self, pool: asyncpg.Pool[Any], connection: Any, after: asyncio.Task[Any] | None
    ) -> None:
        if after is not None:
            # The rollback first: a connection released mid-transaction would be reset by a
            # ROLLBACK of asyncpg's own, with an error logged about it.
            done, _ = await asyncio.wait({after}, timeout=self._timeout)
            if not done:
                connection.terminate()
            elif not after.cancelled():
                after.exception()  # retrieved: the caller has had its own error
        await pool.release(connection, timeout=self._timeout)

    def _released(self, task: asyncio.Task[None]) -> None:
        self._releasing.discard(task)
        if not task.cancelled():
            task.exception()  # retrieved: a failed release has already dropped the connection


async def _in_transaction(connection: Any, work: Callable[[Any], Awaitable[_T]]) -> _T:
    async with connection.transaction():
        return await work(connection)
