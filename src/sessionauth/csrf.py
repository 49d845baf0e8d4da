"""Cross-site request forgery protection: the origin layer, then masked per-session tokens.

Every request with an unsafe method (anything but GET, HEAD, OPTIONS and TRACE) must first pass
the origin layer (:func:`check_origin`: Fetch Metadata, ``Origin``, ``Referer``), which needs
no session and so also protects the login form. A request that
carries a stored session or a pre-session cookie (:mod:`sessionauth.presession`) must then
present a token, in the ``CSRF-Token`` or ``X-CSRF-Token`` header or the ``csrf_token`` field of
a urlencoded or multipart form. Never from the query string
(it leaks into logs and Referers) nor a cookie (the browser attaches cookies to forged requests
too, which is the whole attack).

Tokens need no storage. The secret is ``HMAC(csrf subkey, seed)``, the seed a random value in
the session's record (:meth:`Session.bound_secret`): it dies with the session, changes at login
and regeneration, survives a renewal (so open forms still post), and means nothing in another
session. A client with no session (and about to store
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

A refusal names its reason, one of the ``REASON_*`` constants (as in Django): the default
response is 403 ``{"error": "CSRF check failed", "reason": ...}``, the
``sessionauth.security`` log says it, and ``on_reject`` receives it.
"""

from __future__ import annotations

import base64
import hmac
import logging
import secrets
from collections.abc import Callable, Iterable

from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from sessionauth.csrf_body import (
    FORM_TYPES,
    BodyRefused,
    buffer_body,
    form_token,
    is_json,
    media_type,
    replay,
)
from sessionauth.errors import ConfigurationError, CSRFError
from sessionauth.origins import (
    normalize_origin,
    referer_origin,
    request_origin,
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
    "check_origin",
    "csrf_token",
    "json_reject",
    "verify_csrf_token",
]

# Why a request was refused: the origin layer's four reasons, then the token's two.
REASON_CROSS_SITE = "cross-site request"
REASON_BAD_ORIGIN = "origin not trusted"
REASON_BAD_REFERER = "referer not trusted"
REASON_NO_REFERER = "no origin or referer"
REASON_NO_TOKEN = "CSRF token missing"  # noqa: S105 - a reason, not a password
REASON_BAD_TOKEN = "CSRF token incorrect"  # noqa: S105 - a reason, not a password

RejectResponder = Callable[[Scope, str], Response]
"""Builds the response sent when a request fails a check, from the scope and the reason."""

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
MAX_FORM_BODY = 1024 * 1024
PURPOSE = "csrf"
SECRET_BYTES = 32
TOKEN_LENGTH = 86  # base64url(mask || masked secret: 64 bytes), unpadded

logger = logging.getLogger("sessionauth.security")

_BASE64URL = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
_TOKEN_HEADERS = (b"csrf-token", b"x-csrf-token")
_NO_STORE = {"Cache-Control": "no-store"}


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


def check_origin(scope: Scope, trusted_origins: frozenset[str]) -> None:
    """Run the origin layer on an unsafe request.

    It runs on every unsafe request, session or not, so it also guards the login form against
    login CSRF:

    * An ``Origin`` that is exactly a trusted origin passes, whatever ``Sec-Fetch-Site`` says:
      trusting it is the operator's explicit decision, and the same list already grants it CORS, so
      refusing its request after a successful preflight would only break it (a front end on another
      site says ``cross-site``, one on a sibling subdomain ``same-site``).
    * Otherwise ``Sec-Fetch-Site: cross-site`` is refused outright.
    * Otherwise ``Origin``, or failing that ``Referer``, must name this site (the request's scheme
      and ``Host``) or a trusted origin. When the browser says ``same-site`` (a sibling subdomain)
      only a trusted origin passes: subdomains are often less guarded, and a taken-over one must not
      act as the user.
    * With neither header, ``same-origin`` and ``none`` (typed or bookmarked by the user) pass:
      pages cannot forge Fetch Metadata. Anything else is refused over HTTPS, as in Django: browsers
      send ``Origin`` on unsafe requests, and a page that suppresses both is up to something. Plain
      HTTP lets it pass (development, where proxies strip headers freely).

    Args:
        scope: The request.
        trusted_origins: Normalised foreign origins allowed (see
            :func:`~sessionauth.origins.validate_origins`).

    Raises:
        CSRFError: With the named reason the request is refused.
    """
    # ``null`` and anything unparsable normalise to None, which is never allowed.
    origin = single_header(scope, b"origin", repeated="null")
    if origin is not None and normalize_origin(origin) in trusted_origins:
        return
    site = single_header(scope, b"sec-fetch-site", repeated="cross-site")
    if site == "cross-site":
        raise CSRFError(REASON_CROSS_SITE)
    # A same-site request comes from a sibling origin, never this one: only a trusted one passes.
    own = None if site == "same-site" else request_origin(scope)
    allowed = trusted_origins if own is None else trusted_origins | {own}
    if origin is not None:
        if normalize_origin(origin) not in allowed:
            raise CSRFError(REASON_BAD_ORIGIN)
        return
    referer = single_header(scope, b"referer", repeated="")
    if referer is not None:
        if referer_origin(referer) not in allowed:
            raise CSRFError(REASON_BAD_REFERER)
        return
    if site not in ("same-origin", "none") and (
        site == "same-site" or scope.get("scheme") == "https"
    ):
        raise CSRFError(REASON_NO_REFERER)


def json_reject(scope: Scope, reason: str) -> Response:
    """The default rejection: 403 ``{"error": "CSRF check failed", "reason": reason}``."""
    del scope
    return JSONResponse({"error": "CSRF check failed", "reason": reason}, 403, headers=_NO_STORE)


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
            if self.require_json is not None and self.require_json(scope) and not is_json(scope):
                raise BodyRefused(415)  # noqa: TRY301 - one exit path for every early answer
            # Without a stored session or a pre-session cookie there is nothing to ride on but
            # a login, which the origin layer covers (a cookieless POST /login keeps working).
            # Once either exists the token is required: a valid cookie cannot be presented
            # without it, and a forged or expired one does not lift the requirement.
            presession = session.presession
            if not session.is_new or (presession is not None and presession.cookie_sent):
                receive = await self._check_token(scope, receive, session)
        except CSRFError as exc:
            _log(scope, exc.reason)
            await self.on_reject(scope, exc.reason)(scope, receive, send)
            return
        except BodyRefused as refused:
            if refused.status is not None:
                answer = {"error": _ERRORS[refused.status]}
                await JSONResponse(answer, refused.status, headers=_NO_STORE)(scope, receive, send)
            return
        await self.app(scope, receive, send)

    async def _check_token(self, scope: Scope, receive: Receive, session: Session) -> Receive:
        """Verify the request's token; return the ``receive`` the application must use."""
        token = None
        for name in _TOKEN_HEADERS:
            token = single_header(scope, name, repeated="")
            if token is not None:
                break
        media = media_type(scope)
        if token is None and media in FORM_TYPES:
            body = await buffer_body(scope, receive, self.max_form_body)
            receive = replay(body, receive)
            token = await form_token(scope, media, body)
        if token is None:
            raise CSRFError(REASON_NO_TOKEN)
        if not verify_csrf_token(session, self.keyring, token):
            raise CSRFError(REASON_BAD_TOKEN)
        return receive


_ERRORS = {413: "Request body too large", 415: "Content-Type must be application/json"}


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
