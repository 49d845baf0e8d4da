"""The background sweep of expired sessions and login counters, one process at a time.

SQL stores keep expired rows until something deletes them (Redis expires keys by itself, so
there the sweep has nothing to do and is not started). Every worker runs :func:`run_purger`,
but before each sweep it must win a non-blocking lock, so at most one process sweeps at a time
and the others skip that round:

* SQLite: ``fcntl.flock`` on a lock file in the data directory. The kernel drops the lock when
  its holder exits or crashes, so a dead leader never blocks the others.
* PostgreSQL: ``pg_try_advisory_xact_lock`` inside a transaction on a dedicated connection,
  held while the sweep runs and released by the commit (or by the server if the connection
  dies). The sweep itself runs on the store's pool.

Purging is safe to run concurrently anyway (batched deletes; PostgreSQL skips locked rows); the
lock only saves the duplicate work.

The sweep never dies of a failure: whatever a sweep raises (an outage, a timeout, a dropped
connection, a bug) is logged in one line (the traceback at debug level) and the sweep is
retried after 1, 2, 4… seconds, at most ``interval`` apart. Each outcome goes to ``/readyz``
(the ``expired_session_sweep`` condition, with ``last_success``) and to ``/metrics``.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import fcntl
import hashlib
import logging
import os
import random
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

from sessionauth.auth.throttle import AttemptCounter
from sessionauth.errors import StoreUnavailable
from sessionauth.server.metrics import Metrics
from sessionauth.server.readiness import SWEEP, Readiness
from sessionauth.stores.base import DEFAULT_TIMEOUT, SessionStore

__all__ = [
    "FileLock",
    "NoLock",
    "PostgresLock",
    "PurgeLock",
    "purge_lock",
    "purge_once",
    "run_purger",
]

logger = logging.getLogger("sessionauth.server")

LOCK_FILE = "purge.lock"
_LOCK_NAME = b"sessionauth:purge"


class PurgeLock(abc.ABC):
    """Decides which process sweeps this round."""

    @abc.abstractmethod
    def hold(self) -> contextlib.AbstractAsyncContextManager[bool]:
        """Try to take the lock without waiting; yield whether this process holds it."""


class NoLock(PurgeLock):
    """Always granted: for stores private to the process (``memory://``)."""

    @contextlib.asynccontextmanager
    async def hold(self) -> AsyncIterator[bool]:
        """Yield ``True``."""
        yield True


class FileLock(PurgeLock):
    """An exclusive ``flock`` on a file, shared by the processes of one host.

    Args:
        path: The lock file; created (with its directory) if missing.
    """

    def __init__(self, path: Path):
        self.path = path

    def _acquire(self) -> int | None:
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        descriptor = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(descriptor)
            return None
        except BaseException:
            os.close(descriptor)
            raise
        return descriptor

    @contextlib.asynccontextmanager
    async def hold(self) -> AsyncIterator[bool]:
        """Yield whether the lock was free; release it (by closing the file) afterwards."""
        descriptor = await asyncio.to_thread(self._acquire)
        try:
            yield descriptor is not None
        finally:
            if descriptor is not None:
                os.close(descriptor)  # closing the last descriptor releases the flock


class PostgresLock(PurgeLock):
    """A transaction-scoped advisory lock on a dedicated PostgreSQL connection.

    Args:
        dsn: The ``postgresql://`` DSN of the database holding the sessions.
        timeout: Seconds to connect and take the lock.
    """

    def __init__(self, dsn: str, *, timeout: float = DEFAULT_TIMEOUT):
        self.dsn = dsn
        self.timeout = timeout
        digest = hashlib.sha256(_LOCK_NAME).digest()
        self.key = int.from_bytes(digest[:8], "big", signed=True)

    @contextlib.asynccontextmanager
    async def hold(self) -> AsyncIterator[bool]:
        """Yield whether this connection got the lock; commit and disconnect afterwards."""
        import asyncpg

        try:
            connection = await asyncpg.connect(self.dsn, timeout=self.timeout)
        except (OSError, TimeoutError, asyncpg.PostgresError) as exc:
            raise StoreUnavailable(f"purge lock: cannot connect: {exc!r}") from exc
        try:
            async with connection.transaction():
                got = await connection.fetchval(
                    "SELECT pg_try_advisory_xact_lock($1)", self.key, timeout=self.timeout
                )
                yield bool(got)
        finally:
            await connection.close(timeout=self.timeout)


def purge_lock(store_url: str, data_dir: Path) -> PurgeLock | None:
    """Return the lock for sweeping the store ``store_url`` names, or ``None`` if no sweep.

    Redis (and any other self-expiring backend) needs no sweep.
    """
    scheme = store_url.partition("://")[0].lower()
    if scheme == "sqlite":
        return FileLock(data_dir / LOCK_FILE)
    if scheme in ("postgresql", "postgres"):
        return PostgresLock(store_url)
    if scheme == "memory":
        return NoLock()
    return None


async def purge_once(
    store: SessionStore, counter: AttemptCounter | None, lock: PurgeLock
) -> int | None:
    """Sweep expired sessions and counters if this process wins ``lock``.

    Returns:
        How many sessions went, or ``None`` if another process holds the lock.

    Raises:
        StoreUnavailable: If the store, the counter or the lock's backend failed.
    """
    async with lock.hold() as leader:
        if not leader:
            return None
        purged = await store.purge_expired()
        if counter is not None:
            await counter.purge()
        return purged


def _retry_delay(failures: int, interval: float) -> float:
    """Seconds to wait after the ``failures``-th failure in a row: 1, 2, 4… up to ``interval``."""
    return min(interval, 2.0 ** min(failures - 1, 20))


async def run_purger(
    store: SessionStore,
    counter: AttemptCounter | None,
    lock: PurgeLock,
    interval: float,
    *,
    readiness: Readiness | None = None,
    metrics: Metrics | None = None,
    clock: Callable[[], float] = time.time,
) -> None:
    """Sweep every ``interval`` seconds (with jitter) until cancelled; survive every failure.

    Args:
        store: The session store to sweep.
        counter: The login-attempt counter to sweep too, if any.
        lock: Decides which process sweeps each round.
        interval: Seconds between sweeps; also the longest wait after a failure.
        readiness: Told the outcome of each sweep (``expired_session_sweep``).
        metrics: Gets the time of the last success and the count of failures.
        clock: Time source for ``last_success``.
    """
    failures = 0
    last_success: float | None = None
    if readiness is not None:
        readiness.ok(SWEEP, last_success=None)
    while True:
        delay = interval if failures == 0 else _retry_delay(failures, interval)
        # Jitter spreads workers that started together, so the lock rarely even contends.
        await asyncio.sleep(delay * random.uniform(0.9, 1.1))  # noqa: S311 - not a secret
        try:
            purged = await purge_once(store, counter, lock)
        except Exception as exc:  # logged below: the loop must outlive any one failure
            failures += 1
            reason = f"{type(exc).__name__}: {exc}"
            logger.warning(
                "sweep of expired sessions failed (%d in a row), retrying in %.0f s: %s",
                failures,
                _retry_delay(failures, interval),
                reason,
            )
            logger.debug("sweep failure", exc_info=exc)
            if metrics is not None:
                metrics.sweep_failures.inc()
            if readiness is not None:
                readiness.degraded(SWEEP, reason, last_success=last_success, failures=failures)
            continue
        if failures:
            logger.info("sweep of expired sessions works again after %d failures", failures)
        failures = 0
        if purged is not None:  # None: another process holds the lock and swept this round
            last_success = clock()
            if metrics is not None:
                metrics.sweep_last_success.set(last_success)
            if purged:
                logger.info("purged %d expired sessions", purged)
        if readiness is not None:
            readiness.ok(SWEEP, last_success=last_success, failures=0)
