"""Origins: strict parsing, the one trusted-origins list, the CSRF origin layer, and CORS.

An origin is ``scheme://host[:port]``: lower-case scheme and host, no default port, nothing
else. The same normalised list decides two things, so they can never disagree:

* which foreign origins pass the CSRF origin layer (:mod:`sessionauth.csrf`), and
* which origins CORS lets read responses with credentials (:class:`TrustedCORSMiddleware`).

Matching is exact string equality after normalisation. There are no wildcards, suffix or prefix
matches: ``https://example.com.evil.com`` is not ``https://example.com``, ``http://`` is not
``https://``, another port is another origin, and the opaque origin ``null`` (sandboxed
frames, ``data:`` URLs, some redirects) matches nothing, because anyone can produce it.

The origin layer (:func:`check_origin`) runs on every unsafe request, session or not, so it also
guards the login form against login CSRF:

* An ``Origin`` that is exactly a trusted origin passes, whatever ``Sec-Fetch-Site`` says:
  trusting it is the operator's explicit decision, and the same list already grants it CORS, so
  refusing its request after a successful preflight would only break it (a front end on
  another site says ``cross-site``, one on a sibling subdomain ``same-site``).
* Otherwise ``Sec-Fetch-Site: cross-site`` is refused outright.
* Otherwise ``Origin``, or failing that ``Referer``, must name this site (the request's scheme
  and ``Host``) or a trusted origin. When the browser says ``same-site`` (a sibling subdomain)
  only a trusted origin passes: subdomains are often less guarded, and a taken-over one must not
  act as the user.
* With neither header, ``same-origin`` and ``none`` (typed or bookmarked by the user) pass:
  pages cannot forge Fetch Metadata. Anything else is refused over HTTPS, as in Django: browsers
  send ``Origin`` on unsafe requests, and a page that suppresses both is up to something. Plain
  HTTP lets it pass (development, where proxies strip headers freely).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, cast
from urllib.parse import urlsplit

from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sessionauth.errors import ConfigurationError, CSRFError

__all__ = [
    "CORS_HEADERS",
    "CORS_METHODS",
    "REASON_BAD_ORIGIN",
    "REASON_BAD_REFERER",
    "REASON_CROSS_SITE",
    "REASON_NO_REFERER",
    "TrustedCORSMiddleware",
    "check_origin",
    "normalize_origin",
    "referer_origin",
    "request_origin",
    "single_header",
    "validate_origins",
]

REASON_CROSS_SITE = "cross-site request"
REASON_BAD_ORIGIN = "origin not trusted"
REASON_BAD_REFERER = "referer not trusted"
REASON_NO_REFERER = "no origin or referer"


CORS_METHODS = ("DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT")
CORS_HEADERS = ("Content-Type", "CSRF-Token", "X-CSRF-Token")

_DEFAULT_PORTS = {"http": 80, "https": 443}
_MAX_URL = 8192  # a Referer longer than this is not worth parsing


def _parse(value: str, *, allow_path: bool) -> str | None:
    """Return the normalised origin of ``value``, or ``None`` if it is not a plain http(s) URL."""
    # Only printable ASCII without spaces: urlsplit would silently drop tabs and newlines, and
    # a browser never sends them, so whatever carries them is not a browser's header.
    if len(value) > _MAX_URL or not value.isascii() or not value.isprintable() or " " in value:
        return None
    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError:  # a bad port or a malformed IPv6 literal
        return None
    scheme = parts.scheme.lower()
    host = parts.hostname  # already lower-case
    if scheme not in _DEFAULT_PORTS or not host or "@" in parts.netloc:
        return None
    if not allow_path and value.lower() != f"{scheme}://{parts.netloc.lower()}":
        return None  # a path (even "/"), a query or a fragment: not an origin
    if ":" in host:
        host = f"[{host}]"
    if port is None or port == _DEFAULT_PORTS[scheme]:
        return f"{scheme}://{host}"
    return f"{scheme}://{host}:{port}"


def normalize_origin(value: str) -> str | None:
    """Return ``value`` as a normalised origin, or ``None`` if it is not exactly an origin.

    ``None`` for ``null``, other schemes, user info, and anything after the authority,
    including a lone trailing slash (an ``Origin`` header never has one).
    """
    return _parse(value, allow_path=False)


def referer_origin(value: str) -> str | None:
    """Return the normalised origin of a ``Referer`` URL, or ``None`` if it is not http(s)."""
    return _parse(value, allow_path=True)


def request_origin(scope: Scope) -> str | None:
    """Return this site's origin as the request addressed it: its scheme and ``Host`` header.

    A browser always sets ``Host`` to the server it talks to, so a page cannot forge it. Behind
    a TLS-terminating proxy the scheme is right only if the proxy's headers are trusted
    (:class:`~sessionauth.auth.client_address.TrustedProxyMiddleware`); otherwise list the
    public origin in the trusted origins.
    """
    host = single_header(scope, b"host", repeated="")  # two Host headers: trust neither
    if host is None:
        server = scope.get("server")
        if not server:
            return None
        name, port = server
        host = f"[{name}]:{port}" if ":" in name else f"{name}:{port}"
    return normalize_origin(f"{scope.get('scheme', 'http')}://{host}")


def validate_origins(origins: Iterable[str]) -> frozenset[str]:
    """Check a trusted-origins list and return it normalised.

    Args:
        origins: Exact origins such as ``https://app.example.com`` or
            ``http://localhost:5173``.

    Raises:
        ConfigurationError: For ``*`` or any wildcard, ``null``, a scheme other than http or
            https, user info, a path (a trailing slash included), a query or a fragment. Each
            would either trust every site or silently match nothing.
    """
    if isinstance(origins, str):
        raise ConfigurationError("trusted origins must be a list of origins, not one string")
    result: set[str] = set()
    for origin in origins:
        if "*" in origin:
            raise ConfigurationError(
                f"wildcard origin {origin!r} refused: with credentials it would let any site "
                "act as the user; list each origin exactly"
            )
        normalised = normalize_origin(origin.strip())
        if normalised is None:
            raise ConfigurationError(
                f"invalid trusted origin {origin!r}: write scheme://host[:port] with scheme "
                "http or https and no path, query or trailing slash"
            )
        result.add(normalised)
    return frozenset(result)


def single_header(scope: Scope, name: bytes, *, repeated: str) -> str | None:
    """Return the value of header ``name``: ``None`` if absent, ``repeated`` if sent twice.

    Browsers never repeat the headers checked here; guessing which copy counts is how a check
    and the code behind it end up reading different values.
    """
    found: str | None = None
    for key, raw in scope["headers"]:
        if key == name:
            if found is not None:
                return repeated
            found = raw.decode("latin-1").strip()
    return found


def check_origin(scope: Scope, trusted_origins: frozenset[str]) -> None:
    """Run the origin layer on an unsafe request.

    Args:
        scope: The request.
        trusted_origins: Normalised foreign origins allowed (see :func:`validate_origins`).

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


