"""Origins: strict parsing and the one trusted-origins list.

An origin is ``scheme://host[:port]``: lower-case scheme and host, no default port, nothing
else. The same normalised list decides two things, so they can never disagree:

* which foreign origins pass the CSRF origin layer (:func:`sessionauth.csrf.check_origin`), and
* which origins CORS lets read responses with credentials
  (:class:`sessionauth.cors.TrustedCORSMiddleware`).

Matching is exact string equality after normalisation. There are no wildcards, suffix or prefix
matches: ``https://example.com.evil.com`` is not ``https://example.com``, ``http://`` is not
``https://``, another port is another origin, and the opaque origin ``null`` (sandboxed
frames, ``data:`` URLs, some redirects) matches nothing, because anyone can produce it.
"""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import urlsplit

from starlette.types import Scope

from sessionauth.errors import ConfigurationError

__all__ = [
    "normalize_origin",
    "referer_origin",
    "request_origin",
    "single_header",
    "validate_origins",
]

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
