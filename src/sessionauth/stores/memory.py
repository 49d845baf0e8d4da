"""An in-process session store and attempt counter, for tests and development.

Records live in a dict in one process: they vanish on restart and are invisible to other
workers, so production configuration refuses this store. It keeps the whole store contract,
principals included, so that it can stand in for the real stores in tests; every operation
completes without awaiting anything, which makes each one atomic on the event loop.
"""

from __future__ import annotations

import itertools

from sessionauth.errors import SessionExists, StaleLogin
from sessionauth.policy import Clock, system_clock
from sessionauth.principal import Principal, PrincipalChange
from sessionauth.record import RecordUpdate, SessionRecord
from sessionauth.stores.attempts import AttemptCounter
from sessionauth.stores.base import DEFAULT_MAX_SESSIONS, MAX_PAGE, SessionPage, SessionStore

__all__ = ["MemoryCounter", "MemoryStore"]


class MemoryStore(SessionStore):
    """Keeps sessions and principals in dicts.

    Args:
        clock: The time source used to decide expiry.
        max_sessions: Live sessions a user may have; a login beyond it ends the oldest.
    """

    def __init__(self, *, clock: Clock = system_clock, max_sessions: int = DEFAULT_MAX_SESSIONS):
        if max_sessions < 1:
            raise ValueError("max_sessions must be at least 1")
        self._clock = clock
        self._max_sessions = max_sessions
        self._records: dict[str, SessionRecord] = {}
        # Per user, their session ids in creation order (dicts keep insertion order), each
        # with its sequence number: the cursor of a page.
        self._by_user: dict[str, dict[str, int]] = {}
        self._principals: dict[str, Principal] = {}
        self._sequence = itertools.count(1)

    def __len__(self) -> int:
        return len(self._records)

    def _live(self, sid: str) -> SessionRecord | None:
        record = self._records.get(sid)
        if record is None or record.expires <= self._clock():
            return None
        return record

    def _current(self, record: SessionRecord) -> tuple[bool, Principal | None]:
        """Whether a user's record is served, and the principal it is served under.

        A record without an epoch (bound by ``Session.set_user`` without the Authenticator) is
        served without a principal.
        """
        if record.epoch is None:
            return True, None
        principal = self._principals.get(record.user_id or "")
        if principal is None or principal.disabled or principal.epoch != record.epoch:
            return False, None
        return True, principal

    @staticmethod
    def _copy(record: SessionRecord, principal: Principal | None = None) -> SessionRecord:
        # Callers own what they get: mutating it must not change the store behind our back.
        return SessionRecord(
            data=dict(record.data),
            created=record.created,
            seen=record.seen,
            issued=record.issued,
            expires=record.expires,
            user_id=record.user_id,
            meta=dict(record.meta),
            epoch=record.epoch,
            principal=principal,
        )

    async def load(self, sid: str) -> SessionRecord | None:
        """Return a copy of the live record under ``sid`` with its principal, or ``None``."""
        record = self._live(sid)
        if record is None:
            return None
        if record.user_id is None:
            return self._copy(record)
        served, principal = self._current(record)
        return self._copy(record, principal) if served else None

    async def create(self, sid: str, record: SessionRecord) -> Principal | None:
        """Store a copy of ``record`` under ``sid`` if its epoch is current; evict the oldest."""
        if self._live(sid) is not None:
            raise SessionExists("a live session already has this id")
        user_id = record.user_id
        if user_id is None:
            self._records[sid] = self._copy(record)
            return None
        served, principal = self._current(record)
        if not served:
            raise StaleLogin("the user's principal changed during the login")
        self._records[sid] = self._copy(record)
        sessions = self._by_user.setdefault(user_id, {})
        sessions.pop(sid, None)
        sessions[sid] = next(self._sequence)
        while len(sessions) > self._max_sessions:
            await self.delete(next(iter(sessions)))
        return principal

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

    async def delete(self, sid: str) -> bool:
        """Delete the record under ``sid`` if present; return whether it was."""
        record = self._records.pop(sid, None)
        if record is not None and record.user_id is not None:
            self._by_user.get(record.user_id, {}).pop(sid, None)
        return record is not None

    async def list_user(
        self, user_id: str, *, limit: int = MAX_PAGE, cursor: str | None = None
    ) -> SessionPage:
        """Return a page of the user's live sessions, newest first."""
        before = _cursor_position(cursor)
        if before is None:
            return SessionPage([], None)
        found: list[tuple[str, SessionRecord]] = []
        for sid, position in reversed(self._by_user.get(user_id, {}).items()):
            if position >= before:
                continue
            record = self._live(sid)
            if record is None:
                continue
            served, principal = self._current(record)
            if not served:
                continue
            if len(found) == limit:
                return SessionPage(found, str(self._by_user[user_id][found[-1][0]]))
            found.append((sid, self._copy(record, principal)))
        return SessionPage(found, None)

    async def principal(self, user_id: str) -> Principal | None:
        """Return the principal of ``user_id``, or ``None``."""
        return self._principals.get(user_id)

    async def install_principal(self, user_id: str, principal: Principal) -> Principal:
        """Store ``principal`` unless the user has one; return the one in force."""
        return self._principals.setdefault(user_id, principal)

    async def change_principal(
        self, user_id: str, change: PrincipalChange
    ) -> tuple[Principal, int]:
        """Apply ``change``; a rotation deletes every session but ``change.keep``.

        Only a rotation ends sessions: a first principal installed by a role change keeps the
        user's ``set_user()`` sessions (they have no epoch to go stale).
        """
        current = self._principals.get(user_id)
        principal = change.apply(current)
        self._principals[user_id] = principal
        deleted = 0
        if change.rotate:
            for sid in list(self._by_user.get(user_id, {})):
                record = self._live(sid)
                if sid == change.keep and record is not None:
                    record.epoch = principal.epoch
                    continue
                if record is not None and (
                    record.epoch is None or (current is not None and record.epoch == current.epoch)
                ):
                    deleted += 1  # a session that was being served until now
                await self.delete(sid)
        return principal, deleted

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


def _cursor_position(cursor: str | None) -> int | None:
    """The sequence number a cursor names (``None`` for a malformed one; no cursor: the end)."""
    if cursor is None:
        return 2**63
    return int(cursor) if cursor.isascii() and cursor.isdigit() and len(cursor) < 19 else None
