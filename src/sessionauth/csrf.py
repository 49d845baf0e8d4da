"""Cross-site request forgery protection: the origin layer, then masked per-session tokens.

Every request with an unsafe method (anything but GET, HEAD, OPTIONS and TRACE) must first pass
the origin layer (:func:`sessionauth.origins.check_origin`: Fetch Metadata, ``Origin``,
``Referer``), which needs no session and so also protects the login form. A request that
carries a stored session or a pre-session cookie (:mod:`sessionauth.presession`) must then
present a token, in the ``CSRF-Token`` or ``X-CSRF-Token`` header or the ``csrf_token`` field of
a urlencoded or multipart form. Never from the query string
(it leaks into logs and Referers) nor a cookie (the browser attaches cookies to forged requests
too, which is the whole attack).

Tokens need no storage. The secret is ``HMAC(csrf subkey, session token)``
(:meth:`Session.bound_secret`): it dies with the session, changes when login regenerates the
token, and means nothing in another session. A client with no session (and about to store
none) gets a token bound to its pre-session cookie instead, so asking for a token stores
nothing; an anonymous session that starts storing values still accepts it while the cookie
lives. Each :func:`csrf_token` call hides it under a fresh
random mask (BREACH: a secret repeated byte for byte in compressed HTTPS responses can be
recovered; a masked token never repeats). Tokens minted under older keys keep verifying while
the keyring rotates.

**Exemption** (``exempt_paths``, ``exempt``) skips *both* layers, like Django's ``csrf_exempt``:
its legitimate users cannot pass the origin layer. Webhooks send neither ``Origin`` nor
``Referer``, and OAuth or SAML ``form_post`` callbacks are cross-site by design (trusting the
identity provider's origin instead would also grant it credentialed CORS). An exempt endpoint
must authenticate its requests itself (a signature, a ``state`` value).
"""

from __future__ import annotations

import base64
import hmac
import json
import logging
import secrets
from collections.abc import Callable, Iterable
from urllib.parse import parse_qsl

from starlette import formparsers
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sessionauth.errors import ConfigurationError, CSRFError
from sessionauth.origins import (
    REASON_BAD_ORIGIN,
    REASON_BAD_REFERER,
    REASON_CROSS_SITE,
    REASON_NO_REFERER,
    check_origin,
    single_header,
    validate_origins,
)
from sessionauth.session import Session
from sessionauth.tokens import Keyring

__all__ = [
    "REASON_BAD_ORIGIN",
    "REASON_BAD_REFERER",
    "REASON_BAD_TOKEN",
    "REASON_CROSS_SITE",
    "REASON_NO_REFERER",
    "REASON_NO_TOKEN",
    "CSRFMiddleware",
    "RejectResponder",
    "csrf_token",
    "json_reject",
    "verify_csrf_token",
]

# The origin layer's reasons live in sessionauth.origins and are re-exported here.
REASON_NO_TOKEN = "CSRF token missing"  # noqa: S105 - a reason, not a password
REASON_BAD_TOKEN = "CSRF token incorrect"  # noqa: S105 - a reason, not a password

Headers = list[tuple[bytes, bytes]]
RejectResponder = Callable[[Scope, str], tuple[int, Headers, bytes]]
"""Builds the (status, headers, body) sent when a request fails a check with a named reason."""

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
MAX_FORM_BODY = 1024 * 1024
PURPOSE = "csrf"
SECRET_BYTES = 32
TOKEN_LENGTH = 86  # base64url(mask || masked secret: 64 bytes), unpadded

logger = logging.getLogger("sessionauth.security")

_BASE64URL = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
_TOKEN_HEADERS = (b"csrf-token", b"x-csrf-token")
_FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")
_NO_STORE = (b"cache-control", b"no-store")
_JSON = (b"content-type", b"application/json")


def _xor(a: bytes, b: bytes) -> bytes:
    return bytes(x ^ y for x, y in zip(a, b, strict=True))


def csrf_token(session: Session, keyring: Keyring) -> str:
    """Return a freshly masked CSRF token for ``session``; hand one out with every page.

    A session that is stored, or will be (it holds values or a user), gets a token bound to its
    token. Any other gets one bound to its pre-session cookie, set with the response: asking
    for a token stores nothing.
    """
    key = keyring.subkeys(PURPOSE)[0]
    stored = session.will_be_stored
    secret = session.bound_secret(key) if stored else session.presession_secret(key)
    mask = secrets.token_bytes(SECRET_BYTES)
    return base64.urlsafe_b64encode(mask + _xor(mask, secret)).rstrip(b"=").decode("ascii")


