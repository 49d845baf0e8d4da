"""An in-process session store and attempt counter, for tests and development.

Records live in a dict in one process: they vanish on restart and are invisible to other
workers, so production configuration refuses this store.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sessionauth.policy import Clock, system_clock
from sessionauth.record import RecordUpdate, SessionRecord
from sessionauth.stores.attempts import AttemptCounter
from sessionauth.stores.base import SessionStore

__all__ = ["MemoryCounter", "MemoryStore"]


class MemoryStore(SessionStore):
    """Keeps sessions in a dict; every operation completes without awaiting anything.

    Args:
        clock: The time source used to decide expiry.
    """

    def __init__(self, *, clock: Clock = system_clock):
        self._clock = clock
        self._records: dict[str, SessionRecord] = {}
        self._by_user: dict[str, set[str]] = {}

    def __len__(self) -> int:
        return len(self._records)

    def _live(self, sid: str) -> SessionRecord | None:
        record = self._records.get(sid)
        if record is None or record.expires <= self._clock():
            return None
        return record

    @staticmethod
    def _copy(record: SessionRecord) -> SessionRecord:
        # Callers own what they get: mutating it must not change the store behind our back.
        return SessionRecord(
            data=dict(record.data),
            created=record.created,
            seen=record.seen,
            issued=record.issued,
            expires=record.expires,
            user_id=record.user_id,
            meta=dict(record.meta),
        )

    async def load(self, sid: str) -> SessionRecord | None:
        """Return a copy of the live record under ``sid``, or ``None``."""
        record = self._live(sid)
        return None if record is None else self._copy(record)

    async def create(self, sid: str, record: SessionRecord) -> None:
        """Store a copy of ``record`` under ``sid``."""
        self._records[sid] = self._copy(record)
        if record.user_id is not None:
            self._by_user.setdefault(record.user_id, set()).add(sid)

    async def update(self, sid: str, update: RecordUpdate) -> bool:
        """Merge ``update`` into the live record; ``False`` if it is gone."""
        record = self._live(sid)
        if record is None:
            return False
        record.data.update(update.set)
        for key in update.delete:
            record.data.pop(key, None)
        record.seen, record.expires = update.seen, update.expires
        return True

    async def touch(self, sid: str, *, seen: float, expires: float) -> bool:
        """Move the live record's activity time and expiry; ``False`` if it is gone."""
        record = self._live(sid)
        if record is None:
            return False
        record.seen, record.expires = seen, expires
        return True

    async def delete(self, sid: str) -> None:
        """Delete the record under ``sid`` if present."""
        record = self._records.pop(sid, None)
        if record is not None and record.user_id is not None:
            self._by_user.get(record.user_id, set()).discard(sid)

    async def list_user(self, user_id: str) -> list[tuple[str, SessionRecord]]:
        """Return the user's live sessions, oldest first."""
        live = [(sid, self._live(sid)) for sid in self._by_user.get(user_id, ())]
        found = [(sid, self._copy(rec)) for sid, rec in live if rec is not None]
        return sorted(found, key=lambda item: (item[1].created, item[0]))

    async def delete_user(self, user_id: str, *, keep: str | None = None) -> int:
        """Delete the user's sessions except ``keep``."""
        doomed = [sid for sid in self._by_user.get(user_id, ()) if sid != keep]
        live = sum(1 for sid in doomed if self._live(sid) is not None)
        for sid in doomed:
            await self.delete(sid)
        return live

    async def update_user(self, user_id: str, values: Mapping[str, Any]) -> int:
        """Set ``values`` in each of the user's live sessions."""
        count = 0
        for sid in self._by_user.get(user_id, ()):
            record = self._live(sid)
            if record is not None:
                record.data.update(values)
                count += 1
        return count

    async def purge_expired(self, *, batch_size: int = 500) -> int:
        """Drop expired records (a test convenience; memory is reclaimed on restart anyway)."""
        del batch_size
        now = self._clock()
        expired = [sid for sid, rec in self._records.items() if rec.expires <= now]
        for sid in expired:
            await self.delete(sid)
        return len(expired)

    async def ping(self) -> None:
        """Always answers: the store is in-process."""


class MemoryCounter(AttemptCounter):
    """Keeps counts in a dict in one process, for tests and development.

    Counts are invisible to other workers and vanish on restart, so do not use it in
    production.

    Args:
        clock: The time source deciding windows.
    """

    def __init__(self, clock: Clock = system_clock):
        self._clock = clock
        self._entries: dict[str, tuple[int, float]] = {}

    async def reserve(self, key: str, window: float, limit: int) -> tuple[bool, int, float]:
        """Take one attempt of ``key`` if below ``limit``; nothing is awaited, so it is atomic."""
        now = self._clock()
        count, reset_at = self._entries.get(key, (0, now))
        if reset_at <= now:
            count, reset_at = 0, now + window
        if count >= limit:
            return False, count, reset_at
        self._entries[key] = (count + 1, reset_at)
        return True, count + 1, reset_at

    async def release(self, key: str, reset_at: float) -> None:
        """Give back one attempt of the window ending at ``reset_at``, if it is still current."""
        count, current = self._entries.get(key, (0, reset_at))
        if current == reset_at and count > 1:
            self._entries[key] = (count - 1, reset_at)
        elif current == reset_at:
            self._entries.pop(key, None)

    async def count(self, key: str) -> tuple[int, float]:
        """Return ``(count, reset_at)``, or ``(0, now)`` once the window is over."""
        now = self._clock()
        count, reset_at = self._entries.get(key, (0, now))
        return (count, reset_at) if reset_at > now else (0, now)

    async def reset(self, key: str) -> None:
        """Forget ``key``."""
        self._entries.pop(key, None)

    async def purge(self, now: float | None = None) -> int:
        """Drop keys whose window is over."""
        cutoff = self._clock() if now is None else now
        expired = [key for key, (_, reset_at) in self._entries.items() if reset_at <= cutoff]
        for key in expired:
            del self._entries[key]
        return len(expired)
