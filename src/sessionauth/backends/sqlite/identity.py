"""Which file a SQLite connection has open, to notice when its path stops naming it.

A SQLite database is a file, and a file can be deleted (or replaced) under a running server:
the open connection goes on serving the deleted file, which no other process sees, while a
process started afterwards creates a new, empty one. :class:`DatabaseFile` remembers which
file (device and inode) was opened, so a store can notice that its path now names another
file or none, and say so (``ping`` fails: ``/readyz`` answers 503).
"""

from __future__ import annotations

import asyncio
import logging
import os

from sessionauth.errors import StoreUnavailable

__all__ = ["DatabaseFile", "file_identity"]

logger = logging.getLogger("sessionauth.store")


def file_identity(path: str) -> tuple[int, int] | None:
    """Return ``(st_dev, st_ino)`` of the file at ``path``, or ``None`` if there is none."""
    try:
        found = os.stat(path)
    except FileNotFoundError:
        return None
    return found.st_dev, found.st_ino


class DatabaseFile:
    """The file a SQLite connection was opened on, to notice when its path stops naming it.

    Args:
        path: The database file (``:memory:`` is never checked).
        what: Names the component in messages, e.g. ``"session store"``.
    """

    def __init__(self, path: str, what: str):
        self.path = path
        self.what = what
        self._opened: tuple[int, int] | None = None
        self._reported = False

    @property
    def opened(self) -> tuple[int, int] | None:
        """``(st_dev, st_ino)`` of the file opened, once remembered (``None`` before)."""
        return self._opened

    async def remember(self) -> None:
        """Record the file the path names now; call it right after opening the connection."""
        if self.path != ":memory:":
            self._opened = await asyncio.to_thread(file_identity, self.path)

    async def check(self) -> None:
        """Raise unless the path still names the file opened; log the first time it does not.

        Raises:
            StoreUnavailable: If the file was deleted or replaced since it was opened.
        """
        if self._opened is None:
            return
        now = await asyncio.to_thread(file_identity, self.path)
        if now == self._opened:
            return
        change = "was deleted" if now is None else "was replaced by another file"
        message = (
            f"the SQLite database {self.path} {change} while the {self.what} had it open: this "
            "process now serves a file that other processes do not see; restore the file, or "
            "restart every worker on the new one"
        )
        if not self._reported:
            self._reported = True
            logger.error("%s", message)
        raise StoreUnavailable(message)
