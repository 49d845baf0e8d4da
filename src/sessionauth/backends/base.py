"""The contract of a backend: one object per database URL, the stores are views on it.

A :class:`Backend` owns what a database needs once per process: the connection (SQLite), the
pool (PostgreSQL) or the client (Redis), the URL's parsing, the table of errors that mean "the
database is unavailable", and the identifier checks. The session store, the login-attempt
counter, the single-use token store, the user store, the second-factor store and the purge
lock are views built from it, so a worker keeping sessions, counters, tokens, users and
factors in one database opens one connection or pool, not five.

Views built by a backend never close what it owns: :meth:`Backend.aclose` closes the views
(what each keeps of its own, such as the Redis read pipeline's connection), then the
connection, once; closing twice is safe. A view built with ``owned=True`` is left out of that:
it closes the connection itself when it is closed, for callers that want one object
(:func:`sessionauth.stores.open_store`).
"""

from __future__ import annotations

import abc
from pathlib import Path
from typing import Any, Self, TypeVar

from sessionauth.backends.locks import PurgeLock
from sessionauth.errors import ConfigurationError
from sessionauth.stores.attempts import AttemptCounter
from sessionauth.stores.base import SessionStore
from sessionauth.stores.factors import FactorStore
from sessionauth.stores.tokens import TokenStore
from sessionauth.stores.users import DEFAULT_TABLE, UserStore

__all__ = ["Backend"]

_View = TypeVar("_View", bound=SessionStore | AttemptCounter | TokenStore | UserStore | FactorStore)


class Backend(abc.ABC):
    """One database, reached through one connection, pool or client per process.

    Nothing connects when a backend is built: the first operation of any view does, so a
    backend can be built with the application, before the event loop runs.
    """

    def __init__(self) -> None:
        self._views: list[SessionStore | AttemptCounter | TokenStore | UserStore | FactorStore] = []

    def _view(self, view: _View, *, owned: bool) -> _View:
        """Return ``view``, remembered for :meth:`aclose` unless it closes the backend itself."""
        if not owned:
            self._views.append(view)
        return view

    @abc.abstractmethod
    def session_store(self, *, owned: bool = False, **options: Any) -> SessionStore:
        """Return a session store on this backend.

        Args:
            owned: Whether closing the store closes this backend too.
            **options: The store's own options (``table`` for SQL, ``prefix`` for Redis…).
        """

    @abc.abstractmethod
    def attempt_counter(self, *, owned: bool = False, **options: Any) -> AttemptCounter:
        """Return a login-attempt counter on this backend (``owned`` as for the store)."""

    @abc.abstractmethod
    def factor_store(self, *, owned: bool = False, **options: Any) -> FactorStore:
        """Return the second-factor store on this backend (``owned`` as for the store).

        Args:
            owned: Whether closing the store closes this backend too.
            **options: ``table`` (the SQL tables' prefix) or ``prefix`` (Redis keys).
        """

    @abc.abstractmethod
    def token_store(self, *, owned: bool = False, **options: Any) -> TokenStore:
        """Return the single-use token store on this backend (``owned`` as for the store).

        Args:
            owned: Whether closing the token store closes this backend too.
            **options: ``table`` for SQL, ``prefix`` for Redis.
        """

    def user_store(self, *, table: str = DEFAULT_TABLE, owned: bool = False) -> UserStore:
        """Return the user store on this backend; its table is created on first use.

        Raises:
            ConfigurationError: Unless the backend is SQL (SQLite or PostgreSQL).
        """
        del table, owned
        raise ConfigurationError(
            f"{self.kind} cannot keep user accounts: SESSIONAUTH_DATABASE_URL needs "
            "sqlite:///PATH or postgresql://…"
        )

    def purge_lock(self, lock_dir: Path) -> PurgeLock | None:
        """Return the lock that elects one sweeper of expired rows, or ``None`` if none sweeps.

        Args:
            lock_dir: A directory private to this deployment, for file-based locks.
        """
        del lock_dir
        return None

    @property
    @abc.abstractmethod
    def kind(self) -> str:
        """The backend's name in messages (``"SQLite"``, ``"Redis"``…)."""

    @abc.abstractmethod
    async def ping(self) -> None:
        """Raise ``StoreUnavailable`` unless the database answers."""

    async def aclose(self) -> None:
        """Close the views built so far, then the connection, pool or client; safe to repeat."""
        views, self._views = self._views, []
        try:
            for view in views:
                await view.aclose()
        finally:
            await self._close()

    @abc.abstractmethod
    async def _close(self) -> None:
        """Close the connection, pool or client."""

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()
