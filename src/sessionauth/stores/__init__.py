"""Session stores: one contract (:class:`SessionStore`), one backend per module.

Backends with optional dependencies are imported only when asked for, so ``import sessionauth``
never needs redis-py or asyncpg. :func:`open_store` builds a store that owns its connections
from a URL; close it with ``await store.aclose()`` (or ``async with``).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote

from sessionauth.errors import ConfigurationError
from sessionauth.policy import Clock, system_clock
from sessionauth.stores.base import DEFAULT_MAX_SESSIONS, DEFAULT_TIMEOUT, SessionStore
from sessionauth.stores.memory import MemoryStore

__all__ = ["MemoryStore", "SessionStore", "open_store"]

_SCHEMES = "memory://, sqlite:///PATH, redis://, rediss://, redis+sentinel://, redis+cluster://, postgresql://"


def _pop_query(url: str, name: str) -> tuple[str, str | None]:
    """Remove option ``name`` from a URL's query; return the URL and the option's value."""
    base, question, query = url.partition("?")
    if not question:
        return url, None
    kept, value = [], None
    for item in query.split("&"):
        key, _, raw = item.partition("=")
        if key == name:
            value = unquote(raw)
        elif item:
            kept.append(item)
    return (f"{base}?{'&'.join(kept)}" if kept else base), value


def missing_extra(extra: str, error: ImportError) -> ConfigurationError:
    """Return the error for a backend whose optional dependency is not installed."""
    return ConfigurationError(
        f"this store needs the {extra!r} extra: pip install 'sessionauth[{extra}]' ({error})"
    )


def open_store(
    url: str,
    *,
    clock: Clock = system_clock,
    timeout: float = DEFAULT_TIMEOUT,
    max_sessions: int = DEFAULT_MAX_SESSIONS,
    **options: Any,
) -> SessionStore:
    """Return the store that ``url`` names; it owns (and closes) its connections.

    Nothing connects yet: each store connects on first use, so the store can be built with the
    application, before the event loop runs, and passed straight to ``SessionMiddleware``.

    Args:
        url: One of ``memory://``, ``sqlite:///path``, ``redis://…``, ``rediss://…``,
            ``redis+sentinel://h1:p1,h2:p2/service``, ``redis+cluster://host:port``,
            ``postgresql://…``.
        clock: Time source for expiry decisions.
        timeout: Seconds a store operation may take before raising ``StoreUnavailable``.
        max_sessions: Live sessions a user may have; a login beyond it ends the oldest.
        **options: Backend-specific keyword arguments (``prefix`` for Redis, ``table`` for SQL).
            A Redis URL may also carry the key prefix as ``?prefix=app1:`` (default ``sa:``),
            so several deployments or test runs can share one Redis database.

    Raises:
        ConfigurationError: For an unknown scheme or a backend whose extra is not installed.
    """
    scheme = url.partition("://")[0].lower()
    if scheme == "memory":
        return MemoryStore(clock=clock, max_sessions=max_sessions)
    if scheme == "sqlite":
        from sessionauth.stores.sqlite import SQLiteStore

        return SQLiteStore.from_url(url, clock=clock, timeout=timeout, **options)
    if scheme in ("redis", "rediss", "redis+sentinel", "redis+cluster"):
        url, prefix = _pop_query(url, "prefix")
        if prefix is not None:
            options.setdefault("prefix", prefix)
        try:
            from sessionauth.stores.redis import RedisStore
        except ImportError as exc:
            raise missing_extra("redis", exc) from exc
        return RedisStore.from_url(url, clock=clock, timeout=timeout, **options)
    if scheme in ("postgresql", "postgres"):
        try:
            from sessionauth.stores.postgres import PostgresStore
        except ImportError as exc:
            raise missing_extra("postgres", exc) from exc
        return PostgresStore.from_url(url, clock=clock, timeout=timeout, **options)
    raise ConfigurationError(f"unknown session store URL {url!r}; use one of {_SCHEMES}")
