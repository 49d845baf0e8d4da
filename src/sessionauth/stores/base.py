"""The contract every session store keeps.

A store maps a *storage id* (the SHA-256 of a session token, see :mod:`sessionauth.tokens`) to a
:class:`~sessionauth.record.SessionRecord`, and indexes records by user. A record with a user is
always stored under the id of a token made for that user, so its id starts with the user's group
(``tokens.group_of``); stores may use that to keep a user's sessions together. The semantics
below are what ``tests/contract/`` checks, against the real backend, for every store:

* ``load`` returns ``None`` for a missing record, an expired one (``record.expires`` at or
  before the store's clock), one that fails to decode or has another format version, and a
  user's record unless the user's principal exists, is enabled and has the record's epoch
  (see :mod:`sessionauth.principal`). Record and principal are read in one command or
  statement; the record returned carries the principal.
* ``create`` never overwrites a live record (:class:`~sessionauth.errors.SessionExists`), and
  stores a user's record only if, atomically with the write, the user's principal exists, is
  enabled and has the record's epoch (else :class:`~sessionauth.errors.StaleLogin`). A user
  keeps at most ``max_sessions`` live sessions: the oldest by creation go first, and a
  login's cost does not grow with the number of sessions.
* ``change_principal`` changes a principal in one atomic step; a rotation (new epoch) deletes
  every session of the user but the one kept, which takes the new epoch. Stores that wait for
  replicas (Sentinel) wait for them on principal changes as on logins. A store may forget a
  principal once the user has no live session: the next login installs one again.
* ``update`` and ``touch`` change a record only if it still exists: a write racing a logout or a
  revocation never brings the session back. Updates merge per key, so two requests changing
  different keys of one session both persist.
* ``delete`` is idempotent. ``list_user`` pages through a user's live sessions, newest first.
* Every failure to reach the backend raises :class:`~sessionauth.errors.StoreUnavailable` within
  the store's ``timeout``, never a hang and never a driver-specific exception. After a failed
  write the outcome is unknown (the backend may have applied it), but a deleted session is
  never revived either way.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass

from sessionauth.principal import Principal, PrincipalChange
from sessionauth.record import RecordUpdate, SessionRecord

__all__ = [
    "DEFAULT_MAX_SESSIONS",
    "DEFAULT_TIMEOUT",
    "MAX_PAGE",
    "SessionPage",
    "SessionStore",
]

DEFAULT_TIMEOUT = 2.0
"""Seconds a store operation may take before it raises ``StoreUnavailable``."""
DEFAULT_MAX_SESSIONS = 50
"""Live sessions a user may have; a login beyond it ends the user's oldest session."""
MAX_PAGE = 100
"""The most sessions one ``list_user`` page holds."""


@dataclass(frozen=True, slots=True)
class SessionPage:
    """One page of a user's live sessions, newest first.

    Attributes:
        sessions: ``(handle, record)`` pairs, newest first.
        next_cursor: Pass it to ``list_user`` for the next (older) page; ``None`` on the last.
    """

    sessions: list[tuple[str, SessionRecord]]
    next_cursor: str | None


class SessionStore(abc.ABC):
    """Abstract session store; see the module docstring for the contract."""

    @abc.abstractmethod
    async def load(self, sid: str) -> SessionRecord | None:
        """Return the live record stored under ``sid``, or ``None``."""

    @abc.abstractmethod
    async def create(self, sid: str, record: SessionRecord) -> Principal | None:
        """Store a new record under ``sid``; return the user's principal (``None``: anonymous).

        Raises:
            SessionExists: If ``sid`` holds a live record.
            StaleLogin: If the record has a user whose principal is missing, disabled, or has
                another epoch than ``record.epoch`` (nothing is written).
        """

    @abc.abstractmethod
    async def update(self, sid: str, update: RecordUpdate) -> bool:
        """Apply ``update`` to the record if it still exists; return whether it did."""

    @abc.abstractmethod
    async def touch(self, sid: str, *, seen: float, expires: float) -> bool:
        """Move the record's activity time and expiry if it still exists; return whether it did."""

    @abc.abstractmethod
    async def delete(self, sid: str) -> bool:
        """Delete the record (and its index entry) if present; return whether one was there.

        A rotation (a regeneration, a renewal) reads the answer for the record it replaces:
        ``False`` means the session ended, or another request rotated it, while the rotating
        request ran, and the new record is not stored. A request ending a login reads it for
        the record it loaded: ``False`` means a rotation replaced it, and the login's lineage
        is ended instead (:mod:`sessionauth.lineage`). A store that cannot tell may return
        ``None``, which is taken as ``True``.
        """

    @abc.abstractmethod
    async def list_user(
        self, user_id: str, *, limit: int = MAX_PAGE, cursor: str | None = None
    ) -> SessionPage:
        """Return a page of at most ``limit`` live sessions of ``user_id``, newest first.

        An unknown or malformed ``cursor`` gives an empty last page, never an error.
        """

    @abc.abstractmethod
    async def principal(self, user_id: str) -> Principal | None:
        """Return the principal of ``user_id``, or ``None`` if the store holds none."""

    @abc.abstractmethod
    async def install_principal(self, user_id: str, principal: Principal) -> Principal:
        """Store ``principal`` for ``user_id`` only if it has none; return the one in force.

        Build ``principal`` from a users-database read made *after* seeing it missing, so that
        a change racing the install has either written its own principal first (and wins) or
        had its users-database write seen by the read.
        """

    @abc.abstractmethod
    async def change_principal(
        self, user_id: str, change: PrincipalChange
    ) -> tuple[Principal, int]:
        """Apply ``change`` atomically; return the principal now and how many sessions went."""

    async def purge_expired(self, *, batch_size: int = 500) -> int:
        """Delete expired records in batches and return how many went.

        Stores whose backend expires records by itself (Redis TTLs) have nothing to do.
        """
        del batch_size
        return 0

    @property
    def acknowledgement_failure(self) -> str | None:
        """Why new sessions cannot be made durable now (replicas not acknowledging), or ``None``.

        Sessions still load and change meanwhile, so this degrades readiness without failing
        it. Only stores that wait for replicas (Redis Sentinel) ever report one.
        """
        return None

    @abc.abstractmethod
    async def ping(self) -> None:
        """Raise ``StoreUnavailable`` unless the backend answers."""

    async def aclose(self) -> None:
        """Release connections this store owns. The default owns none."""

    async def __aenter__(self) -> SessionStore:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()
