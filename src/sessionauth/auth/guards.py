"""Route guards: authentication, roles and recent authentication, for FastAPI and Starlette.

The checks are framework-free functions of the session (:func:`check_auth`, :func:`check_role`,
:func:`check_recent_auth`) raising :class:`~sessionauth.errors.NotAuthenticated` or
:class:`~sessionauth.errors.PermissionDenied`. Two thin adapters sit on top:

* FastAPI dependencies: ``Depends(require_auth)``, ``Depends(require_role("admin"))``,
  ``Depends(require_recent_auth(300))``; register :data:`exception_handlers` on the app so the
  exceptions become the tutorial's answers.
* Starlette decorators: ``@login_required``, ``@role_required("admin")``,
  ``@recent_auth_required(300)`` on endpoint functions.

Answers are exactly the tutorial's for API clients: 401 ``{"error":"Authentication required"}``
and 403 ``{"error":"Insufficient permissions"}``. A browser navigation (``Accept: text/html``)
that needs a login is redirected to ``/login?next=...`` instead; only a same-site relative
``next`` is ever honoured (:func:`safe_next`), so the login page cannot become an open redirect.

Rights come only from the session's principal (:attr:`Session.principal
<sessionauth.session.Session.principal>`), which the store reads with the session in the same
command, so it is always current (a demotion or a disable applies to the next request) and
guarding a route costs no user-store query. Nothing the application writes into the session's
values can grant a role. A session bound with ``session.set_user()`` without the Authenticator
has no principal: it is authenticated, with no role.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any
from urllib.parse import quote, unquote, urlsplit

from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.types import Scope

from sessionauth.errors import (
    EmailNotVerified,
    FactorConflict,
    InvalidCode,
    InvalidCredentials,
    NotAuthenticated,
    PasskeyRejected,
    PermissionDenied,
    SecondFactorRequired,
    StoreUnavailable,
    TooManyAttempts,
)
from sessionauth.middleware import json_unavailable
from sessionauth.policy import Clock, system_clock
from sessionauth.session import Session

__all__ = [
    "check_auth",
    "check_recent_auth",
    "check_role",
    "error_response",
    "exception_handlers",
    "login_required",
    "recent_auth_required",
    "refusal_handlers",
    "refusal_response",
    "require_auth",
    "require_recent_auth",
    "require_role",
    "role_required",
    "safe_next",
    "session_in_scope",
    "session_of",
]

AUTH_REQUIRED = "Authentication required"
INSUFFICIENT = "Insufficient permissions"
RECENT_AUTH_REQUIRED = "Recent authentication required"
INVALID_CREDENTIALS = "Invalid credentials"
TOO_MANY_ATTEMPTS = "Too many attempts"
# What the exception handlers answer (subclasses too: StoreFull is a StoreUnavailable).
HANDLED = (
    NotAuthenticated,
    PermissionDenied,
    InvalidCredentials,
    EmailNotVerified,
    TooManyAttempts,
    StoreUnavailable,
    SecondFactorRequired,
    InvalidCode,
    FactorConflict,
    PasskeyRejected,
)
# How many layers of percent-encoding safe_next peels before refusing a ``next`` outright.
_MAX_DECODES = 3

Endpoint = Callable[[Request], Awaitable[Response]]

logger = logging.getLogger("sessionauth.store")


def session_of(request: Request) -> Session:
    """Return the request's session.

    Raises:
        TypeError: If no ``SessionMiddleware`` wraps the app.
    """
    return session_in_scope(request.scope)


def session_in_scope(scope: Scope) -> Session:
    """Return the session ``SessionMiddleware`` put in an ASGI ``scope`` (no ``Request`` needed).

    Raises:
        TypeError: If no ``SessionMiddleware`` wraps the app.
    """
    session = scope.get("session")
    if not isinstance(session, Session):
        raise TypeError("sessionauth guards need SessionMiddleware installed around the app")
    return session


def check_auth(session: Session) -> str:
    """Return the session's user id.

    Raises:
        NotAuthenticated: If the session is anonymous, or its principal is disabled.
    """
    user_id = session.user_id
    if user_id is None:
        raise NotAuthenticated(AUTH_REQUIRED)
    principal = session.principal
    if principal is not None and principal.disabled:
        raise NotAuthenticated(AUTH_REQUIRED)
    return user_id


def check_role(session: Session, roles: frozenset[str]) -> str:
    """Return the user id if the principal's role is one of ``roles``.

    Raises:
        NotAuthenticated: If the session is anonymous, or its principal is disabled.
        PermissionDenied: If the role is not allowed, or the session has no principal.
    """
    user_id = check_auth(session)
    principal = session.principal
    if principal is None or principal.role not in roles:
        raise PermissionDenied(INSUFFICIENT)
    return user_id


def check_recent_auth(session: Session, max_age: float, clock: Clock = system_clock) -> str:
    """Return the user id if the user authenticated within ``max_age`` seconds.

    Raises:
        NotAuthenticated: If the session is anonymous.
        PermissionDenied: If the last authentication is older than ``max_age``.
    """
    user_id = check_auth(session)
    auth_time = session.meta.get("auth")
    if not isinstance(auth_time, int | float) or clock() - auth_time > max_age:
        raise PermissionDenied(RECENT_AUTH_REQUIRED)
    return user_id


# -- FastAPI dependencies -------------------------------------------------------------------


async def require_auth(request: Request) -> str:
    """FastAPI dependency: the authenticated user's id, or 401."""
    return check_auth(session_of(request))


