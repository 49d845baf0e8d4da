"""Backends: one object per database URL, owning its connection, pool or client.

:func:`open_backend` is the one place a URL's scheme is read. The backend it returns builds
the views that share its connection (see :class:`~sessionauth.backends.base.Backend`)::

    backend = open_backend("sqlite:///var/lib/app/sessionauth.db")
    store, counter, users = backend.session_store(), backend.attempt_counter(), backend.user_store()
    ...
    await backend.aclose()

Backends with optional dependencies are imported only when asked for, so ``import
sessionauth`` never needs redis-py or asyncpg; a missing extra says how to install it.
"""

from sessionauth.backends.base import Backend
from sessionauth.backends.urls import open_backend

__all__ = ["Backend", "open_backend"]
