"""``memory://``: sessions and counters in dicts of one process, for tests and development."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sessionauth.backends.base import Backend
from sessionauth.backends.locks import NoLock
from sessionauth.policy import Clock, system_clock
from sessionauth.stores.memory import MemoryCounter, MemoryStore
from sessionauth.stores.memory_factors import MemoryFactorStore
from sessionauth.stores.tokens import MemoryTokenStore

__all__ = ["MemoryBackend"]


class MemoryBackend(Backend):
    """Nothing to connect to: each view keeps its own dict.

    Args:
        clock: The time source of every view.
    """

    def __init__(self, *, clock: Clock = system_clock):
        super().__init__()
        self._clock = clock

    @property
    def kind(self) -> str:
        """``"memory://"``."""
        return "memory://"

    def session_store(self, *, owned: bool = False, **options: Any) -> MemoryStore:
        """Return a new, empty in-process session store (it takes no options)."""
        return self._view(MemoryStore(clock=self._clock, **options), owned=owned)

    def attempt_counter(self, *, owned: bool = False, **options: Any) -> MemoryCounter:
        """Return a new, empty in-process attempt counter (it takes no options)."""
        return self._view(MemoryCounter(self._clock, **options), owned=owned)

    def factor_store(self, *, owned: bool = False, **options: Any) -> MemoryFactorStore:
        """Return a new, empty in-process factor store (it takes no options)."""
        return self._view(MemoryFactorStore(**options), owned=owned)

    def token_store(self, *, owned: bool = False, **options: Any) -> MemoryTokenStore:
        """Return a new, empty in-process token store (it takes no options)."""
        return self._view(MemoryTokenStore(self._clock, **options), owned=owned)

    def purge_lock(self, lock_dir: Path) -> NoLock:
        """Return a lock always granted: the store is private to the process."""
        del lock_dir
        return NoLock()

    async def ping(self) -> None:
        """Return at once: memory is always there."""

    async def _close(self) -> None:
        """Nothing to close."""
