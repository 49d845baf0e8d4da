"""sessionauth: server-side session authentication for ASGI applications.

The browser holds an opaque, signed cookie; the server holds the session in a store (SQLite,
Redis, PostgreSQL, or memory for tests). See the README for a tour.

The public packages, each with a curated ``__all__``: this one (the middlewares, the
stores' entry points, the types their signatures name, every exception),
:mod:`sessionauth.auth` (passwords, users, the ``Authenticator``, throttling, guards,
events), :mod:`sessionauth.stores`, :mod:`sessionauth.backends`, and the framework adapters
:mod:`sessionauth.fastapi` and :mod:`sessionauth.starlette`.
"""

from importlib.machinery import EXTENSION_SUFFIXES as _EXTENSION_SUFFIXES

from sessionauth import middleware as _middleware
from sessionauth.backends import open_backend
from sessionauth.config import CookieConfig
from sessionauth.cors import TrustedCORSMiddleware
from sessionauth.csrf import CSRFMiddleware, csrf_token, verify_csrf_token
from sessionauth.errors import (
    AdminLockout,
    AlreadyVerified,
    AuthenticationError,
    ConfigurationError,
    CSRFError,
    DuplicateUser,
    EmailNotVerified,
    FactorConflict,
    FactorError,
    InvalidCode,
    InvalidCredentials,
    InvalidEmail,
    InvalidRole,
    InvalidToken,
    NotAuthenticated,
    PasskeyRejected,
    PasswordPolicyError,
    PermissionDenied,
    SecondFactorRequired,
    SessionAuthError,
    SessionExists,
    SessionInTransit,
    SessionNotFound,
    StaleLogin,
    StoreError,
    StoreFull,
    StoreMisconfigured,
    StoreUnavailable,
    TooManyAttempts,
    UserError,
    UserNotFound,
)
from sessionauth.middleware import SessionMiddleware
from sessionauth.policy import TimeoutPolicy
from sessionauth.principal import Principal, PrincipalChange
from sessionauth.record import RecordUpdate, SessionRecord
from sessionauth.session import Session
from sessionauth.stores import MemoryStore, SessionStore, open_store
from sessionauth.tokens import Keyring

__all__ = [
    "AdminLockout",
    "AlreadyVerified",
    "AuthenticationError",
    "CSRFError",
    "CSRFMiddleware",
    "ConfigurationError",
    "CookieConfig",
    "DuplicateUser",
    "EmailNotVerified",
    "FactorConflict",
    "FactorError",
    "InvalidCode",
    "InvalidCredentials",
    "InvalidEmail",
    "InvalidRole",
    "InvalidToken",
    "Keyring",
    "MemoryStore",
    "NotAuthenticated",
    "PasskeyRejected",
    "PasswordPolicyError",
    "PermissionDenied",
    "Principal",
    "PrincipalChange",
    "RecordUpdate",
    "SecondFactorRequired",
    "Session",
    "SessionAuthError",
    "SessionExists",
    "SessionInTransit",
    "SessionMiddleware",
    "SessionNotFound",
    "SessionRecord",
    "SessionStore",
    "StaleLogin",
    "StoreError",
    "StoreFull",
    "StoreMisconfigured",
    "StoreUnavailable",
    "TimeoutPolicy",
    "TooManyAttempts",
    "TrustedCORSMiddleware",
    "UserError",
    "UserNotFound",
    "compiled",
    "csrf_token",
    "open_backend",
    "open_store",
    "verify_csrf_token",
]

__version__ = "0.2.0.dev0"

compiled: bool = (_middleware.__file__ or "").endswith(tuple(_EXTENSION_SUFFIXES))
"""Whether the hot path runs compiled: mypyc extension modules built by ``make compiled``.

``False`` for the default install, which is pure Python; see the README's performance section.
"""
