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
lock only saves the duplicate work. A failed sweep is logged and retried next interval.
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
from collections.abc import AsyncIterator
from pathlib import Path

from sessionauth.auth.throttle import AttemptCounter
from sessionauth.errors import StoreUnavailable
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


async def run_purger(
    store: SessionStore, counter: AttemptCounter | None, lock: PurgeLock, interval: float
) -> None:
    """Sweep every ``interval`` seconds (with jitter) until cancelled."""
    while True:
        # Jitter spreads workers that started together, so the lock rarely even contends.
        await asyncio.sleep(interval * random.uniform(0.9, 1.1))  # noqa: S311 - not a secret
        try:
            purged = await purge_once(store, counter, lock)
        except StoreUnavailable as exc:
            logger.warning("purge of expired sessions failed, retrying later: %s", exc)
            continue
        if purged:
            logger.info("purged %d expired sessions", purged)
