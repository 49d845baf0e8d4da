"""One SQLite file: how it is named, opened, shared and failing.

:class:`SQLiteDatabase` is the one connection a backend keeps to a file (see
:class:`~sessionauth.backends.sqlite.SQLiteBackend`): the session store, the login-attempt
counter and the user store on that file are views that run their statements on it. It parses
the ``sqlite:///`` URL, opens the file on first use (directory created, a new file made
owner-only, autocommit, a busy timeout, WAL, the opening done in a worker thread) and says
which exception a SQLite error becomes (:meth:`SQLiteDatabase.run`), the same for every view.

The file it opened is watched by :class:`~sessionauth.backends.sqlite.identity.DatabaseFile`
(``ping`` fails once the path names another file or none).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import aiosqlite

from sessionauth.backends.sqlite.identity import DatabaseFile, file_identity
from sessionauth.errors import ConfigurationError, StoreFull, StoreUnavailable

__all__ = [
    "BUGS",
    "SQLiteDatabase",
    "Transaction",
    "database_path",
    "open_sqlite",
    "unavailable",
]


BUGS: tuple[type[sqlite3.Error], ...] = (
    sqlite3.ProgrammingError,
    sqlite3.IntegrityError,
    sqlite3.DataError,
    sqlite3.NotSupportedError,
)
"""SQLite errors that mean our own bug (bad SQL or parameters) or a violated constraint; every
other ``sqlite3.DatabaseError`` means the database is not usable now (:func:`unavailable`)."""
# aiosqlite raises ValueError for a statement sent after its connection closed; sqlite3
# raises ProgrammingError (among BUGS) for one run on a closed connection.
_BUGS_OR_CLOSED: tuple[type[Exception], ...] = (*BUGS, ValueError)


_URL_PREFIX = "sqlite:///"
# Persists in the file once switched; see SQLiteDatabase._switch_to_wal.
_WAL = "PRAGMA journal_mode = WAL"
# Per connection, so only for connections a backend opens.
_SYNCHRONOUS = "PRAGMA synchronous = NORMAL"
# The first pause between two attempts at switching to WAL, doubled up to the last one.
_FIRST_PAUSE = 0.002
_LAST_PAUSE = 0.05

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


def _connect_reader(path: str, opened: tuple[int, int] | None) -> sqlite3.Connection:
    """Open the loop's reader on ``path``, which must still name the file ``opened``.

    ``mode=rw``: never create a file (a deleted database would come back empty, and 0644).
    The path is checked after connecting too: a reader on a replacement (a backup restored
    under the running server) would serve sessions that logouts written to the open file
    never reach.
    """
    uri = f"{Path(path).absolute().as_uri()}?mode=rw"
    # No busy timeout: a read that would wait returns at once and goes to the worker thread,
    # so the event loop never waits on a lock. query_only: this connection never writes.
    reader = sqlite3.connect(
        uri, uri=True, timeout=0, isolation_level=None, check_same_thread=False
    )
    if opened is not None and file_identity(path) != opened:
        reader.close()
        raise sqlite3.OperationalError("the path names another file than the one opened")
    reader.execute("PRAGMA query_only = ON")
    return reader


def _create_private(path: str) -> None:
    # The file holds password hashes, emails, sealed TOTP secrets and sessions' addresses, and
    # SQLite would create it 0644 (less the umask): so a new file is made owner-only first, and
    # SQLite gives its -wal and -shm files the mode of the database file. O_EXCL: a file that
    # exists (the operator's, another process's) is left as it is; `sessionauth check` reports
    # one that others may read. Any other failure is sqlite3.connect's to report.
    with contextlib.suppress(OSError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))


def _connect(path: str, timeout: float) -> sqlite3.Connection:
    if path != ":memory:":
        _create_private(path)
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


def _busy(exc: sqlite3.OperationalError) -> bool:
    """Whether SQLite refused for a lock another connection holds (worth trying again)."""
    code = (getattr(exc, "sqlite_errorcode", None) or 0) & 0xFF
    return code in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)


async def _pause(seconds: float) -> None:
    """Wait before trying a lock again (a function of its own so a test can see each wait)."""
    await asyncio.sleep(seconds)


class Transaction:
    """The statements of one :meth:`SQLiteDatabase.transaction`, run on its connection.

    Args:
        db: The connection, inside ``BEGIN IMMEDIATE``.
    """

    def __init__(self, db: aiosqlite.Connection):
        self._db = db

    async def fetch(self, sql: str, params: Sequence[Any] = ()) -> list[Sequence[Any]]:
        """Run one statement to completion and return its rows."""
        rows: Iterable[Sequence[Any]] = await self._db.execute_fetchall(sql, params)
        return list(rows)

    async def many(self, sql: str, params: Iterable[Sequence[Any]]) -> None:
        """Run one statement once per parameter tuple."""
        await self._db.executemany(sql, params)


class SQLiteDatabase:
    """The connection to one SQLite file that every view of a backend shares.

    aiosqlite runs a connection's statements in order on one thread, and most statements of
    the views are single autocommitted ones, so sharing the connection serialises them
    without interleaving badly. The few operations that need several statements to be one
    atomic step run through :meth:`transaction`, which keeps every other statement on the
    connection out of the transaction while it is open.

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
        # Held by the transaction in progress. While one is open or waiting, every other
        # statement queues on it too: a statement run inside someone else's transaction would
        # be committed or rolled back with it.
        self._transaction_lock = asyncio.Lock()
        self._transactions = 0
        self._aborting: set[asyncio.Task[None]] = set()
        # The event loop's own connection for point reads (see read_now); files only.
        self._reader: sqlite3.Connection | None = None

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
            await self.run(self._switch_to_wal(db), "SQLite database")
            await self.run(db.execute_fetchall(_SYNCHRONOUS), "SQLite database")
            if self._file is not None:
                await self._file.remember()
        except BaseException:
            await db.close()
            raise
        return db

    @staticmethod
    async def _switch_to_wal(db: aiosqlite.Connection) -> None:
        # Switching a rollback-journal file to WAL reads the file and then upgrades to an
        # exclusive lock, and SQLite does not run the busy handler for that upgrade (two
        # connections each holding a read lock and waiting for the other would deadlock): it
        # answers SQLITE_BUSY at once while another connection writes, e.g. the next process
        # starting on the same file, switching too. So the switch is retried, with growing
        # pauses, until the caller's timeout; once one connection has switched, the mode is in
        # the file and the pragma has nothing left to do.
        pause = _FIRST_PAUSE
        while True:
            try:
                await db.execute_fetchall(_WAL)
            except sqlite3.OperationalError as exc:
                if not _busy(exc):
                    raise
            else:
                return
            await _pause(pause)
            pause = min(2 * pause, _LAST_PAUSE)

    async def open_reader(self) -> None:
        """Open the connection :meth:`read_now` uses, once, on a file this object opened.

        The session store asks for it when first used; other views do without.

        Raises:
            StoreUnavailable: If the file cannot be opened.
        """
        path = self.path
        if self._reader is not None or path is None or path == ":memory:":
            return  # another connection to :memory: would be another database
        async with self._lock:
            if self._reader is None and not self._closed:
                try:
                    opened = None if self._file is None else self._file.opened
                    self._reader = await asyncio.to_thread(_connect_reader, path, opened)
                except sqlite3.Error as exc:
                    raise StoreUnavailable(
                        f"cannot open the SQLite database {path!r}: {exc}"
                    ) from exc

    def read_now(self, sql: str, params: Sequence[Any], what: str) -> list[Any] | None:
        """Run a small read on the event loop, without the worker thread; ``None``: go that way.

        The hot path's one statement, the loads of one loop iteration read by primary key
        (``SELECT ... WHERE id IN (...)``), takes a few microseconds from SQLite's page
        cache, where the hop to aiosqlite's thread and back cost about 40 µs of CPU and two
        context switches per request (``benchmarks/README.md``). So a file this object opened
        gets a second connection, used only here, on the loop's thread: WAL readers never wait
        for a writer, and this one has no busy timeout, so a read that would wait (a lock held
        during WAL recovery, a database in exclusive locking mode) fails at once and the
        caller sends the statement the usual way, through :meth:`run`, which waits within the
        timeout. It reads committed data only, as another process would: a statement of a
        transaction still open on the main connection is not seen, nor waited for.

        Returns:
            The rows, or ``None`` when there is no such connection (``:memory:``, an injected
            connection, not opened yet, closed) or the read would have to wait.

        Raises:
            StoreUnavailable: As :meth:`run` does, for an I/O error or a file that is not a
                database.
        """
        reader = self._reader
        if reader is None or self._closed:
            return None
        try:
            return reader.execute(sql, params).fetchall()
        except BUGS:
            raise
        except sqlite3.OperationalError as exc:
            if _busy(exc):
                return None
            raise unavailable(exc, what) from exc
        except sqlite3.DatabaseError as exc:
            raise unavailable(exc, what) from exc

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
                if not self._transactions:
                    # Submitted to aiosqlite's queue before any transaction that starts later.
                    return await operation
                async with self._transaction_lock:
                    return await operation
        except _BUGS_OR_CLOSED as exc:
            if self._closed:  # closed while this statement waited: no bug, the store is gone
                raise StoreUnavailable(f"{what} is closed") from exc
            raise  # the email's UNIQUE constraint among them: the user store's DuplicateUser
        except TimeoutError as exc:
            raise StoreUnavailable(f"{what} timed out after {self.timeout} s") from exc
        except sqlite3.DatabaseError as exc:
            raise unavailable(exc, what) from exc
        finally:
            if isinstance(operation, Coroutine):
                operation.close()  # never started when the wait for a transaction timed out

    async def transaction(self, work: Callable[[Transaction], Awaitable[_T]], what: str) -> _T:
        """Run ``work`` in one ``BEGIN IMMEDIATE`` transaction, committed if it returns.

        ``BEGIN IMMEDIATE`` takes the file's write lock at once (waiting up to the busy
        timeout), so the transaction sees and writes the database alone, also across
        processes. Other statements on this connection wait until it is over. The whole
        transaction runs within the timeout; when it fails or times out, the caller gets its
        error at once and the rollback finishes in the background, ahead of any other
        statement.

        Raises:
            StoreUnavailable: As :meth:`run` does.
            StoreFull: As :meth:`run` does.
        """
        db = await self.connection()
        self._transactions += 1
        held = False
        try:
            async with asyncio.timeout(self.timeout):
                await self._transaction_lock.acquire()
                held = True
                await db.execute("BEGIN IMMEDIATE")
                result = await work(Transaction(db))
                await db.execute("COMMIT")
        except BaseException as exc:
            if held:
                held = False  # released by the rollback
                self._abort_later(db)
            if isinstance(exc, BUGS) or not isinstance(exc, TimeoutError | sqlite3.DatabaseError):
                raise
            if isinstance(exc, TimeoutError):
                raise StoreUnavailable(f"{what} timed out after {self.timeout} s") from exc
            raise unavailable(exc, what) from exc
        finally:
            self._transactions -= 1
            if held:
                self._transaction_lock.release()
        return result

    def _abort_later(self, db: aiosqlite.Connection) -> None:
        # Counted from now, so that no statement slips into the queue ahead of the rollback.
        self._transactions += 1
        task = asyncio.get_running_loop().create_task(self._rollback(db))
        self._aborting.add(task)
        task.add_done_callback(self._aborting.discard)

    async def _rollback(self, db: aiosqlite.Connection) -> None:
        try:
            if db.in_transaction:
                await db.execute("ROLLBACK")
        except (sqlite3.Error, ValueError):
            pass  # no transaction left (SQLite rolled back itself), or the connection is closed
        finally:
            self._transactions -= 1
            self._transaction_lock.release()

    async def check_file(self) -> None:
        """Raise ``StoreUnavailable`` if the file opened was deleted or replaced since."""
        if self._file is not None:
            await self._file.check()

    async def aclose(self) -> None:
        """Close the connection if this object opened it; safe to call twice."""
        async with self._lock:
            self._closed = True
            db, self._db = self._db, None
            reader, self._reader = self._reader, None
        if reader is not None:
            reader.close()
        if self._owned and db is not None:
            await db.close()
