"""What the store contract suite needs from each backend.

Each backend module in this package exposes ``open_harness(clock, context)``, an async context
manager yielding a :class:`Harness`: a store bound to the fake clock plus ways to tamper with the
backend directly: write a corrupt record (to prove undecodable records count as no session) and
copy one record's stored form under another id (to prove records are bound to their ids), and
write a record the way sessionauth 0.1 did (to prove old records load as no session).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from sessionauth.record import SessionRecord
from sessionauth.stores.base import SessionStore


@dataclass
class Harness:
    """A store under test and backend-level helpers."""

    store: SessionStore
    corrupt: Callable[[str], Awaitable[None]] | None
    """Overwrite the record stored under a storage id with bytes no codec accepts; ``None`` for
    backends that keep objects rather than bytes."""
    transplant: Callable[[str, str], Awaitable[None]] | None = None
    """Copy the stored form of the record under the first storage id over the record under the
    second, as a backup restored into the wrong key would; ``None`` where ``corrupt`` is."""
    write_v1: Callable[[str, SessionRecord], Awaitable[None]] | None = None
    """Store the record under the storage id in sessionauth 0.1's format (no version, no
    epoch: ``git show 8e71824``), as an upgrade finds it; ``None`` where ``corrupt`` is."""
    expires_by_itself: bool = False
    """True when the backend drops expired records itself (Redis TTL): purge has nothing to do."""
