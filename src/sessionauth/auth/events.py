"""Security events: one frozen dataclass per thing that happened to an account or a session.

The :class:`~sessionauth.auth.authenticator.Authenticator` publishes them (through
:class:`~sessionauth.auth.event_hub.EventHub`, which also writes each one to the
``sessionauth.security`` logger); subscribers choose the types they want::

    AuthEvent                   user_id, address (every event)
    ├── LoginSucceeded          a password was accepted and the session bound to the user
    ├── LoginFailed             reason: unknown | password | disabled | stale | unverified
    ├── LoginThrottled          retry_after; during: login | password-change
    ├── LoggedOut
    ├── PasswordChanged         by the user, with the current password
    ├── PasswordChangeFailed    the current password given was wrong
    ├── SessionRevoked          one session, by its owner or an operator (actor)
    ├── SessionsRevoked         count, why: others | password-changed | password-reset |
    │                           disabled | deleted | admin | account-changed
    └── AccountEvent            actor: the administrator who asked (None: the CLI or the system)
        ├── UserCreated         role
        ├── RoleChanged         role
        ├── PasswordReset
        ├── AccountDisabled
        ├── AccountEnabled
        ├── EmailVerified
        └── UserDeleted

No event holds a password, a password hash, a session token, a session handle or an email
address (users are named by their id, of the Authenticator's ``user_id_type``: ``int`` or
``str``), so an event and its log line can be shipped anywhere.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import ClassVar, Literal

from sessionauth.auth.user_ids import UserId

__all__ = [
    "AccountDisabled",
    "AccountEnabled",
    "AccountEvent",
    "AccountUnlocked",
    "AuthEvent",
    "EmailVerified",
    "LoggedOut",
    "LoginFailed",
    "LoginSucceeded",
    "LoginThrottled",
    "PasswordChangeFailed",
    "PasswordChanged",
    "PasswordReset",
    "RevocationReason",
    "RoleChanged",
    "SessionRevoked",
    "SessionsRevoked",
    "UserCreated",
    "UserDeleted",
]

RevocationReason = Literal[
    "others",
    "password-changed",
    "password-reset",
    "disabled",
    "deleted",
    "admin",
    "account-changed",
]
"""Why several sessions of a user ended at once."""


@dataclass(frozen=True, slots=True, kw_only=True)
class AuthEvent:
    """Something security-relevant happened; the base of every event.

    Attributes:
        name: The event's name in the log (``event`` in JSON lines).
        level: The level it is logged at.
        user_id: The user concerned, when known.
        address: The client address, when the event came from a request.
    """

    name: ClassVar[str] = "auth_event"
    level: ClassVar[int] = logging.INFO

    user_id: UserId | None
    address: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class LoginSucceeded(AuthEvent):
    """A user signed in: the session now carries their id (fresh token, fresh lifetime)."""

    name: ClassVar[str] = "login"


@dataclass(frozen=True, slots=True, kw_only=True)
class LoginFailed(AuthEvent):
    """A login was refused with "Invalid credentials".

    Attributes:
        reason: ``unknown`` (no such email, ``user_id`` is ``None``), ``password`` (wrong),
            ``disabled`` (right password, disabled account), ``stale`` (right password, but
            the account changed while the login ran: a password change, disable, delete or
            revocation) or ``unverified`` (right password, but verified emails are required
            and this one is not: the only reason the client is told, as it holds the
            password). The client never learns which of the others.
    """

    name: ClassVar[str] = "login_failed"
    level: ClassVar[int] = logging.WARNING

    reason: Literal["unknown", "password", "disabled", "stale", "unverified"]


@dataclass(frozen=True, slots=True, kw_only=True)
class LoginThrottled(AuthEvent):
    """A password check was refused before hashing: the account or the address is throttled.

    Attributes:
        retry_after: Whole seconds until the client may try again.
        during: ``login``, or ``password-change`` (the current password of a signed-in user).
    """

    name: ClassVar[str] = "login_throttled"
    level: ClassVar[int] = logging.WARNING

    retry_after: int
    during: Literal["login", "password-change"] = "login"


@dataclass(frozen=True, slots=True, kw_only=True)
class LoggedOut(AuthEvent):
    """A user signed out: the session's record is deleted and its cookie cleared."""

    name: ClassVar[str] = "logout"