def require_role(*roles: str) -> Callable[[Request], Awaitable[str]]:
    """FastAPI dependency factory: the user id if the principal's role is one of ``roles``."""
    allowed = frozenset(roles)

    async def dependency(request: Request) -> str:
        return check_role(session_of(request), allowed)

    return dependency


def require_recent_auth(
    max_age: float, *, clock: Clock = system_clock
) -> Callable[[Request], Awaitable[str]]:
    """FastAPI dependency factory: the user id if they logged in within ``max_age`` seconds."""

    async def dependency(request: Request) -> str:
        return check_recent_auth(session_of(request), max_age, clock)

    return dependency


# -- answers --------------------------------------------------------------------------------


def safe_next(value: str | None, default: str = "/") -> str:
    r"""Return ``value`` if it is a same-site relative path, else ``default``.

    Refuses absolute URLs, scheme-relative ``//host`` and ``/\\host`` (browsers read a
    backslash as a slash), and anything with control characters. The same checks apply to the
    percent-decoded forms too (``/%2F%2Fhost``, ``/%0d%0a…``): a login page or proxy that
    decodes ``next`` once more before redirecting must not turn it into another site or a
    header break.
    """
    if not value:
        return default
    forms = [value]
    while (step := unquote(forms[-1])) != forms[-1]:
        if len(forms) > _MAX_DECODES:  # nested deeper than any honest link; bounds the work
            return default
        forms.append(step)
    for form in forms:
        if not form.startswith("/") or form.startswith(("//", "/\\")) or "\\" in form:
            return default
        if any(ord(char) < 0x20 or ord(char) == 0x7F for char in form):
            return default
        parts = urlsplit(form)
        if parts.scheme or parts.netloc:
            return default
    return value


def wants_html(request: Request) -> bool:
    """Whether the client is a browser navigating (asks for HTML rather than JSON)."""
    accept = request.headers.get("accept", "")
    return "text/html" in accept and "application/json" not in accept


def error_response(
    request: Request, exc: NotAuthenticated | PermissionDenied, *, login_url: str = "/login"
) -> Response:
    """The answer to a failed guard: the tutorial's JSON, or a login redirect for browsers.

    Args:
        request: The refused request.
        exc: Why it was refused.
        login_url: The login page a browser is sent to, with ``next`` (the refused path)
            added to its query.
    """
    if isinstance(exc, NotAuthenticated):
        if wants_html(request):
            target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            joiner = "&" if "?" in login_url else "?"
            next_ = quote(safe_next(target), safe="")
            return RedirectResponse(f"{login_url}{joiner}next={next_}", 303)
        return JSONResponse({"error": AUTH_REQUIRED}, status_code=401)
    message = str(exc) if str(exc) == RECENT_AUTH_REQUIRED else INSUFFICIENT
    return JSONResponse({"error": message}, status_code=403)


