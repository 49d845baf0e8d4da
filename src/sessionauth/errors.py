"""The exceptions sessionauth raises, in one tree.

Domain code raises these; only the edge (the middleware, the reference server) maps them to
HTTP status codes. Catch the most specific class you can handle::

    SessionAuthError
    ├── ConfigurationError          settings that are unsafe or inconsistent (raised at start-up)
    ├── StoreError
    │   ├── StoreUnavailable        the backend did not answer in time or refused: HTTP 503
    │   │   ├── StoreFull           the backend is out of memory or disk: writes fail (503),
    │   │   │                       reads still work, so a mere touch can be skipped
    │   │   └── StoreMisconfigured  the backend answers but refuses the URL's settings (a
    │   │                           Redis database it lacks, a login PostgreSQL refuses):
    │   │                           503 per request, and a refused start-up
    │   ├── SessionExists           ``create`` under the id of a live session (a bug or a
    │   │                           token collision; never overwritten)
    │   └── StaleLogin              the user's principal changed (or went) while a login ran:
    │                               its session is not stored
    ├── AuthenticationError
    │   ├── NotAuthenticated        the request has no authenticated session: HTTP 401
    │   ├── InvalidCredentials      unknown email, wrong password or disabled account: HTTP 401
    │   ├── EmailNotVerified        right password, but verified emails are required and the
    │   │                           account's is not: HTTP 403
    │   ├── PasswordPolicyError     a password too short, too long or otherwise refused: HTTP 400
    │   ├── InvalidToken            a mailed link's token that proves nothing (malformed,
    │   │                           unknown, used, expired, another purpose or user): HTTP 400
    │   └── TooManyAttempts         login (or mail) throttled; carries ``retry_after``: HTTP 429
    ├── FactorError                 a second factor (TOTP, recovery code, passkey) refused:
    │   ├── InvalidCode             a wrong, expired or replayed code, or a failed passkey
    │   │                           assertion: HTTP 401 (400 while enrolling)
    │   ├── FactorConflict          the factor is not in the state the step needs (set up
    │   │                           twice, confirmed without a setup, disabled when off): 409
    │   └── PasskeyRejected         a passkey registration the server cannot accept: HTTP 400
    ├── PermissionDenied            authenticated but not allowed: HTTP 403
    ├── CSRFError                   a state-changing request failed the origin or token check;
    │                               carries a named ``reason``: HTTP 403
    ├── SessionNotFound             no live session with that handle (for this user): HTTP 404
    └── UserError
        ├── InvalidEmail            a string that cannot be a usable email address: HTTP 400
        ├── UserNotFound            no such user: HTTP 404
        ├── DuplicateUser           the email is taken: HTTP 409
        ├── AdminLockout            the change would leave no enabled administrator, or an
        │                           administrator would demote, disable or delete itself: 409
        ├── AlreadyVerified         a verification asked for an address already confirmed: 409
        └── InvalidRole             a role outside the configured set: HTTP 400
"""

from __future__ import annotations

__all__ = [
    "AdminLockout",
    "AlreadyVerified",
    "AuthenticationError",
    "CSRFError",
    "ConfigurationError",
    "DuplicateUser",
    "EmailNotVerified",
    "FactorConflict",
    "FactorError",
    "InvalidCode",
    "InvalidCredentials",
    "InvalidEmail",
    "InvalidRole",
    "InvalidToken",
    "NotAuthenticated",
    "PasskeyRejected",
    "PasswordPolicyError",
    "PermissionDenied",
    "SecondFactorRequired",
    "SessionAuthError",
    "SessionExists",
    "SessionInTransit",
    "SessionNotFound",
    "StaleLogin",
    "StoreError",
    "StoreFull",
    "StoreMisconfigured",
    "StoreUnavailable",
    "TooManyAttempts",
    "UserError",
    "UserNotFound",
]


class SessionAuthError(Exception):
    """Base class of every exception sessionauth raises on purpose."""


class ConfigurationError(SessionAuthError, ValueError):
    """Settings that are unsafe or inconsistent; the message says how to fix them."""


class StoreError(SessionAuthError):
    """A session or user store failed."""


class StoreUnavailable(StoreError):
    """The backend is down, unreachable or too slow; the request must fail closed (HTTP 503).

    Attributes:
        retry_after: Seconds a client should wait before retrying.
    """

    def __init__(self, message: str = "session store unavailable", *, retry_after: int = 1):
        super().__init__(message)
        self.retry_after = retry_after


class StoreMisconfigured(StoreUnavailable):
    """The backend answers, but refuses what its URL asks for; waiting will not help.

    Redis's ``DB index is out of range`` or a refused password; PostgreSQL refusing the login,
    the database or a connection setting. A request still gets HTTP 503 (the edge never answers
    500 for a deployment's mistake), but ``sessionauth serve`` and ``sessionauth check`` refuse
    it, where a store that is merely unreachable only delays service.
    """