@dataclass(frozen=True, slots=True, kw_only=True)
class PasswordChanged(AuthEvent):
    """A signed-in user changed their password (their other sessions end: see SessionsRevoked)."""

    name: ClassVar[str] = "password_changed"


@dataclass(frozen=True, slots=True, kw_only=True)
class PasswordChangeFailed(AuthEvent):
    """A signed-in user gave a wrong current password (counted by the throttle like a login)."""

    name: ClassVar[str] = "password_change_failed"
    level: ClassVar[int] = logging.WARNING


@dataclass(frozen=True, slots=True, kw_only=True)
class SessionRevoked(AuthEvent):
    """One session ended by revocation (not by logout or expiry).

    Attributes:
        actor: Who asked: the session's owner, or ``None`` for an operator (the CLI).
    """

    name: ClassVar[str] = "session_revoked"
    level: ClassVar[int] = logging.WARNING

    actor: UserId | None


@dataclass(frozen=True, slots=True, kw_only=True)
class SessionsRevoked(AuthEvent):
    """Sessions of one user ended at once.

    Attributes:
        count: How many live sessions ended (may be 0).
        why: What ended them (see :data:`RevocationReason`).
        actor: Who asked: the user, an administrator, or ``None`` for the CLI or the system.
    """

    name: ClassVar[str] = "sessions_revoked"
    level: ClassVar[int] = logging.WARNING

    count: int
    why: RevocationReason
    actor: UserId | None


@dataclass(frozen=True, slots=True, kw_only=True)
class AccountEvent(AuthEvent):
    """An administrator (or the CLI, or the server itself) changed an account.

    Attributes:
        actor: The administrator's id, or ``None`` for the CLI or the server (first admin).
    """

    name: ClassVar[str] = "account_event"
    level: ClassVar[int] = logging.WARNING

    actor: UserId | None


@dataclass(frozen=True, slots=True, kw_only=True)
class UserCreated(AccountEvent):
    """An account was created.

    Attributes:
        role: The role it was given.
    """

    name: ClassVar[str] = "user_created"
    level: ClassVar[int] = logging.INFO

    role: str


@dataclass(frozen=True, slots=True, kw_only=True)
class RoleChanged(AccountEvent):
    """An account's role changed; every live session of it carries the new role.

    Attributes:
        role: The new role.
    """

    name: ClassVar[str] = "role_changed"

    role: str


@dataclass(frozen=True, slots=True, kw_only=True)
class PasswordReset(AccountEvent):
    """An account's password was set without the old one (its sessions end: SessionsRevoked)."""

    name: ClassVar[str] = "password_reset"


@dataclass(frozen=True, slots=True, kw_only=True)
class AccountDisabled(AccountEvent):
    """An account was disabled (its sessions end: SessionsRevoked)."""

    name: ClassVar[str] = "account_disabled"


@dataclass(frozen=True, slots=True, kw_only=True)
class AccountEnabled(AccountEvent):
    """A disabled account was enabled again."""

    name: ClassVar[str] = "account_enabled"


@dataclass(frozen=True, slots=True, kw_only=True)
class AccountUnlocked(AccountEvent):
    """An account's failed login attempts were forgotten: it may sign in again at once."""

    name: ClassVar[str] = "account_unlocked"


@dataclass(frozen=True, slots=True, kw_only=True)
class EmailVerified(AccountEvent):
    """An account's email was marked confirmed."""

    name: ClassVar[str] = "email_verified"
    level: ClassVar[int] = logging.INFO


@dataclass(frozen=True, slots=True, kw_only=True)
class UserDeleted(AccountEvent):
    """An account was deleted (its sessions end: SessionsRevoked)."""

    name: ClassVar[str] = "user_deleted"
