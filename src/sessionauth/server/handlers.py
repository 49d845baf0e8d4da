"""The edge: domain exceptions become HTTP answers, always ``{"error": ...}`` on the API.

Browsers navigating (``Accept: text/html``, see :func:`~sessionauth.auth.guards.wants_html`)
get the friendly error page instead, and a missing login redirects them to the login page.
Nothing ever answers with a traceback: the last-resort handler logs the failure and answers a
bare 500 (the server logs the traceback itself, as Starlette re-raises to it).

Also here: the responders the middleware use when the session store is down or a request fails
the CSRF check, counted in the metrics, and :class:`BodyLimitMiddleware`, which bounds request
bodies before any handler reads them.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from http import HTTPStatus

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sessionauth.auth.guards import error_response, wants_html
from sessionauth.csrf import RejectResponder
from sessionauth.errors import (
    AdminLockout,
    AlreadyVerified,
    DuplicateUser,
    EmailNotVerified,
    FactorConflict,
    InvalidCode,
    InvalidCredentials,
    InvalidRole,
    InvalidToken,
    NotAuthenticated,
    PasswordPolicyError,
    PermissionDenied,
    SessionInTransit,
    SessionNotFound,
    StoreFull,
    StoreUnavailable,
    TooManyAttempts,
    UserNotFound,
)
from sessionauth.middleware import UnavailableResponder
from sessionauth.outages import OutageLog
from sessionauth.server.metrics import Metrics
from sessionauth.server.templating import html_csrf_reject, html_unavailable, render_error
from sessionauth.stores.users import InvalidEmail

__all__ = [
    "MAX_BODY",
    "BodyLimitMiddleware",
    "csrf_responder",
    "install_handlers",
    "outage_log",
    "unavailable_responder",
]

logger = logging.getLogger("sessionauth.server")

MAX_BODY = 64 * 1024
"""Largest request body accepted: every API body is a few hundred bytes."""

_PHRASES = {
    400: "Bad request",
    404: "Not found",
    405: "Method not allowed",
    413: "Request body too large",
    415: "Content-Type must be application/json",
}


def error(
    request: Request, status: int, message: str, headers: Mapping[str, str] | None = None
) -> Response:
    """Answer ``{"error": message}``, or the error page for a browser navigating."""
    if wants_html(request):
        return render_error(request, status, message, headers=dict(headers or {}))
    return JSONResponse({"error": message}, status_code=status, headers=headers)


def _validation_message(exc: RequestValidationError) -> str:
    problems = []
    for item in exc.errors()[:3]:
        if item.get("type") == "json_invalid":
            return "Invalid request: malformed JSON body"
        where = ".".join(str(part) for part in item.get("loc", ()) if part != "body")
        problems.append(f"{where}: {item.get('msg')}" if where else str(item.get("msg")))
    return "Invalid request: " + "; ".join(problems)


def _capitalised(exc: Exception) -> str:
    text = str(exc)
    return text[:1].upper() + text[1:]


def install_handlers(app: FastAPI, metrics: Metrics) -> None:
    """Register every exception handler of the reference server on ``app``."""

    async def guard(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, NotAuthenticated | PermissionDenied)  # noqa: S101 - registered so
        return error_response(request, exc)

    async def throttled(request: Request, exc: Exception) -> Response:
        retry = exc.retry_after if isinstance(exc, TooManyAttempts) else 60
        return error(
            request, 429, "Too many attempts, try again later", {"Retry-After": str(retry)}
        )

    async def unavailable(request: Request, exc: Exception) -> Response:
        retry = exc.retry_after if isinstance(exc, StoreUnavailable) else 1
        # One line per outage, not per request (see sessionauth.outages). A renewal in
        # transit is no failure of any store: neither counted nor logged.
        if isinstance(exc, StoreFull):
            metrics.store_errors.inc()
            request.app.state.full_store_log.failed(exc)
        elif not isinstance(exc, SessionInTransit):
            metrics.store_errors.inc()
            outage_log(request).failed(exc)
        return error(
            request,
            503,
            "Service temporarily unavailable, please retry",
            {"Retry-After": str(retry), "Cache-Control": "no-store"},
        )

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)  # noqa: S101 - registered so
        status = exc.status_code
        detail = exc.detail if isinstance(exc.detail, str) else None
        if detail is None or detail == _default_detail(status):
            detail = _PHRASES.get(status, detail or "Error")
        return error(request, status, detail, exc.headers)

    async def invalid(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)  # noqa: S101 - registered so
        return error(request, 400, _validation_message(exc))

    async def internal(request: Request, exc: Exception) -> Response:
        # Starlette re-raises to the server, which logs the traceback; this line says where.
        logger.error("unhandled %s in %s %s", type(exc).__name__, request.method, request.url.path)
        return error(request, 500, "Internal server error")

    def fixed(
        status: int, message: str | None
    ) -> Callable[[Request, Exception], Awaitable[Response]]:
        async def handler(request: Request, exc: Exception) -> Response:
            return error(request, status, message or _capitalised(exc))

        return handler

    app.add_exception_handler(NotAuthenticated, guard)
    app.add_exception_handler(PermissionDenied, guard)
    app.add_exception_handler(InvalidCredentials, fixed(401, "Invalid credentials"))
    app.add_exception_handler(EmailNotVerified, fixed(403, "Email not verified"))
    app.add_exception_handler(TooManyAttempts, throttled)
    app.add_exception_handler(StoreUnavailable, unavailable)
    app.add_exception_handler(UserNotFound, fixed(404, "User not found"))
    app.add_exception_handler(SessionNotFound, fixed(404, "Session not found"))
    app.add_exception_handler(DuplicateUser, fixed(409, "A user with that email already exists"))
    app.add_exception_handler(AdminLockout, fixed(409, None))
    app.add_exception_handler(InvalidRole, fixed(400, None))
    app.add_exception_handler(PasswordPolicyError, fixed(400, None))
    app.add_exception_handler(InvalidEmail, fixed(400, None))
    app.add_exception_handler(InvalidToken, fixed(400, "Invalid or expired link"))
    app.add_exception_handler(AlreadyVerified, fixed(409, "Email already verified"))
    app.add_exception_handler(InvalidCode, fixed(401, "Invalid code"))
    app.add_exception_handler(FactorConflict, fixed(409, None))
    app.add_exception_handler(RequestValidationError, invalid)
    app.add_exception_handler(HTTPException, http_error)
    app.add_exception_handler(Exception, internal)


def outage_log(request: Request) -> OutageLog:
    """The app's log of outages seen by routes (user database, counter, session store).

    A full store (``StoreFull``: reads work, writes fail) goes to ``app.state.full_store_log``
    instead, which only a quiet spell ends: a passing ``/readyz`` says nothing about writes.
    """
    found: OutageLog = request.app.state.outage_log
    return found


def _default_detail(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return ""


def unavailable_responder(metrics: Metrics) -> UnavailableResponder:
    """``SessionMiddleware(on_unavailable=...)``: JSON or the 503 page, counted."""

    def respond(scope: Scope, exc: StoreUnavailable) -> Response:
        if not isinstance(exc, SessionInTransit):  # a renewal in progress: the store is fine
            metrics.store_errors.inc()
        return html_unavailable(scope, exc)

    return respond


def csrf_responder(metrics: Metrics) -> RejectResponder:
    """``CSRFMiddleware(on_reject=...)``: JSON or the 403 page, counted by reason."""

    def respond(scope: Scope, reason: str) -> Response:
        metrics.csrf_rejections.labels(reason).inc()
        return html_csrf_reject(scope, reason)

    return respond


_TOO_LARGE = b'{"error":"Request body too large"}'


_HTTP1 = frozenset({"1.0", "1.1"})


class _TooLarge(HTTPException):
    def __init__(self) -> None:
        super().__init__(413, _PHRASES[413])


class BodyLimitMiddleware:
    """Refuses request bodies over ``max_body`` bytes with 413, before a handler buffers them.

    A declared ``Content-Length`` over the limit is refused at once; a chunked body is cut off
    when it crosses the limit (the handler reading it gets the 413 raised into it).

    Args:
        app: The ASGI application to wrap.
        max_body: The limit in bytes.
    """

    def __init__(self, app: ASGIApp, *, max_body: int = MAX_BODY):
        self.app = app
        self.max_body = max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one ASGI connection, bounding an HTTP request's body."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        # HTTP/1 without Transfer-Encoding: the body is the declared Content-Length (the
        # server delivers no more) or none at all (RFC 9112 §6.3). Such a request needs no
        # counting ``receive``: the one check below is the whole limit.
        bounded = scope.get("http_version") in _HTTP1
        for key, value in scope["headers"]:
            if key == b"content-length":
                if not value.isdigit():
                    bounded = False
                elif int(value) > self.max_body:
                    await send(
                        {
                            "type": "http.response.start",
                            "status": 413,
                            "headers": [(b"content-type", b"application/json")],
                        }
                    )
                    await send({"type": "http.response.body", "body": _TOO_LARGE})
                    return
            elif key == b"transfer-encoding":
                bounded = False
        if bounded:
            await self.app(scope, receive, send)
            return
        received = 0

        async def limited() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body:
                    raise _TooLarge
            return message

        await self.app(scope, limited, send)