def refusal_response(request: Request, exc: Exception, *, login_url: str = "/login") -> Response:
    """The answer to every error the library raises into a route, as ``{"error": ...}``.

    * :class:`~sessionauth.errors.NotAuthenticated`, :class:`~sessionauth.errors.PermissionDenied`:
      as :func:`error_response` (401 or a login redirect, 403);
    * :class:`~sessionauth.errors.InvalidCredentials`: 401 ``{"error": "Invalid credentials"}``;
    * :class:`~sessionauth.errors.TooManyAttempts`: 429 ``{"error": "Too many attempts"}`` with
      ``Retry-After``;
    * :class:`~sessionauth.errors.StoreUnavailable` (a session, attempt or user store, or a
      user source, that cannot answer): the middleware's 503 ``{"error": "Service temporarily
      unavailable, please retry"}`` with ``Retry-After``;
    * :class:`~sessionauth.errors.EmailNotVerified`: 403 ``{"error": "Email not verified"}``;
    * second factors: :class:`~sessionauth.errors.SecondFactorRequired` 401 ``{"error":
      "Second factor required", "mfaRequired": true, "methods": [...]}``,
      :class:`~sessionauth.errors.InvalidCode` 401 ``{"error": "Invalid code"}``,
      :class:`~sessionauth.errors.FactorConflict` 409 with its message,
      :class:`~sessionauth.errors.PasskeyRejected` 400 ``{"error": "Invalid passkey"}``.

    Raises:
        Exception: ``exc`` itself, if it is none of these.
    """
    if isinstance(exc, NotAuthenticated | PermissionDenied):
        return error_response(request, exc, login_url=login_url)
    if isinstance(exc, InvalidCredentials):
        return JSONResponse({"error": INVALID_CREDENTIALS}, status_code=401)
    if isinstance(exc, TooManyAttempts):
        headers = {"Retry-After": str(exc.retry_after)}
        return JSONResponse({"error": TOO_MANY_ATTEMPTS}, status_code=429, headers=headers)
    if isinstance(exc, StoreUnavailable):
        # The outage itself is logged by whoever saw it fail; one traceback per request is noise.
        logger.debug("store unavailable in a route", exc_info=exc)
        return json_unavailable(request.scope, exc)
    if isinstance(exc, EmailNotVerified):
        return JSONResponse({"error": "Email not verified"}, status_code=403)
    if isinstance(exc, SecondFactorRequired):
        body = {"error": "Second factor required", "mfaRequired": True, "methods": exc.methods}
        return JSONResponse(body, status_code=401)
    if isinstance(exc, InvalidCode):
        return JSONResponse({"error": "Invalid code"}, status_code=401)
    if isinstance(exc, FactorConflict):
        message = str(exc)
        return JSONResponse({"error": message[:1].upper() + message[1:]}, status_code=409)
    if isinstance(exc, PasskeyRejected):
        return JSONResponse({"error": "Invalid passkey"}, status_code=400)
    raise exc


def refusal_handlers(
    login_url: str = "/login",
) -> dict[Any, Callable[[Request, Any], Coroutine[Any, Any, Response]]]:
    """The exception handlers answering as :func:`refusal_response`, for one login page."""

    async def handle(request: Request, exc: Exception) -> Response:
        return refusal_response(request, exc, login_url=login_url)

    return dict.fromkeys(HANDLED, handle)


# Typed as FastAPI's parameter wants it (a dict is invariant in its values); Starlette's
# Mapping of handlers accepts the same value type.
exception_handlers: dict[Any, Callable[[Request, Any], Coroutine[Any, Any, Response]]] = (
    refusal_handlers()
)
"""Register on a FastAPI or Starlette app: ``FastAPI(exception_handlers=exception_handlers)``.

Answers the guards' refusals, failed logins and store outages raised in routes and
dependencies (see :func:`refusal_response`), so routes need no ``try``/``except`` for them.
"""


# -- Starlette decorators -------------------------------------------------------------------


def _guarded(check: Callable[[Session], object]) -> Callable[[Endpoint], Endpoint]:
    def decorate(endpoint: Endpoint) -> Endpoint:
        @functools.wraps(endpoint)
        async def guarded(request: Request) -> Response:
            try:
                check(session_of(request))
            except (NotAuthenticated, PermissionDenied) as exc:
                return error_response(request, exc)
            return await endpoint(request)

        return guarded

    return decorate


login_required: Callable[[Endpoint], Endpoint] = _guarded(check_auth)
"""Starlette decorator: 401 (or a login redirect) unless the session is authenticated."""


def role_required(*roles: str) -> Callable[[Endpoint], Endpoint]:
    """Starlette decorator: 403 unless the principal's role is one of ``roles``."""
    allowed = frozenset(roles)
    return _guarded(lambda session: check_role(session, allowed))


def recent_auth_required(
    max_age: float, *, clock: Clock = system_clock
) -> Callable[[Endpoint], Endpoint]:
    """Starlette decorator: 403 unless the user authenticated within ``max_age`` seconds."""
    return _guarded(lambda session: check_recent_auth(session, max_age, clock))
