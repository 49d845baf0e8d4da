"""Database URLs: the one place a URL's scheme is read, and :func:`open_backend` on it."""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote

from sessionauth.backends.base import Backend
from sessionauth.backends.url_checks import check_url
from sessionauth.errors import ConfigurationError
from sessionauth.policy import Clock, system_clock
from sessionauth.stores.base import DEFAULT_TIMEOUT

__all__ = ["REDIS_SCHEMES", "missing_extra", "open_backend", "pop_query", "scheme_of"]

REDIS_SCHEMES = frozenset({"redis", "rediss", "redis+sentinel", "redis+cluster"})
"""The URL schemes :class:`~sessionauth.backends.redis.RedisBackend` serves."""
_SCHEMES = (
    "memory://, sqlite:///PATH, redis://, rediss://, redis+sentinel://, redis+cluster://, "
    "postgresql://"
)


def scheme_of(url: str) -> str:
    """Return a URL's scheme, lower-cased (``""`` if it has none)."""
    return url.partition("://")[0].lower()


def pop_query(url: str, name: str) -> tuple[str, str | None]:
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


def open_backend(
    url: str,
    *,
    clock: Clock = system_clock,
    timeout: float = DEFAULT_TIMEOUT,
    **options: Any,
) -> Backend:
    """Return the backend that ``url`` names; nothing connects until a view's first operation.

    Args:
        url: One of ``memory://``, ``sqlite:///path``, ``redis://…``, ``rediss://…``,
            ``redis+sentinel://h1:p1,h2:p2/service``, ``redis+cluster://host:port``,
            ``postgresql://…``. A Redis URL may carry the key prefix as ``?prefix=app1:``.
        clock: Time source of every view (expiry, attempt windows, ``created_at``).
        timeout: Seconds an operation may take before raising ``StoreUnavailable``.
        **options: Backend-specific: ``min_size``, ``max_size`` and ``application_name``
            for PostgreSQL's pool.

    Raises:
        ConfigurationError: For an unknown scheme, a malformed URL (an option the backend does
            not take, a bad host, port or Redis database: see
            :mod:`~sessionauth.backends.url_checks`) or a backend whose extra is not installed.
    """
    # Before any driver reads the URL: both pass unknown options on, to fail at first use.
    check_url(url)
    scheme = scheme_of(url)
    if scheme == "memory":
        from sessionauth.backends.memory import MemoryBackend

        return MemoryBackend(clock=clock, **options)
    if scheme == "sqlite":
        from sessionauth.backends.sqlite import SQLiteBackend

        return SQLiteBackend.from_url(url, clock=clock, timeout=timeout, **options)
    if scheme in REDIS_SCHEMES:
        try:
            from sessionauth.backends.redis import RedisBackend
        except ImportError as exc:
            raise missing_extra("redis", exc) from exc
        return RedisBackend.from_url(url, clock=clock, timeout=timeout, **options)
    if scheme in ("postgresql", "postgres"):
        try:
            from sessionauth.backends.postgres import PostgresBackend
        except ImportError as exc:
            raise missing_extra("postgres", exc) from exc
        return PostgresBackend(url, clock=clock, timeout=timeout, **options)
    raise ConfigurationError(f"unknown database URL {url!r}; use one of {_SCHEMES}")
