"""SQLite: one connection per database file, and the stores that share it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sessionauth.backends.base import Backend
from sessionauth.backends.locks import LOCK_FILE, FileLock
from sessionauth.backends.sqlite.attempts import SQLiteCounter
from sessionauth.backends.sqlite.factors import SQLiteFactorStore
from sessionauth.backends.sqlite.files import SQLiteDatabase, database_path
from sessionauth.backends.sqlite.sessions import SQLiteStore
from sessionauth.backends.sqlite.tokens import SQLiteTokenStore
from sessionauth.backends.sqlite.users import SQLiteUserStore
from sessionauth.policy import Clock, system_clock
from sessionauth.stores.base import DEFAULT_TIMEOUT
from sessionauth.stores.users import DEFAULT_TABLE

__all__ = ["SQLiteBackend"]


class SQLiteBackend(Backend):
    """A SQLite file: one aiosqlite connection, opened on first use, for every view.

    Args:
        path: The database file (``:memory:`` for a private one); its directory is created.
        clock: The time source of every view.
        timeout: Seconds a statement (and the busy wait on a locked file) may take.

    Raises:
        ConfigurationError: For a bad timeout.
    """

    def __init__(self, path: str, *, clock: Clock = system_clock, timeout: float = DEFAULT_TIMEOUT):
        self.database = SQLiteDatabase(path, timeout=timeout)
        super().__init__()
        self._clock = clock

    @classmethod
    def from_url(
        cls, url: str, *, clock: Clock = system_clock, timeout: float = DEFAULT_TIMEOUT
    ) -> SQLiteBackend:
        """Return the backend for the file a ``sqlite:///`` URL names.

        Raises:
            ConfigurationError: For a URL that is not ``sqlite:///PATH`` or has options.
        """
        return cls(database_path(url), clock=clock, timeout=timeout)

    @property
    def kind(self) -> str:
        """``"SQLite"``."""
        return "SQLite"

    def session_store(self, *, owned: bool = False, **options: Any) -> SQLiteStore:
        """Return a session store on the connection (``table=`` names its table)."""
        view = SQLiteStore(database=self.database, clock=self._clock, owned=owned, **options)
        return self._view(view, owned=owned)

    def attempt_counter(self, *, owned: bool = False, **options: Any) -> SQLiteCounter:
        """Return an attempt counter on the connection (``table=`` names its table)."""
        view = SQLiteCounter(database=self.database, clock=self._clock, owned=owned, **options)
        return self._view(view, owned=owned)

    def factor_store(self, *, owned: bool = False, **options: Any) -> SQLiteFactorStore:
        """Return the factor store on the connection (``table=`` prefixes its tables)."""
        view = SQLiteFactorStore(database=self.database, owned=owned, **options)
        return self._view(view, owned=owned)

    def token_store(self, *, owned: bool = False, **options: Any) -> SQLiteTokenStore:
        """Return the token store on the connection (``table=`` names its table)."""
        view = SQLiteTokenStore(database=self.database, clock=self._clock, owned=owned, **options)
        return self._view(view, owned=owned)

    def user_store(self, *, table: str = DEFAULT_TABLE, owned: bool = False) -> SQLiteUserStore:
        """Return the user store on the connection; its table is created on first use."""
        view = SQLiteUserStore(database=self.database, table=table, clock=self._clock, owned=owned)
        return self._view(view, owned=owned)

    def purge_lock(self, lock_dir: Path) -> FileLock:
        """Return an ``flock`` on ``lock_dir/purge.lock``, shared by the processes of one host."""
        return FileLock(lock_dir / LOCK_FILE)

    async def ping(self) -> None:
        """Raise ``StoreUnavailable`` unless the file answers a query and is the one opened."""
        db = await self.database.connection()
        await self.database.run(db.execute_fetchall("SELECT 1"), "SQLite database")
        await self.database.check_file()

    async def _close(self) -> None:
        """Close the connection; safe to call twice."""
        await self.database.aclose()