class SessionInTransit(StoreUnavailable):
    """A write reached a session that a renewal is moving to a new record; retry it (HTTP 503).

    The request carried a cookie a renewal replaced, and the renewed record was not stored
    yet (:mod:`sessionauth.forwards`): the write is refused rather than lost. The store is
    fine, so this is no outage and the outage log does not count it.
    """

    def __init__(self) -> None:
        super().__init__("the session was being renewed: retry the request")


class StoreFull(StoreUnavailable):
    """The backend refused a write for lack of room (memory, disk or a size limit).

    Redis at ``maxmemory`` with ``noeviction``, PostgreSQL's SQLSTATE class 53, a SQLite
    database that is full. Reads still work. A write that matters (a login, a change) still
    fails with HTTP 503; one that can wait (extending an idle deadline) may be skipped.
    """


class SessionExists(StoreError):
    """``create`` was asked to store a record under the id of a live session.

    Ids are digests of fresh random tokens, so this means a bug (or a broken random source),
    never a normal race; the live session is left as it was.
    """


class StaleLogin(StoreError):
    """A login's session was not stored: the user's principal changed while it ran.

    The epoch the login read before verifying the password is no longer the principal's (a
    password change, disable, delete or revocation happened meanwhile), or the principal is
    gone or disabled. The login reads the account again, once, and the result decides.
    """


class AuthenticationError(SessionAuthError):
    """Authentication failed."""


class NotAuthenticated(AuthenticationError):
    """The request needs an authenticated session and has none."""


class InvalidCredentials(AuthenticationError):
    """Unknown email, wrong password or disabled account, deliberately indistinguishable."""


class EmailNotVerified(AuthenticationError):
    """The password was right, but logins need a confirmed email and this account's is not.

    Raised only after the password was judged right, so it tells nothing to someone who does
    not already hold the password.
    """


class PasswordPolicyError(AuthenticationError, ValueError):
    """A password that the policy refuses (length, emptiness); checked before any hashing."""


class InvalidToken(AuthenticationError, ValueError):
    """A token from a mailed link that proves nothing, for whichever reason (never said which).

    Malformed, unknown, already used, expired, issued for another purpose or another user, or
    issued before the account's password or address changed.
    """


class TooManyAttempts(AuthenticationError):
    """Too many failed logins for an account or a client address.

    Attributes:
        retry_after: Seconds until the next attempt is allowed.
    """

    def __init__(self, retry_after: int):
        super().__init__(f"too many attempts, retry in {retry_after} s")
        self.retry_after = retry_after


class FactorError(SessionAuthError):
    """A second factor was refused (see the subclasses)."""


class SecondFactorRequired(FactorError):
    """A login of an account with a second factor, without its second step.

    ``Authenticator.login`` refuses to store its session: hold the login and ask for the code.

    Raised only after the password was judged right, so it tells nothing to someone who does
    not know it.

    Attributes:
        methods: The second factors the account can complete the login with.
    """

    def __init__(self, methods: list[str]):
        super().__init__("second factor required")
        self.methods = methods


class InvalidCode(FactorError):
    """A TOTP or recovery code that is wrong, expired or used already; a failed passkey login.

    The message never says which: a guesser learns only "no".
    """


class FactorConflict(FactorError):
    """The factor is not in the state this step needs (e.g. TOTP set up while enabled)."""


class PasskeyRejected(FactorError, ValueError):
    """A passkey registration that fails verification or the server's requirements."""


class PermissionDenied(SessionAuthError):
    """The user is authenticated but lacks the role or the recent authentication required."""


class CSRFError(SessionAuthError):
    """A state-changing request failed the origin layer or the CSRF token check.

    Attributes:
        reason: One of the named reasons in :mod:`sessionauth.csrf`.
    """

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class SessionNotFound(SessionAuthError, LookupError):
    """No live session with that handle belongs to the user asking."""


class UserError(SessionAuthError):
    """A user-store operation could not be carried out."""


class InvalidEmail(UserError, ValueError):
    """A string that cannot be a usable email address (see ``auth.users.normalize_email``)."""


class UserNotFound(UserError, LookupError):
    """No user with that id or email."""


class DuplicateUser(UserError):
    """A user with that (normalised) email already exists."""


class AdminLockout(UserError):
    """A change that would lock the administrators out, refused.

    Either it would leave no enabled administrator (demoting, disabling or deleting the last
    one), or an administrator asked it of their own account through the API.
    """


class AlreadyVerified(UserError):
    """The account's address is confirmed already: there is nothing to verify."""


class InvalidRole(UserError, ValueError):
    """A role outside the configured set of roles."""
