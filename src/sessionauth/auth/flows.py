"""Authentication flows: turn sessions into logins, and keep them honest afterwards.

:class:`Authenticator` is the one place where users, passwords, sessions and throttling meet:

* ``authenticate`` gives unknown email, wrong password and disabled account the same exception
  after the same work (exactly one password hash each, a dummy one for unknown emails), and is
  throttled per account and per client address before any hashing: each attempt is reserved
  atomically first, so a burst of concurrent guesses verifies no more passwords than the
  limit allows.
* ``login`` regenerates the session (new token, old record deleted, CSRF secret rotated with the
  token) and records the client's address, user agent and the authentication time.
* Every change of trust applies at once to every live session of the user: a password change
  revokes the others and regenerates this one; disabling or deleting revokes all; a role change
  rewrites the role in each session.
* Account administration keeps the rules of :mod:`.admin_rules`: roles from the configured set,
  never the last enabled administrator demoted, disabled or deleted (unless forced, from the
  CLI), never an administrator acting on itself.

Each event goes to the ``sessionauth.security`` logger and to the hooks you pass; neither ever
sees a password or a session token (sessions are named by their handle).
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Literal, TypeVar

from sessionauth.auth.admin_rules import DEFAULT_ROLES, check_removal, check_role, role_set
from sessionauth.auth.passwords import PasswordHasher
from sessionauth.auth.throttle import LoginThrottle
from sessionauth.errors import (
    AdminLockout,
    InvalidCredentials,
    NotAuthenticated,
    SessionNotFound,
    UserNotFound,
)
from sessionauth.policy import Clock, system_clock
from sessionauth.session import Session
from sessionauth.stores.base import SessionStore
from sessionauth.stores.users import ADMIN_ROLE, InvalidEmail, User, UserStore, normalize_email

__all__ = ["AuthEvent", "Authenticator", "SessionInfo"]

_T = TypeVar("_T")

security_log = logging.getLogger("sessionauth.security")

# Longest user agent kept with a session: enough to tell devices apart, bounded storage.
_MAX_USER_AGENT = 256

EventKind = Literal["login", "login_failed", "logout", "revoked", "password_changed"]


@dataclass(frozen=True, slots=True)
class AuthEvent:
    """Something security-relevant happened.

    Attributes:
        kind: ``login``, ``login_failed``, ``logout``, ``revoked`` or ``password_changed``.
        user_id: The user concerned, when known.
        address: The client address, when the event came from a request.
        detail: A short, secret-free description (a revocation's scope, a failure's reason).
    """

    kind: EventKind
    user_id: int | None = None
    address: str | None = None
    detail: str = ""


Hook = Callable[[AuthEvent], Awaitable[None] | None]
"""A callable notified of every :class:`AuthEvent`; may be sync or async."""


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


class Authenticator:
    """Logins, logouts, password and role changes, and session revocation.

    Args:
        users: Where accounts live.
        sessions: The session store the middleware uses (revocation acts on it directly).
        hasher: Hashes and verifies passwords off the event loop.
        throttle: Limits failed logins; ``None`` disables throttling (tests only).
        clock: Time source for authentication times.
        hooks: Notified of every :class:`AuthEvent`.
        roles: The roles accounts may have; must include ``admin``.

    Attributes:
        roles: The roles accounts may have.

    Raises:
        ConfigurationError: For an invalid role name or roles without ``admin``.
    """

    def __init__(
        self,
        *,
        users: UserStore,
        sessions: SessionStore,
        hasher: PasswordHasher,
        throttle: LoginThrottle | None,
        clock: Clock = system_clock,
        hooks: Sequence[Hook] = (),
        roles: Iterable[str] = DEFAULT_ROLES,
    ):
        self.roles = role_set(roles)
        self.users = users
        self.sessions = sessions
        self.hasher = hasher
        self.throttle = throttle
        self.clock = clock
        self.hooks = tuple(hooks)

    async def _emit(self, event: AuthEvent) -> None:
        level = logging.WARNING if event.kind in ("login_failed", "revoked") else logging.INFO
        security_log.log(
            level,
            "%s user=%s address=%s %s",
            event.kind,
            event.user_id,
            event.address,
            event.detail,
            # The same, as fields: JSON logs (SESSIONAUTH_LOG_FORMAT=json) carry them as they are.
            extra={
                "event": event.kind,
                "user": event.user_id,
                "address": event.address,
                "detail": event.detail,
            },
        )
        for hook in self.hooks:
            result = hook(event)
            if inspect.isawaitable(result):
                await result

    async def authenticate(self, email: str, password: str, *, address: str) -> User:
        """Return the active user whose email and password these are.

        Raises:
            TooManyAttempts: If the account or the address has no attempt left (refused before
                any hashing; the attempt is reserved before the password is verified).
            PasswordPolicyError: If the password is longer than the policy allows (refused
                before hashing; the answer does not depend on the account).
            InvalidCredentials: For an unknown email, a wrong password or a disabled account,
                indistinguishably.
        """
        try:
            account = normalize_email(email)
        except InvalidEmail:
            account = None
        throttle_key = account if account is not None else email.strip().casefold()[:320]
        attempt = await self.throttle.reserve(throttle_key, address) if self.throttle else None
        try:
            # Refuse an oversized password before the user lookup: no hashing, and the answer
            # cannot depend on the account, not even through the lookup's timing.
            self.hasher.policy.normalize(password)
            user = await self.users.get_by_email(account) if account is not None else None
            if user is None:
                await self.hasher.dummy_verify(password)
                ok, new_hash = False, None
            else:
                ok, new_hash = await self.hasher.verify(password, user.password_hash)
        except BaseException:
            # No password was judged (too long, an outage, a cancelled request): the attempt
            # does not count.
            if self.throttle is not None and attempt is not None:
                await self.throttle.release(attempt)
            raise
        if user is None or not ok or user.disabled:
            # The reservation stays: it is this failure's count.
            reason = "unknown" if user is None else ("disabled" if ok else "password")
            await self._emit(
                AuthEvent("login_failed", user.id if user else None, address, f"reason={reason}")
            )
            raise InvalidCredentials("Invalid credentials")
        if new_hash is not None:
            # Upgrade a bcrypt or weaker argon2 hash now that we hold the right password.
            await self.users.set_password(user.id, new_hash)
        if self.throttle is not None and attempt is not None:
            await self.throttle.succeeded(attempt)
        return user

    async def login(
        self, session: Session, user: User, *, address: str | None, user_agent: str | None
    ) -> None:
        """Bind ``session`` to ``user``: new token, fresh lifetime, role and client recorded.

        Values of an anonymous session (a cart) carry over; those of another user's session
        do not, so a shared browser never hands one user's data to the next.
        """
        if session.user_id not in (None, str(user.id)):
            session.clear()
        session.set_user(
            str(user.id),
            meta={
                "ip": address,
                "ua": (user_agent or "")[:_MAX_USER_AGENT],
                "auth": self.clock(),
            },
        )
        session["role"] = user.role
        await self._emit(AuthEvent("login", user.id, address))

    async def logout(self, session: Session, *, address: str | None = None) -> None:
        """Destroy ``session``: its record is deleted and its cookie cleared."""
        user_id = session.user_id
        session.destroy()
        await self._emit(AuthEvent("logout", int(user_id) if user_id else None, address))

    async def current_user(self, session: Session) -> User:
        """Return the active user of an authenticated session.

        Raises:
            NotAuthenticated: If the session is anonymous, or its user is gone or disabled
                (a session that outlived its account is destroyed on the spot).
        """
        user_id = session.user_id
        if user_id is None:
            raise NotAuthenticated("Authentication required")
        user = await self.users.get(int(user_id))
        if user is None or user.disabled:
            session.destroy()
            raise NotAuthenticated("Authentication required")
        return user

    async def change_password(
        self, session: Session, current_password: str, new_password: str, *, address: str | None
    ) -> int:
        """Change the session user's password; return how many other sessions were revoked.

        Checks the current password (the same uniform failure as a login), hashes the new one
        under the policy, revokes every other session and regenerates this one.

        Raises:
            NotAuthenticated: Without an authenticated session.
            TooManyAttempts: If the account is throttled (failed checks count as failed logins).
            InvalidCredentials: If ``current_password`` is wrong.
            PasswordPolicyError: If the new password breaks the policy.
        """
        user = await self.current_user(session)
        # Both lengths before any hashing: an oversized password must cost no argon2 run.
        self.hasher.policy.normalize(current_password)
        self.hasher.policy.validate(new_password)
        # A stolen cookie must not become an unthrottled oracle for the current password: the
        # check counts against the account exactly like a login.
        client = address or "unknown"
        attempt = await self.throttle.reserve(user.email, client) if self.throttle else None
        try:
            ok, _ = await self.hasher.verify(current_password, user.password_hash)
        except BaseException:
            if self.throttle is not None and attempt is not None:
                await self.throttle.release(attempt)
            raise
        if not ok:
            await self._emit(AuthEvent("login_failed", user.id, address, "reason=password-change"))
            raise InvalidCredentials("Invalid credentials")
        if self.throttle is not None and attempt is not None:
            await self.throttle.succeeded(attempt)
        new_hash = await self.hasher.hash(new_password)
        _, revoked = await self._revoking(
            user.id, lambda: self.users.set_password(user.id, new_hash), keep=session.handle
        )
        session.regenerate()
        await self._emit(AuthEvent("password_changed", user.id, address, f"revoked={revoked}"))
        return revoked

    async def set_password(self, user_id: int, new_password: str) -> int:
        """Set a user's password (an admin reset); revoke all their sessions and return how many.

        Raises:
            UserNotFound: If there is no such user.
            PasswordPolicyError: If the password breaks the policy.
        """
        new_hash = await self.hasher.hash(new_password)
        _, revoked = await self._revoke_all(
            user_id, lambda: self.users.set_password(user_id, new_hash), "password reset"
        )
        return revoked

    async def create_user(self, email: str, password: str, role: str = "user") -> User:
        """Create an account with a password under the policy and a role from :attr:`roles`.

        Raises:
            InvalidRole: If ``role`` is not one of :attr:`roles`.
            InvalidEmail: If ``email`` cannot be normalised.
            PasswordPolicyError: If the password breaks the policy.
            DuplicateUser: If the email is taken.
        """
        check_role(role, self.roles)
        return await self.users.create(email, await self.hasher.hash(password), role=role)

    async def set_role(
        self, user_id: int, role: str, *, actor: int | None = None, force: bool = False
    ) -> User:
        """Change a user's role; every live session of theirs carries the new role at once.

        Fails closed: the sessions lose the old role before the account changes and get the new
        one only after it. A failure between the steps leaves them with no role (signed in,
        nothing more; signing in again gives the account's role), never with a role the account
        no longer has or was never given. A refused change gives the sessions their role back.

        Args:
            user_id: Whose role changes.
            role: One of :attr:`roles`.
            actor: The administrator asking through the API or a page (never themself).
            force: Allow demoting the last enabled administrator (the CLI's ``--force``).

        Raises:
            InvalidRole: If ``role`` is not one of :attr:`roles`.
            UserNotFound: If there is no such user.
            AdminLockout: If this demotes ``actor`` or the last enabled administrator.
        """
        check_role(role, self.roles)
        if role == ADMIN_ROLE:
            current = await self.users.get(user_id)
            if current is None:
                raise UserNotFound(f"no user with id {user_id}")
        else:
            current = await check_removal(self.users, user_id, actor=actor, force=force)
        await self.sessions.update_user(str(user_id), {"role": None})
        try:
            user = await self.users.set_role(user_id, role, keep_admin=not force)
        except AdminLockout:
            await self.sessions.update_user(str(user_id), {"role": current.role})
            raise
        await self.sessions.update_user(str(user_id), {"role": role})
        return user

    async def set_disabled(
        self, user_id: int, disabled: bool, *, actor: int | None = None, force: bool = False
    ) -> User:
        """Disable (revoking every session) or re-enable a user.

        Args:
            user_id: Who is disabled or enabled.
            disabled: Which of the two.
            actor: The administrator asking through the API or a page (never themself).
            force: Allow disabling the last enabled administrator (the CLI's ``--force``).

        Raises:
            UserNotFound: If there is no such user.
            AdminLockout: If this disables ``actor`` or the last enabled administrator.
        """
        if not disabled:
            return await self.users.set_disabled(user_id, False)
        await check_removal(self.users, user_id, actor=actor, force=force)
        user, _ = await self._revoke_all(
            user_id,
            lambda: self.users.set_disabled(user_id, True, keep_admin=not force),
            "account disabled",
        )
        return user

    async def delete_user(
        self, user_id: int, *, actor: int | None = None, force: bool = False
    ) -> int:
        """Delete a user and revoke all their sessions; return how many were revoked.

        Args:
            user_id: Who is deleted.
            actor: The administrator asking through the API or a page (never themself).
            force: Allow deleting the last enabled administrator (the CLI's ``--force``).

        Raises:
            UserNotFound: If there is no such user.
            AdminLockout: If this deletes ``actor`` or the last enabled administrator.
        """
        await check_removal(self.users, user_id, actor=actor, force=force)
        _, revoked = await self._revoke_all(
            user_id, lambda: self.users.delete(user_id, keep_admin=not force), "account deleted"
        )
        return revoked

    async def revoke_all_sessions(self, user_id: int, *, by: int | str | None = None) -> int:
        """End every session of ``user_id`` (an administrator's "sign out everywhere").

        Args:
            user_id: Whose sessions end.
            by: The administrator who asked, for the security log.

        Returns:
            How many live sessions ended.
        """
        revoked = await self.sessions.delete_user(str(user_id))
        await self._emit(AuthEvent("revoked", user_id, None, f"all={revoked} why=admin {by}"))
        return revoked

    async def _revoke_all(
        self, user_id: int, change: Callable[[], Awaitable[_T]], why: str
    ) -> tuple[_T, int]:
        result, revoked = await self._revoking(user_id, change)
        await self._emit(AuthEvent("revoked", user_id, None, f"all={revoked} why={why}"))
        return result, revoked

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

    async def revoke_session(
        self, user_id: int, handle: str, *, address: str | None = None
    ) -> None:
        """Revoke one session of ``user_id`` by its handle.

        Raises:
            SessionNotFound: If ``user_id`` has no live session with that handle (someone
                else's handle is treated exactly like a made-up one).
        """
        handles = {h for h, _ in await self.sessions.list_user(str(user_id))}
        if handle not in handles:
            raise SessionNotFound("no such session")
        await self.sessions.delete(handle)
        await self._emit(AuthEvent("revoked", user_id, address, "one"))

    async def revoke_other_sessions(self, session: Session, *, address: str | None = None) -> int:
        """Revoke every session of the current user but this one; return how many went.

        Raises:
            NotAuthenticated: Without an authenticated session.
        """
        user_id = session.user_id
        if user_id is None:
            raise NotAuthenticated("Authentication required")
        revoked = await self.sessions.delete_user(user_id, keep=session.handle)
        await self._emit(AuthEvent("revoked", int(user_id), address, f"others={revoked}"))
        return revoked
