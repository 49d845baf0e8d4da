"""The server's databases: one backend when sessions and users share a URL, two otherwise.

``SESSIONAUTH_DATABASE_URL`` holds the accounts and their second factors;
``SESSIONAUTH_STORE_URL`` (by default the same) holds the sessions, the login-attempt counters
and the single-use tokens of mailed links. Second factors are account data: a session store
that loses its keys must not take them along (see
:func:`sessionauth.server.mfa_api.second_factors`). When both name one database, the
default (one SQLite file), one backend serves the session store, the counter and the user
store, so a worker opens one connection (SQLite) or one pool (PostgreSQL) for all three (and,
on SQLite, the session store's own connection for its loads on the event loop); users on SQL
with sessions on Redis make two backends.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from sessionauth.backends import Backend, open_backend
from sessionauth.backends.sqlite.files import database_path
from sessionauth.backends.urls import scheme_of
from sessionauth.server.settings import Settings

__all__ = ["Databases", "same_database"]


def same_database(first: str, second: str) -> bool:
    """Whether two URLs name one database (for SQLite: one file, however the path is written)."""
    if scheme_of(first) == scheme_of(second) == "sqlite":
        paths = database_path(first), database_path(second)
        if ":memory:" in paths:  # each :memory: connection is a database of its own
            return False
        return os.path.realpath(paths[0]) == os.path.realpath(paths[1])
    return first == second


@dataclass(frozen=True, slots=True)
class Databases:
    """The backends of a server.

    Attributes:
        sessions: Serves the session store, the attempt counter, the single-use token store
            and the purge lock: what may be lost with no worse effect than signing people out
            or killing a mailed link.
        users: Serves the user store and the second-factor store; the same object as
            ``sessions`` when they share a URL.
    """

    sessions: Backend
    users: Backend

    @classmethod
    def open(cls, settings: Settings) -> Databases:
        """Build the backends the settings name; nothing connects yet.

        Raises:
            ConfigurationError: For an unknown URL or a missing extra.
        """
        sessions = open_backend(settings.session_store_url)
        if same_database(settings.session_store_url, settings.database_url):
            return cls(sessions=sessions, users=sessions)
        return cls(sessions=sessions, users=open_backend(settings.database_url))

    async def aclose(self) -> None:
        """Close every backend once."""
        try:
            if self.users is not self.sessions:
                await self.users.aclose()
        finally:
            await self.sessions.aclose()
