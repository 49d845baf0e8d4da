"""sessionauth: server-side session authentication for ASGI applications.

The browser holds an opaque, signed cookie; the server holds the session in a store (SQLite,
Redis, PostgreSQL, or memory for tests). See the README for a tour.
"""

from sessionauth.config import CookieConfig
from sessionauth.errors import (
    AdminLockout,
    AuthenticationError,
    ConfigurationError,
    CSRFError,
    DuplicateUser,
    InvalidCredentials,
    InvalidEmail,
    InvalidRole,
    NotAuthenticated,
    PasswordPolicyError,
    PermissionDenied,
    SessionAuthError,
    SessionNotFound,
    StoreError,
    StoreFull,
    StoreUnavailable,
    TooManyAttempts,
    UserError,
    UserNotFound,
)
from sessionauth.middleware import SessionMiddleware
from sessionauth.policy import TimeoutPolicy
from sessionauth.record import RecordUpdate, SessionRecord
from sessionauth.session import Session
from sessionauth.stores import MemoryStore, SessionStore, open_store
from sessionauth.tokens import Keyring

__all__ = [
    "AdminLockout",
    "AuthenticationError",
    "CSRFError",
    "ConfigurationError",
    "CookieConfig",
    "DuplicateUser",
    "InvalidCredentials",
    "InvalidEmail",
    "InvalidRole",
    "Keyring",
    "MemoryStore",
    "NotAuthenticated",
    "PasswordPolicyError",
    "PermissionDenied",
    "RecordUpdate",
    "Session",
    "SessionAuthError",
    "SessionMiddleware",
    "SessionNotFound",
    "SessionRecord",
    "SessionStore",
    "StoreError",
    "StoreFull",
    "StoreUnavailable",
    "TimeoutPolicy",
    "TooManyAttempts",
    "UserError",
    "UserNotFound",
    "open_store",
]

__version__ = "0.1.0"