def _decode(token: str) -> bytes | None:
    # Shape first: wrong length or alphabet costs no HMAC. Re-encoding refuses the variants
    # that differ only in the final character's unused bits.
    if len(token) != TOKEN_LENGTH:
        return None
    raw = token.encode("ascii", "replace")
    if not _BASE64URL.issuperset(raw):
        return None
    decoded = base64.urlsafe_b64decode(raw + b"==")
    if base64.urlsafe_b64encode(decoded).rstrip(b"=") != raw:
        return None
    return decoded


def verify_csrf_token(session: Session, keyring: Keyring, token: str) -> bool:
    """Return whether ``token`` was issued for ``session`` under any key of ``keyring``.

    A stored session's own tokens verify; so do tokens bound to the request's valid
    pre-session cookie while the session has no user (a login makes the session's tokens the
    only ones). Checking never stores anything: a forged token must not mint a session.
    """
    raw = _decode(token)
    if raw is None:
        return False
    candidate = _xor(raw[:SECRET_BYTES], raw[SECRET_BYTES:])
    presession = session.presession
    stored = session.will_be_stored
    matched = False
    for key in keyring.subkeys(PURPOSE):
        # Only a session something could be bound to: asking a fresh one would mint it a token.
        if stored:
            matched |= hmac.compare_digest(candidate, session.bound_secret(key))
        if presession is not None and session.user_id is None:
            pre = presession.secret(key, mint=False)
            matched |= pre is not None and hmac.compare_digest(candidate, pre)
    return matched


def json_reject(scope: Scope, reason: str) -> tuple[int, Headers, bytes]:
    """The default rejection: 403 ``{"error": "CSRF check failed", "reason": reason}``."""
    del scope
    body = json.dumps({"error": "CSRF check failed", "reason": reason}).encode()
    return 403, [_JSON, _NO_STORE], body


class _Abort(Exception):
    """Stop before the application: answer ``status``, or nothing if the client left."""

    def __init__(self, status: int | None):
        super().__init__(status)
        self.status = status


class CSRFMiddleware:
    """Refuses state-changing requests that fail the origin layer or the token check.

    Install it inside :class:`~sessionauth.middleware.SessionMiddleware`, which provides
    ``scope["session"]``. Safe methods and non-HTTP scopes pass untouched.

    Args:
        app: The ASGI application to wrap.
        keyring: The secrets tokens are derived under (the session middleware's keyring).
        trusted_origins: Other origins allowed to send unsafe requests; the same list as
            CORS. See :func:`~sessionauth.origins.validate_origins`.
        exempt_paths: Paths (``scope["path"]``, exact) that skip both layers.
        exempt: A predicate on the scope that exempts a request the same way.
        require_json: A predicate selecting JSON-only endpoints: their unsafe requests must be
            ``application/json`` (a cross-site form cannot send that without a CORS preflight)
            or have no body at all; others get 415.
        on_reject: Builds the rejection response from the scope and the reason (the default is
            403 JSON); use it to render an HTML page.
        max_form_body: Largest body buffered to read the ``csrf_token`` form field; a larger
            one gets 413 (clients uploading more send the token in a header).

    Raises:
        ConfigurationError: If a trusted origin is invalid or a wildcard.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        keyring: Keyring,
        trusted_origins: Iterable[str] = (),
        exempt_paths: Iterable[str] = (),
        exempt: Callable[[Scope], bool] | None = None,
        require_json: Callable[[Scope], bool] | None = None,
        on_reject: RejectResponder = json_reject,
        max_form_body: int = MAX_FORM_BODY,
    ):
        self.app = app
        self.keyring = keyring
        self.trusted_origins = validate_origins(trusted_origins)
        self.exempt_paths = frozenset(exempt_paths)
        self.exempt = exempt
        self.require_json = require_json
        self.on_reject = on_reject
        self.max_form_body = max_form_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one ASGI connection, checking unsafe HTTP requests first."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        session = scope.get("session")
        if not isinstance(session, Session):
            raise ConfigurationError("CSRFMiddleware must be installed inside SessionMiddleware")
        if (
            scope["method"] in SAFE_METHODS
            or scope["path"] in self.exempt_paths
            or (self.exempt is not None and self.exempt(scope))
        ):
            await self.app(scope, receive, send)
            return
        try:
            check_origin(scope, self.trusted_origins)
            if self.require_json is not None and self.require_json(scope) and not _is_json(scope):
                raise _Abort(415)  # noqa: TRY301 - one exit path for every early answer
            # Without a stored session or a pre-session cookie there is nothing to ride on but
            # a login, which the origin layer covers (a cookieless POST /login keeps working).
            # Once either exists the token is required: a valid cookie cannot be presented
            # without it, and a forged or expired one does not lift the requirement.
            presession = session.presession
            if not session.is_new or (presession is not None and presession.cookie_sent):
                receive = await self._check_token(scope, receive, session)
        except CSRFError as exc:
            _log(scope, exc.reason)
            status, headers, body = self.on_reject(scope, exc.reason)
            await _send(send, status, headers, body)
            return
        except _Abort as abort:
            if abort.status is not None:
                await _send(send, abort.status, [_JSON, _NO_STORE], _ERRORS[abort.status])
            return
        await self.app(scope, receive, send)

    async def _check_token(self, scope: Scope, receive: Receive, session: Session) -> Receive:
        """Verify the request's token; return the ``receive`` the application must use."""
        token = None
        for name in _TOKEN_HEADERS:
            token = single_header(scope, name, repeated="")
            if token is not None:
                break
        media_type = _media_type(scope)
        if token is None and media_type in _FORM_TYPES:
            body = await self._buffer(scope, receive)
            receive = _replay(body, receive)
            token = await _form_token(scope, media_type, body)
        if token is None:
            raise CSRFError(REASON_NO_TOKEN)
        if not verify_csrf_token(session, self.keyring, token):
            raise CSRFError(REASON_BAD_TOKEN)
        return receive

    async def _buffer(self, scope: Scope, receive: Receive) -> bytes:
        declared = single_header(scope, b"content-length", repeated="")
        if declared is not None and declared.isdigit() and int(declared) > self.max_form_body:
            raise _Abort(413)
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                raise _Abort(None)  # the client left
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_form_body:
                raise _Abort(413)
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)


