"""What the store contract suite needs from each backend.

Each backend module in this package exposes ``open_harness(clock, context)``, an async context
manager yielding a :class:`Harness`: a store bound to the fake clock plus a way to write a
corrupt record directly into the backend (to prove undecodable records count as no session).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from sessionauth.stores.base import SessionStore


@dataclass
class Harness:
    """A store under test and backend-level helpers."""

    store: SessionStore
    corrupt: Callable[[str], Awaitable[None]] | None
    """Overwrite the record stored under a storage id with bytes no codec accepts; ``None`` for
    backends that keep objects rather than bytes."""
    expires_by_itself: bool = False
    """True when the backend drops expired records itself (Redis TTL): purge has nothing to do."""
