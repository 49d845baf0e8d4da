"""Listing, counting and revoking users' sessions: the Authenticator's part on sessions.

:class:`SessionAdministration` is the base of
:class:`~sessionauth.auth.accounts.AccountAdministration` and
:class:`~sessionauth.auth.authenticator.Authenticator`; every revocation, whoever asks (the
user, an administrator through the API or a page, an operator through the CLI), goes through
it and is published as a :class:`~sessionauth.auth.events.SessionRevoked` or
:class:`~sessionauth.auth.events.SessionsRevoked` event.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from sessionauth.auth.event_hub import EventHub
from sessionauth.auth.events import RevocationReason, SessionRevoked, SessionsRevoked
from sessionauth.auth.user_ids import IdT, UserId, typed_user_id
from sessionauth.auth.user_source import AccountLike, UserSource
from sessionauth.commit_plan import Lineage
from sessionauth.errors import NotAuthenticated, SessionNotFound, UserNotFound
from sessionauth.lineage import end_lineage
from sessionauth.policy import Clock, system_clock
from sessionauth.principal import Principal, PrincipalChange
from sessionauth.record import SessionRecord, is_remembered
from sessionauth.session import Session
from sessionauth.stores.base import MAX_PAGE, SessionStore
from sessionauth.user_text import user_id_text

__all__ = [
    "DEFAULT_PAGE",
    "SessionAdministration",
    "SessionInfo",
    "SessionListing",
    "end_unless_kept",
]

# What a storage id can look like (base64url, a dot after a user's group): anything else names
# no session, and must not reach a store (PostgreSQL refuses NUL in text with an error).
_HANDLE = re.compile(r"[A-Za-z0-9_-]{1,64}(?:\.[A-Za-z0-9_-]{1,64})?")

_T = TypeVar("_T")

DEFAULT_PAGE = 20
"""Sessions per page when listing, unless asked otherwise (at most ``MAX_PAGE``)."""


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
        remembered: Whether its login asked to be remembered (a persistent cookie and the
            long absolute timeout); sessions stored before remember-me existed are.
    """

    handle: str
    created: float
    last_seen: float
    ip: str | None
    user_agent: str | None
    current: bool
    remembered: bool = True


@dataclass(frozen=True, slots=True)
class SessionListing:
    """One page of a user's live sessions, newest first.

    Attributes:
        sessions: The page.
        next_cursor: Ask for it to get the next (older) page; ``None`` on the last one.
    """

    sessions: list[SessionInfo]
    next_cursor: str | None


def end_unless_kept(session: Session, principal: Principal) -> None:
    """Go on only if a rotation to ``principal`` carried ``session`` over; else end it.

    :meth:`SessionAdministration._change_principal` restamps a kept session only if the store
    still held its record: one that a revocation deleted while the request ran keeps its old
    epoch, and is destroyed here rather than regenerated into the new one.

    Raises:
        NotAuthenticated: If ``session`` was not carried over.
    """
    if session.epoch != principal.epoch:
        session.destroy()
        raise NotAuthenticated("the session ended while the change was made")


