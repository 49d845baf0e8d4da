"""One SQLite file: how it is named, opened, shared and failing.

:class:`SQLiteDatabase` is the one connection a backend keeps to a file (see
:class:`~sessionauth.backends.sqlite.SQLiteBackend`): the session store, the login-attempt
counter and the user store on that file are views that run their statements on it. It parses
the ``sqlite:///`` URL, opens the file on first use (directory created, autocommit, a busy
timeout, WAL, the opening done in a worker thread) and says which exception a SQLite error
becomes (:meth:`SQLiteDatabase.run`), the same for every view.

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
import sqlite3
from collections.abc import Awaitable
from pathlib import Path
from typing import TypeVar

import aiosqlite

from sessionauth.errors import ConfigurationError, StoreFull, StoreUnavailable

__all__ = [
    "BUGS",
    "DatabaseFile",
    "SQLiteDatabase",
    "database_path",
    "open_sqlite",
    "unavailable",
]

logger = logging.getLogger("sessionauth.store")

BUGS: tuple[type[sqlite3.Error], ...] = (
    sqlite3.ProgrammingError,
    sqlite3.IntegrityError,
    sqlite3.DataError,
    sqlite3.NotSupportedError,
)
"""SQLite errors that mean our own bug (bad SQL or parameters) or a violated constraint; every
other ``sqlite3.DatabaseError`` means the database is not usable now (:func:`unavailable`)."""

_URL_PREFIX = "sqlite:///"
# Per connection, so only for connections a backend opens; WAL also persists in the file.
_PRAGMAS = ("PRAGMA journal_mode = WAL", "PRAGMA synchronous = NORMAL")

_T = TypeVar("_T")


def database_path(url: str) -> str:
    """Return the database file that a ``sqlite:///`` URL names.

    ``sqlite:///relative/path``, ``sqlite:////absolute/path`` and ``sqlite:///:memory:``.

    Raises:
        ConfigurationError: For another scheme, a host part, an empty path or a query string.
    """
    if url[: len(_URL_PREFIX)].lower() != _URL_PREFIX:
        raise ConfigurationError(
            f"not a SQLite URL: {url!r}; use sqlite:///relative/path or sqlite:////abs/path"
        )
    path = url[len(_URL_PREFIX) :]
    if not path or path.endswith("/"):
        raise ConfigurationError(f"the SQLite URL {url!r} names no database file")
    if "?" in path or "#" in path:
        raise ConfigurationError(f"the SQLite URL {url!r} has options; none are supported")
    return path


def _connect(path: str, timeout: float) -> sqlite3.Connection:
    # sqlite3's timeout is the busy timeout: a locked database is retried this long, then
    # raises "database is locked". Autocommit, so no statement leaves a transaction open.
    # check_same_thread=False: opened here, used only on aiosqlite's thread afterwards.
    return sqlite3.connect(path, timeout=timeout, isolation_level=None, check_same_thread=False)


async def open_sqlite(
    path: str,
    *,
    timeout: float,  # noqa: ASYNC109 - bounds the open and becomes the busy timeout
) -> aiosqlite.Connection:
    """Open a SQLite file (creating its directory) as an aiosqlite connection in autocommit.

    The file is opened in a worker thread and then handed to aiosqlite, rather than by
    ``aiosqlite.connect()``: when that fails, aiosqlite's thread reports back to the event loop
    after the caller has moved on and may find the loop closed.

    Raises:
        StoreUnavailable: If the directory cannot be made or the file cannot be opened in time.
    """
    if path != ":memory:":
        try:
            await asyncio.to_thread(Path(path).parent.mkdir, parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreUnavailable(f"cannot create the directory of {path!r}: {exc}") from exc
    try:
        async with asyncio.timeout(timeout):
            raw = await asyncio.to_thread(_connect, path, timeout)
    except (sqlite3.Error, TimeoutError) as exc:
        raise StoreUnavailable(f"cannot open the SQLite database {path!r}: {exc}") from exc
    return await aiosqlite.Connection(lambda: raw, iter_chunk_size=64)


def unavailable(exc: sqlite3.Error, what: str) -> StoreUnavailable:
    """Return the exception to raise for a SQLite error that is not our own bug.

    Args:
        exc: "database is locked" after the busy timeout, an I/O error, a full disk or a
            ``max_page_count`` reached, a file that is not a database.
        what: Names the component in the message, e.g. ``"SQLite session store"``.

    Returns:
        ``StoreFull`` for "database or disk is full" (reads still work), else
        ``StoreUnavailable``.
    """
    code = getattr(exc, "sqlite_errorcode", None) or 0
    if code & 0xFF == sqlite3.SQLITE_FULL:  # the primary code, whatever the extended one
        return StoreFull(f"{what} is full: {exc}")
    return StoreUnavailable(f"{what} failed: {exc}")


def _identity(path: str) -> tuple[int, int] | None:
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

    async def remember(self) -> None:
        """Record the file the path names now; call it right after opening the connection."""
        if self.path != ":memory:":
            self._opened = await asyncio.to_thread(_identity, self.path)

    async def check(self) -> None:
        """Raise unless the path still names the file opened; log the first time it does not.

        Raises:
            StoreUnavailable: If the file was deleted or replaced since it was opened.
        """
        if self._opened is None:
            return
        now = await asyncio.to_thread(_identity, self.path)
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


class SQLiteDatabase:
    """The connection to one SQLite file that every view of a backend shares.

    aiosqlite runs a connection's statements in order on one thread, and every statement of
    the views is a single autocommitted one, so sharing the connection serialises them
    without interleaving badly.

    Args:
        path: The file to open on first use (this object owns the connection); ``:memory:``
            for a private database.
        connection: An open aiosqlite connection in autocommit mode, returning rows as
            sequences (the caller owns and closes it). Exactly one of ``path`` and
            ``connection``.
        timeout: Seconds a statement (and the busy wait on a locked file) may take.

    Raises:
        ConfigurationError: For a bad timeout, a connection not in autocommit mode, or not
            exactly one of ``path`` and ``connection``.
    """

    def __init__(
        self,
        path: str | None = None,
        *,
        connection: aiosqlite.Connection | None = None,
        timeout: float,
    ):
        if (path is None) == (connection is None):
            raise ConfigurationError("give the SQLite database either a path or a connection")
        if not timeout > 0:
            raise ConfigurationError("the store timeout must be a positive number of seconds")
        if connection is not None:
            if connection.isolation_level is not None:
                raise ConfigurationError("open the SQLite connection with isolation_level=None")
            if connection.row_factory not in (None, sqlite3.Row):
                raise ConfigurationError(
                    "the SQLite connection's row_factory must return sequences"
                )
        self.path = path
        self.timeout = timeout
        self._db = connection
        self._owned = path is not None
        self._file = None if path is None else DatabaseFile(path, "SQLite database")
        self._lock = asyncio.Lock()
        self._closed = False

    async def connection(self) -> aiosqlite.Connection:
        """Return the connection, opening the file on first use.

        Raises:
            StoreUnavailable: Once closed, or if the file cannot be opened in time.
        """
        db = self._db
        if db is not None and not self._closed:
            return db
        async with self._lock:
            if self._closed:
                raise StoreUnavailable("the SQLite database is closed")
            if self._db is None and self.path is not None:
                self._db = await self._open(self.path)
            assert self._db is not None  # noqa: S101 - given, or just opened
            return self._db

    async def _open(self, path: str) -> aiosqlite.Connection:
        db = await open_sqlite(path, timeout=self.timeout)
        try:
            for pragma in _PRAGMAS:
                await self.run(db.execute_fetchall(pragma), "SQLite database")
            if self._file is not None:
                await self._file.remember()
        except BaseException:
            await db.close()
            raise
        return db

    async def run(self, operation: Awaitable[_T], what: str) -> _T:
        """Await an aiosqlite call within the timeout, turning backend failures into ours.

        Args:
            operation: The call, on this database's connection.
            what: Names the component in messages, e.g. ``"SQLite session store"``.

        Raises:
            StoreUnavailable: For a timeout (also a statement queued behind others on the
                connection's one thread too long), "database is locked" after the busy
                timeout, I/O errors, a file that is not a database.
            StoreFull: For a full disk or ``max_page_count`` reached.
        """
        try:
            async with asyncio.timeout(self.timeout):
                return await operation
        except BUGS:
            raise  # the email's UNIQUE constraint among them: the user store's DuplicateUser
        except TimeoutError as exc:
            raise StoreUnavailable(f"{what} timed out after {self.timeout} s") from exc
        except sqlite3.DatabaseError as exc:
            raise unavailable(exc, what) from exc

    async def check_file(self) -> None:
        """Raise ``StoreUnavailable`` if the file opened was deleted or replaced since."""
        if self._file is not None:
            await self._file.check()

    async def aclose(self) -> None:
        """Close the connection if this object opened it; safe to call twice."""
        async with self._lock:
            self._closed = True
            db, self._db = self._db, None
        if self._owned and db is not None:
            await db.close()
