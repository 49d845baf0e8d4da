"""Authentication on top of sessions: passwords, users, login flows, throttling, guards.

The names an application needs, importable from here:

* :class:`Authenticator`: login, logout, password changes, accounts and session revocation,
  over a :class:`UserStore`, a session store, a :class:`PasswordHasher` (with its
  :class:`PasswordPolicy`) and a :class:`LoginThrottle`; its ``events`` (an
  :class:`EventHub`) publish an :class:`AuthEvent` for each of them. What its methods
  return: :class:`Login` (``authenticate``), :class:`User`, :class:`UserPage`,
  :class:`SessionListing` of :class:`SessionInfo`.
* Guards, framework-free (:func:`check_auth`, :func:`check_role`, :func:`check_recent_auth`)
  and their adapters: FastAPI dependencies (:func:`require_auth`, …, also in
  :mod:`sessionauth.fastapi`) and Starlette decorators (:func:`login_required`, …, also in
  :mod:`sessionauth.starlette`).
* Users of the application's own: the :class:`UserSource` protocol (its users are
  :class:`AccountLike`), :class:`Guards` (the guards with ``user_id_type`` and ``login_url``)
  and :class:`CurrentUser` (the signed-in user's own object); see
  :mod:`sessionauth.auth.user_source`.
* :class:`TrustedProxyMiddleware` and :func:`client_address`, for the address the throttle
  counts behind a proxy.
* :class:`SingleUseTokens`: the links of account mail (verify an address, reset a password),
  each usable once; a consumed token gives a :class:`Claim`.
* :class:`AccountLifecycle`: sign-up, email verification and change, forgotten passwords,
  over an Authenticator and SingleUseTokens; it hands each mail to a :data:`Postbox` as a
  :class:`Letter`.
"""

from sessionauth.auth.authenticator import Authenticator
from sessionauth.auth.client_address import TrustedProxyMiddleware, client_address
from sessionauth.auth.current_user import CurrentUser, UserLookup
from sessionauth.auth.event_hub import EventHub
from sessionauth.auth.events import (
    AccountDisabled,
    AccountEnabled,
    AccountEvent,
    AuthEvent,
    EmailVerified,
    LoggedOut,
    LoginFailed,
    LoginSucceeded,
    LoginThrottled,
    PasswordChanged,
    PasswordChangeFailed,
    PasswordReset,
    RoleChanged,
    SessionRevoked,
    SessionsRevoked,
    UserCreated,
    UserDeleted,
)
from sessionauth.auth.guards import (
    check_auth,
    check_recent_auth,
    check_role,
    error_response,
    exception_handlers,
    login_required,
    recent_auth_required,
    require_auth,
    require_recent_auth,
    require_role,
    role_required,
    safe_next,
    session_of,
)
from sessionauth.auth.letters import Letter, Postbox
from sessionauth.auth.lifecycle import AccountLifecycle
from sessionauth.auth.logins import Login
from sessionauth.auth.passwords import PasswordHasher, PasswordPolicy
from sessionauth.auth.session_admin import SessionInfo, SessionListing
from sessionauth.auth.single_use import Claim, SingleUseTokens
from sessionauth.auth.throttle import Attempt, LoginThrottle
from sessionauth.auth.user_guards import Guards
from sessionauth.auth.user_source import AccountLike, UserSource
from sessionauth.stores.users import User, UserPage, UserStore, normalize_email

__all__ = [
    "AccountDisabled",
    "AccountEnabled",
    "AccountEvent",
    "AccountLifecycle",
    "AccountLike",
    "Attempt",
    "AuthEvent",
    "Authenticator",
    "Claim",
    "CurrentUser",
    "EmailVerified",
    "EventHub",
    "Guards",
    "Letter",
    "LoggedOut",
    "Login",
    "LoginFailed",
    "LoginSucceeded",
    "LoginThrottle",
    "LoginThrottled",
    "PasswordChangeFailed",
    "PasswordChanged",
    "PasswordHasher",
    "PasswordPolicy",
    "PasswordReset",
    "Postbox",
    "RoleChanged",
    "SessionInfo",
    "SessionListing",
    "SessionRevoked",
    "SessionsRevoked",
    "SingleUseTokens",
    "TrustedProxyMiddleware",
    "User",
    "UserCreated",
    "UserDeleted",
    "UserLookup",
    "UserPage",
    "UserSource",
    "UserStore",
    "check_auth",
    "check_recent_auth",
    "check_role",
    "client_address",
    "error_response",
    "exception_handlers",
    "login_required",
    "normalize_email",
    "recent_auth_required",
    "require_auth",
    "require_recent_auth",
    "require_role",
    "role_required",
    "safe_next",
    "session_of",
]
