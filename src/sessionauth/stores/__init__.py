"""Session stores: the contracts and their in-memory implementations.

The contracts are :class:`SessionStore`, and for accounts and login attempts :mod:`.users`
and :mod:`.attempts`.

The stores on real databases are views of a backend (:mod:`sessionauth.backends`), which owns
the connection. :func:`open_store` builds a store that owns its backend from a URL; close it
with ``await store.aclose()`` (or ``async with``). ``RedisStore``, ``SQLiteStore`` and
``PostgresStore`` can be imported from here too, lazily: an optional backend is imported only
when asked for, so ``import sessionauth`` never needs redis-py or asyncpg.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sessionauth.policy import Clock, system_clock
from sessionauth.stores.base import DEFAULT_TIMEOUT, SessionStore
from sessionauth.stores.memory import MemoryStore

if TYPE_CHECKING:
    from sessionauth.backends.postgres.sessions import PostgresStore as PostgresStore
    from sessionauth.backends.redis.sessions import RedisStore as RedisStore
    from sessionauth.backends.sqlite.sessions import SQLiteStore as SQLiteStore

# The stores on backends stay out of __all__: a star import must not need the extras.
__all__ = ["MemoryStore", "SessionStore", "open_store"]

# name: (module, the extra it needs)
_LAZY = {
    "PostgresStore": ("sessionauth.backends.postgres.sessions", "postgres"),
    "RedisStore": ("sessionauth.backends.redis.sessions", "redis"),
    "SQLiteStore": ("sessionauth.backends.sqlite.sessions", None),
}


def __getattr__(name: str) -> Any:
    """Import a store on a backend when it is first asked for."""
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    from sessionauth.backends import missing_extra

    module, extra = _LAZY[name]
    try:
        return getattr(importlib.import_module(module), name)
    except ImportError as exc:
        if extra is None:
            raise
        raise missing_extra(extra, exc) from exc


def open_store(
    url: str,
    *,
    clock: Clock = system_clock,
    timeout: float = DEFAULT_TIMEOUT,
    **options: Any,
) -> SessionStore:
    """Return the store that ``url`` names; it owns (and closes) its backend.

    Nothing connects yet: each store connects on first use, so the store can be built with the
    application, before the event loop runs, and passed straight to ``SessionMiddleware``.

    Args:
        url: One of ``memory://``, ``sqlite:///path``, ``redis://…``, ``rediss://…``,
            ``redis+sentinel://h1:p1,h2:p2/service``, ``redis+cluster://host:port``,
            ``postgresql://…`` (see :func:`sessionauth.backends.open_backend`).
        clock: Time source for expiry decisions.
        timeout: Seconds a store operation may take before raising ``StoreUnavailable``.
        **options: The store's options (``prefix`` for Redis, ``table`` for SQL). A Redis URL
            may also carry the key prefix as ``?prefix=app1:`` (default ``sa:``), so several
            deployments or test runs can share one Redis database.

    Raises:
        ConfigurationError: For an unknown scheme or a backend whose extra is not installed.
    """
    from sessionauth.backends import open_backend

    return open_backend(url, clock=clock, timeout=timeout).session_store(owned=True, **options)
