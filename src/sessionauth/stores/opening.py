"""``open_store(url)``: a session store that owns its backend, from a database URL."""

from __future__ import annotations

from typing import Any

from sessionauth.policy import Clock, system_clock
from sessionauth.stores.base import DEFAULT_TIMEOUT, SessionStore

__all__ = ["open_store"]


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
