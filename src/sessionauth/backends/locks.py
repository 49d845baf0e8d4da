"""Locks that elect one sweeper of expired rows among the processes sharing a database.

Purging is safe to run concurrently anyway (batched deletes); the lock only saves the duplicate
work. Each backend says which lock fits it (:meth:`sessionauth.backends.Backend.purge_lock`):

* ``memory://``: :class:`NoLock`, the store is private to the process.
* SQLite: :class:`FileLock`, an ``fcntl.flock`` on a lock file in the data directory. The kernel
  drops the lock when its holder exits or crashes, so a dead leader never blocks the others.
* PostgreSQL: a transaction-scoped advisory lock (:mod:`sessionauth.backends.postgres.lock`).
* Redis expires keys by itself: no sweep, no lock.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import fcntl
import os
from collections.abc import AsyncIterator
from pathlib import Path

__all__ = ["LOCK_FILE", "FileLock", "NoLock", "PurgeLock"]

LOCK_FILE = "purge.lock"
"""The name of :class:`FileLock`'s file in the data directory."""


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
