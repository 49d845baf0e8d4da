"""The contract every session store keeps.

A store maps a *storage id* (the SHA-256 of a session token, see :mod:`sessionauth.tokens`) to a
:class:`~sessionauth.record.SessionRecord`, and indexes records by user. A record with a user is
always stored under the id of a token made for that user, so its id starts with the user's group
(``tokens.group_of``); stores may use that to keep a user's sessions together. The semantics
below are what ``tests/contract/`` checks, against the real backend, for every store:

* ``load`` returns ``None`` for a missing record, an expired one (``record.expires`` at or
  before the store's clock), and one that fails to decode.
* ``update`` and ``touch`` change a record only if it still exists: a write racing a logout or a
  revocation never brings the session back. Updates merge per key, so two requests changing
  different keys of one session both persist.
* ``delete`` is idempotent. The ``*_user`` operations act on every live session of a user.
* Every failure to reach the backend raises :class:`~sessionauth.errors.StoreUnavailable` within
  the store's ``timeout``, never a hang and never a driver-specific exception. After a failed
  write the outcome is unknown (the backend may have applied it), but a deleted session is
  never revived either way.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping
from typing import Any

from sessionauth.record import RecordUpdate, SessionRecord

__all__ = ["DEFAULT_TIMEOUT", "SessionStore"]

DEFAULT_TIMEOUT = 2.0
"""Seconds a store operation may take before it raises ``StoreUnavailable``."""


class SessionStore(abc.ABC):
    """Abstract session store; see the module docstring for the contract."""

    @abc.abstractmethod
    async def load(self, sid: str) -> SessionRecord | None:
        """Return the live record stored under ``sid``, or ``None``."""

    @abc.abstractmethod
    async def create(self, sid: str, record: SessionRecord) -> None:
        """Store a new record under ``sid`` (a fresh id: it never overwrites a live session)."""

    @abc.abstractmethod
    async def update(self, sid: str, update: RecordUpdate) -> bool:
        """Apply ``update`` to the record if it still exists; return whether it did."""

    @abc.abstractmethod
    async def touch(self, sid: str, *, seen: float, expires: float) -> bool:
        """Move the record's activity time and expiry if it still exists; return whether it did."""

    @abc.abstractmethod
    async def delete(self, sid: str) -> None:
        """Delete the record (and its index entry) if present."""

    @abc.abstractmethod
    async def list_user(self, user_id: str) -> list[tuple[str, SessionRecord]]:
        """Return ``(handle, record)`` for every live session of ``user_id``, oldest first."""

    @abc.abstractmethod
    async def delete_user(self, user_id: str, *, keep: str | None = None) -> int:
        """Delete every session of ``user_id`` except ``keep``; return how many were deleted."""

    @abc.abstractmethod
    async def update_user(self, user_id: str, values: Mapping[str, Any]) -> int:
        """Set ``values`` in every live session of ``user_id``; return how many were changed."""

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