class SessionAdministration(Generic[IdT]):
    """The sessions of users: list, count, revoke one, revoke many.

    Generic in the user id type: every method takes and every event carries ids of
    ``user_id_type`` (``int`` by default, the built-in stores' ids; ``str`` for text ids such
    as UUIDs). Stores keep ids as text (:func:`~sessionauth.user_text.user_id_text`).

    Revocations of many sessions act on the user's principal (see
    :mod:`sessionauth.principal`): a new epoch ends every session stamped with the old one, in
    one atomic step, logins in flight included.

    Args:
        sessions: The session store the middleware uses (revocation acts on it directly).
        events: Where events are published.
        users: Where accounts live (a principal the store lost is rebuilt from them).
        user_id_type: ``int`` (the default) or ``str``: the type of the users' ids.
        clock: Seconds since the epoch (an ended login's marker is stamped with it).

    Attributes:
        sessions: The session store.
        events: The publisher; subscribe to it for the events you want.
        users: Where accounts live.
        user_id_type: The type of the users' ids.
        clock: The clock.
    """

    def __init__(
        self,
        *,
        sessions: SessionStore,
        events: EventHub,
        users: UserSource[AccountLike],
        # A constrained TypeVar left open is its first constraint, int: the default's type.
        user_id_type: type[IdT] = int,  # type: ignore[assignment]
        clock: Clock = system_clock,
    ):
        self.sessions = sessions
        self.events = events
        self.users = users
        self.user_id_type: type[IdT] = user_id_type
        self.clock = clock

    def session_user_id(self, session: Session) -> IdT | None:
        """Return the user id of ``session`` as :attr:`user_id_type`; ``None`` if anonymous.

        A session whose id is not of that type (``"m-7f3a"`` with ``int``) names no user
        of this application: ``None`` too.
        """
        return self._typed(session.user_id)

    def _typed(self, text: str | None) -> IdT | None:
        if text is None:
            return None
        try:
            return typed_user_id(text, self.user_id_type)
        except UserNotFound:
            return None

    async def list_sessions(
        self,
        user_id: IdT,
        *,
        current: str | None = None,
        limit: int = DEFAULT_PAGE,
        cursor: str | None = None,
    ) -> SessionListing:
        """Return a page of the live sessions of ``user_id``, newest first; ``current`` is flagged.

        Raises:
            ValueError: If ``limit`` is not between 1 and ``MAX_PAGE``.
        """
        if not 1 <= limit <= MAX_PAGE:
            raise ValueError(f"limit must be between 1 and {MAX_PAGE}")
        page = await self.sessions.list_user(user_id_text(user_id), limit=limit, cursor=cursor)
        infos = [
            SessionInfo(
                handle=handle,
                created=record.created,
                last_seen=record.seen,
                ip=record.meta.get("ip"),
                user_agent=record.meta.get("ua"),
                current=handle == current,
                remembered=is_remembered(record.meta),
            )
            for handle, record in page.sessions
        ]
        return SessionListing(infos, page.next_cursor)

    async def all_sessions(self, user_id: IdT) -> list[SessionInfo]:
        """Return every live session of ``user_id``, newest first (walks every page)."""
        found: list[SessionInfo] = []
        cursor: str | None = None
        while True:
            page = await self.list_sessions(user_id, limit=MAX_PAGE, cursor=cursor)
            found += page.sessions
            if page.next_cursor is None:
                return found
            cursor = page.next_cursor

    async def count_sessions(self, user_id: IdT) -> int:
        """Return how many live sessions ``user_id`` has."""
        return len(await self.all_sessions(user_id))

    async def revoke_session(
        self, user_id: IdT, handle: str, *, address: str | None = None
    ) -> None:
        """Revoke one session of ``user_id`` by its handle, at that user's request.

        Raises:
            SessionNotFound: If ``user_id`` has no live session with that handle (someone
                else's handle is treated exactly like a made-up one).
        """
        record = await self.sessions.load(handle) if _HANDLE.fullmatch(handle) else None
        if record is None or record.user_id != user_id_text(user_id):
            raise SessionNotFound("no such session")
        await self._end(handle, record)
        await self.events.publish(SessionRevoked(user_id=user_id, address=address, actor=user_id))

    async def revoke_handle(self, handle: str) -> None:
        """Revoke any user's live session by its handle (an operator's ``sessions revoke HANDLE``).

        Only a signed-in session, as ``sessions list`` shows them: an anonymous record is no
        one's to revoke, and some are the library's own (a lineage's marker, a renewal's
        forward), whose deletion would let an ended login carry on.

        Raises:
            SessionNotFound: If no signed-in session has that handle.
        """
        record = await self.sessions.load(handle) if _HANDLE.fullmatch(handle) else None
        if record is None or record.user_id is None:
            raise SessionNotFound("no live session with that handle")
        await self._end(handle, record)
        await self.events.publish(SessionRevoked(user_id=self._typed(record.user_id), actor=None))

    async def _end(self, handle: str, record: SessionRecord) -> None:
        """Delete the session ``handle``, loaded as ``record``, wherever a rotation moved it.

        A request of that session rotating it (a renewal, "sign out my other sessions") may
        have deleted the record since the load, to store it anew under its new cookie's id:
        the delete then finds nothing, and the revocation ends the login's lineage instead, as
        the middleware's logout does (:mod:`sessionauth.lineage`). The marker is kept at least
        until the loaded record would have expired; a session of the lineage that a store
        failure kept from this delete is ended by its next rotation meanwhile.
        """
        if await self.sessions.delete(handle) is not False or record.user_id is None:
            return
        lineage = Lineage(handle, record.user_id, record.created)
        kept = max(record.expires - record.created, 0.0)
        await end_lineage(self.sessions, lineage, self.clock(), kept)

    async def revoke_other_sessions(self, session: Session, *, address: str | None = None) -> int:
        """Revoke every session of the current user but this one; return how many went.

        This one carries on under a new token (set when the response starts).

        Raises:
            NotAuthenticated: Without an authenticated session.
        """
        user_id = self.session_user_id(session)
        if user_id is None:
            raise NotAuthenticated("Authentication required")
        _, revoked = await self._change_principal(user_id, rotate=True, keep=session)
        # A new token too: a cookie that a renewal replaced in the last seconds still reaches
        # the kept record through its forward (sessionauth.forwards); this one's must not.
        session.regenerate()
        await self._revoked(user_id, revoked, "others", actor=user_id, address=address)
        return revoked

    async def revoke_all_sessions(self, user_id: IdT, *, actor: IdT | None = None) -> int:
        """End every session of ``user_id`` (an administrator's "sign out everywhere").

        Args:
            user_id: Whose sessions end.
            actor: The administrator who asked (``None``: the CLI).

        Returns:
            How many live sessions ended.
        """
        _, revoked = await self._change_principal(user_id, rotate=True)
        await self._revoked(user_id, revoked, "admin", actor=actor)
        return revoked

    async def _revoked(
        self,
        user_id: UserId,
        count: int,
        why: RevocationReason,
        *,
        actor: UserId | None,
        address: str | None = None,
    ) -> None:
        await self.events.publish(
            SessionsRevoked(user_id=user_id, address=address, count=count, why=why, actor=actor)
        )

    async def _change_principal(
        self,
        user_id: UserId,
        *,
        role: str | None = None,
        disabled: bool | None = None,
        rotate: bool = False,
        keep: Session | None = None,
        account: AccountLike | None = None,
    ) -> tuple[Principal, int]:
        """Change the principal of ``user_id`` in one atomic step; return it and the sessions gone.

        ``account`` is the users-database read the change starts from when the store holds no
        principal (read now if not given; a missing account grants nothing). ``keep`` survives
        a rotation and follows it: its record and the request's session take the new epoch,
        but only if the store still held its record. A revocation that landed while this
        request ran (a reset, "sign out everywhere", a new password) deleted it: the request's
        session then keeps its old epoch, so that it ends (a regeneration's create-if-current
        is refused) instead of coming back under the new one.
        """
        if account is None:
            account = await self.users.get(user_id)
        change = PrincipalChange(
            fallback_role=account.role if account is not None else "",
            fallback_disabled=account.disabled if account is not None else True,
            role=role,
            disabled=disabled,
            rotate=rotate,
            keep=keep.handle if keep is not None else None,
        )
        principal, gone = await self.sessions.change_principal(user_id_text(user_id), change)
        if keep is not None and keep.handle is not None:
            kept = await self.sessions.load(keep.handle)
            if kept is not None and kept.epoch == principal.epoch:
                keep.restamp(principal)
        return principal, gone

    async def _rotating(
        self, user_id: UserId, change: Callable[[], Awaitable[_T]], *, keep: Session | None = None
    ) -> tuple[_T, int]:
        """Apply ``change`` (a new password) between two rotations of the principal.

        The first rotation ends every session (but ``keep``) before the users database
        changes, so a failure of that write leaves fewer sessions, never more. The second ends
        a login that read the old password hash between the two writes and verified the old
        password: its session carries an epoch that is no longer the principal's. Returns what
        ``change`` returned, and how many sessions went.

        Raises:
            NotAuthenticated: If ``keep`` was revoked before the first rotation (see
                :meth:`_change_principal`): ``change`` is not applied and ``keep`` is destroyed.
        """
        principal, revoked = await self._change_principal(user_id, rotate=True, keep=keep)
        if keep is not None:
            # Revoked while this request ran: the change is not made in its name.
            end_unless_kept(keep, principal)
        result = await change()
        _, more = await self._change_principal(user_id, rotate=True, keep=keep)
        return result, revoked + more
