"""Listing, counting and revoking users' sessions: the Authenticator's part on sessions.

:class:`SessionAdministration` is the base of
:class:`~sessionauth.auth.accounts.AccountAdministration` and
:class:`~sessionauth.auth.authenticator.Authenticator`; every revocation, whoever asks (the
user, an administrator through the API or a page, an operator through the CLI), goes through
it and is published as a :class:`~sessionauth.auth.events.SessionRevoked` or
:class:`~sessionauth.auth.events.SessionsRevoked` event.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from sessionauth.auth.event_hub import EventHub
from sessionauth.auth.events import RevocationReason, SessionRevoked, SessionsRevoked
from sessionauth.errors import NotAuthenticated, SessionNotFound
from sessionauth.session import Session
from sessionauth.stores.base import SessionStore

__all__ = ["SessionAdministration", "SessionInfo"]

_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class SessionInfo:
    """One live session of a user, as listed to that user or an admin.

    Attributes:
        handle: Names the session for revocation; never usable as a cookie.
        created: When the login happened (POSIX seconds).
        last_seen: Last recorded activity (updated at most once per touch interval).
        ip: Client address at login.
        user_agent: Browser at login.
        current: Whether this is the session of the request that asked.
    """

    handle: str
    created: float
    last_seen: float
    ip: str | None
    user_agent: str | None
    current: bool


class SessionAdministration:
    """The sessions of users: list, count, revoke one, revoke many.

    Args:
        sessions: The session store the middleware uses (revocation acts on it directly).
        events: Where events are published.

    Attributes:
        sessions: The session store.
        events: The publisher; subscribe to it for the events you want.
    """

    def __init__(self, *, sessions: SessionStore, events: EventHub):
        self.sessions = sessions
        self.events = events

    async def list_sessions(self, user_id: int, *, current: str | None = None) -> list[SessionInfo]:
        """Return the live sessions of ``user_id``, oldest first; ``current`` is flagged."""
        return [
            SessionInfo(
                handle=handle,
                created=record.created,
                last_seen=record.seen,
                ip=record.meta.get("ip"),
                user_agent=record.meta.get("ua"),
                current=handle == current,
            )
            for handle, record in await self.sessions.list_user(str(user_id))
        ]

    async def count_sessions(self, user_id: int) -> int:
        """Return how many live sessions ``user_id`` has."""
        return len(await self.sessions.list_user(str(user_id)))

    async def revoke_session(
        self, user_id: int, handle: str, *, address: str | None = None
    ) -> None:
        """Revoke one session of ``user_id`` by its handle, at that user's request.

        Raises:
            SessionNotFound: If ``user_id`` has no live session with that handle (someone
                else's handle is treated exactly like a made-up one).
        """
        handles = {h for h, _ in await self.sessions.list_user(str(user_id))}
        if handle not in handles:
            raise SessionNotFound("no such session")
        await self.sessions.delete(handle)
        await self.events.publish(SessionRevoked(user_id=user_id, address=address, actor=user_id))

    async def revoke_handle(self, handle: str) -> None:
        """Revoke any live session by its handle (an operator's ``sessions revoke HANDLE``).

        Raises:
            SessionNotFound: If no live session has that handle.
        """
        record = await self.sessions.load(handle)
        if record is None:
            raise SessionNotFound("no live session with that handle")
        await self.sessions.delete(handle)
        owner = int(record.user_id) if record.user_id is not None else None
        await self.events.publish(SessionRevoked(user_id=owner, actor=None))

    async def revoke_other_sessions(self, session: Session, *, address: str | None = None) -> int:
        """Revoke every session of the current user but this one; return how many went.

        Raises:
            NotAuthenticated: Without an authenticated session.
        """
        user_id = session.user_id
        if user_id is None:
            raise NotAuthenticated("Authentication required")
        revoked = await self.sessions.delete_user(user_id, keep=session.handle)
        await self._revoked(int(user_id), revoked, "others", actor=int(user_id), address=address)
        return revoked

    async def revoke_all_sessions(self, user_id: int, *, actor: int | None = None) -> int:
        """End every session of ``user_id`` (an administrator's "sign out everywhere").

        Args:
            user_id: Whose sessions end.
            actor: The administrator who asked (``None``: the CLI).

        Returns:
            How many live sessions ended.
        """
        revoked = await self.sessions.delete_user(str(user_id))
        await self._revoked(user_id, revoked, "admin", actor=actor)
        return revoked

    async def _revoked(
        self,
        user_id: int,
        count: int,
        why: RevocationReason,
        *,
        actor: int | None,
        address: str | None = None,
    ) -> None:
        await self.events.publish(
            SessionsRevoked(user_id=user_id, address=address, count=count, why=why, actor=actor)
        )

    async def _revoking(
        self, user_id: int, change: Callable[[], Awaitable[_T]], *, keep: str | None = None
    ) -> tuple[_T, int]:
        """Apply ``change`` to the account between two revocations of its sessions (but ``keep``).

        Fails closed when the session store fails: before the change, nothing has happened yet
        (the caller gets ``StoreUnavailable`` and can retry); after it, the only sessions left
        are ones logged in during the change itself. Revoking only after the change would leave
        every session alive, with a new password or a disabled account, if the store failed.
        Returns what ``change`` returned, and how many sessions went.
        """
        revoked = await self.sessions.delete_user(str(user_id), keep=keep)
        result = await change()
        revoked += await self.sessions.delete_user(str(user_id), keep=keep)
        return result, revoked