class TrustedCORSMiddleware:
    """CORS with credentials for the trusted origins only, on top of Starlette's middleware.

    Install it outermost, so preflight requests are answered before sessions or CSRF run::

        app = TrustedCORSMiddleware(SessionMiddleware(CSRFMiddleware(app, ...), ...),
                                    trusted_origins=origins)

    A request whose ``Origin`` is exactly a trusted origin gets ``Access-Control-Allow-Origin``
    naming it, ``Access-Control-Allow-Credentials: true`` and ``Vary: Origin``; preflights
    allow :data:`CORS_METHODS` and :data:`CORS_HEADERS`. Any other origin gets no CORS header at
    all (Starlette alone would still send ``Allow-Credentials``), only ``Vary: Origin``.

    Args:
        app: The ASGI application to wrap.
        trusted_origins: The same list the CSRF middleware uses; see :func:`validate_origins`.
        max_age: Seconds a browser may cache a preflight answer.

    Raises:
        ConfigurationError: If an origin is invalid or a wildcard.
    """

    def __init__(self, app: ASGIApp, *, trusted_origins: Iterable[str], max_age: int = 600):
        self.app = app
        self.trusted_origins = validate_origins(trusted_origins)
        # Starlette types scopes as MutableMapping; ours are the dicts ASGI servers pass.
        self._cors = cast(
            ASGIApp,
            CORSMiddleware(
                cast(Any, app),
                allow_origins=sorted(self.trusted_origins),
                allow_methods=CORS_METHODS,
                allow_headers=CORS_HEADERS,
                allow_credentials=True,
                max_age=max_age,
            ),
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one ASGI connection; only trusted origins reach Starlette's CORS handling."""
        if scope["type"] != "http" or not self.trusted_origins:
            # Without trusted origins no answer depends on Origin: nothing to add or vary.
            await self.app(scope, receive, send)
            return
        # Browsers serialise the Origin header normalised, so the raw value must match exactly.
        if single_header(scope, b"origin", repeated="null") in self.trusted_origins:
            await self._cors(scope, receive, send)
            return

        async def send_vary(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", ()))
                vary = [v for k, v in headers if k.lower() == b"vary"]
                headers = [h for h in headers if h[0].lower() != b"vary"]
                headers.append((b"vary", b", ".join([*vary, b"Origin"])))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_vary)
