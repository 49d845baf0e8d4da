"""Session stores: the contracts and their in-memory implementations.

The contracts are :class:`SessionStore`, :class:`UserStore` (accounts) and
:class:`AttemptCounter` (login attempts) and :class:`TokenStore` (single-use tokens).

The stores on real databases are views of a backend (:mod:`sessionauth.backends`), which owns
the connection. :func:`open_store` builds a store that owns its backend from a URL; close it
with ``await store.aclose()`` (or ``async with``). ``RedisStore``, ``SQLiteStore`` and
``PostgresStore`` can be imported from here too, lazily: an optional backend is imported only
when asked for, so ``import sessionauth`` never needs redis-py or asyncpg.
"""

from __future__ import annotations

# The module, not names from it: this package's namespace holds its public API only.
import typing

from sessionauth.stores.attempts import AttemptCounter
from sessionauth.stores.base import SessionPage, SessionStore
from sessionauth.stores.memory import MemoryCounter, MemoryStore
from sessionauth.stores.opening import open_store
from sessionauth.stores.tokens import MemoryTokenStore, TokenRecord, TokenStore
from sessionauth.stores.users import User, UserPage, UserStore, normalize_email

if typing.TYPE_CHECKING:
    from sessionauth.backends.postgres.sessions import PostgresStore as PostgresStore
    from sessionauth.backends.redis.sessions import RedisStore as RedisStore
    from sessionauth.backends.sqlite.sessions import SQLiteStore as SQLiteStore

# The stores on backends stay out of __all__: a star import must not need the extras.
__all__ = [
    "AttemptCounter",
    "MemoryCounter",
    "MemoryStore",
    "MemoryTokenStore",
    "SessionPage",
    "SessionStore",
    "TokenRecord",
    "TokenStore",
    "User",
    "UserPage",
    "UserStore",
    "normalize_email",
    "open_store",
]

# name: (module, the extra it needs)
_LAZY = {
    "PostgresStore": ("sessionauth.backends.postgres.sessions", "postgres"),
    "RedisStore": ("sessionauth.backends.redis.sessions", "redis"),
    "SQLiteStore": ("sessionauth.backends.sqlite.sessions", None),
}


def __getattr__(name: str) -> object:
    """Import a store on a backend when it is first asked for."""
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    from sessionauth.backends.urls import missing_extra

    module, extra = _LAZY[name]
    try:
        return getattr(importlib.import_module(module), name)
    except ImportError as exc:
        if extra is None:
            raise
        raise missing_extra(extra, exc) from exc


def __dir__() -> list[str]:
    """The public names, the lazily imported stores included."""
    return sorted([*__all__, *_LAZY])