_ERRORS = {
    413: b'{"error":"Request body too large"}',
    415: b'{"error":"Content-Type must be application/json"}',
}


def _log(scope: Scope, reason: str) -> None:
    # Never the token or the cookie; the origin is public and says who sent the request.
    client = scope.get("client")
    origin = single_header(scope, b"origin", repeated="(repeated)")
    address = client[0] if client else None
    logger.warning(
        "CSRF check failed: %s (method=%s path=%r origin=%r client=%s)",
        reason,
        scope["method"],
        scope["path"],
        origin,
        address,
        extra={
            "event": "csrf_rejected",
            "reason": reason,
            "method": scope["method"],
            "path": scope["path"],
            "origin": origin,
            "address": address,
        },
    )


def _media_type(scope: Scope) -> str:
    value = single_header(scope, b"content-type", repeated="") or ""
    return value.split(";", 1)[0].strip().lower()


def _is_json(scope: Scope) -> bool:
    if single_header(scope, b"content-type", repeated="") is not None:
        return _media_type(scope) == "application/json"
    # No content type passes only without a body (a plain DELETE).
    length = single_header(scope, b"content-length", repeated="")
    te = single_header(scope, b"transfer-encoding", repeated="")
    return te is None and length in (None, "0")


def _replay(body: bytes, receive: Receive) -> Receive:
    """Return a ``receive`` that yields the buffered body once, then defers to ``receive``."""
    pending = True

    async def replay() -> Message:
        nonlocal pending
        if pending:
            pending = False
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


async def _disconnected() -> Message:
    return {"type": "http.disconnect"}


async def _form_token(scope: Scope, media_type: str, body: bytes) -> str | None:
    """Return the ``csrf_token`` field of a buffered form body, or ``None``.

    Whatever a parser quirk yields here must still be a valid token, so a disagreement with the
    application's own parser cannot let a forged request through.
    """
    if media_type == "application/x-www-form-urlencoded":
        try:
            fields = parse_qsl(body.decode("latin-1"), max_num_fields=1000)
        except ValueError:  # too many fields
            return None
        return next((value for name, value in fields if name == "csrf_token"), None)
    # Starlette parses multipart with python-multipart, which any app taking such forms has.
    if getattr(formparsers, "parse_options_header", None) is None:  # pragma: no cover
        return None
    request = Request(scope, _replay(body, _disconnected))
    try:
        async with request.form(max_files=100, max_fields=1000) as form:
            value = form.get("csrf_token")
            return value if isinstance(value, str) else None
    except (formparsers.MultiPartException, HTTPException):
        return None


async def _send(send: Send, status: int, headers: Headers, body: bytes) -> None:
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
