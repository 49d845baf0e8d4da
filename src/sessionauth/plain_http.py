"""The warning for a Secure cookie set on a plain-``http`` request.

``CookieConfig()`` is Secure (and named ``__Host-session``) by default. Over plain ``http://``
(a test with httpx or Starlette's ``TestClient``, local development on another host name than
``localhost``) the client keeps such a cookie but never sends it back: the login answers 200,
and every later request is anonymous (401) with nothing to say why. So the first time the
middleware sets or clears a Secure cookie on a request whose ASGI scheme is ``http``, it logs
one warning that names the fix. Once per middleware: a misconfigured deployment should not
log a line per request.

Behind a TLS-terminating proxy the application sees ``http`` unless the proxy's
``X-Forwarded-Proto`` is trusted; the cookie then works (the browser is on HTTPS), but the
warning is still worth reading, because the application also builds its redirects and its
``Strict-Transport-Security`` decision on that scheme.
"""

from __future__ import annotations

import logging

from starlette.types import Scope

from sessionauth.config import CookieConfig

__all__ = ["PlainHttpWarning"]

logger = logging.getLogger("sessionauth.config")


class PlainHttpWarning:
    """Logs one warning when a Secure cookie is set on a plain-``http`` request.

    Args:
        cookie: The session cookie's configuration; nothing is ever logged unless it is Secure.
        logger: Where the warning goes (default ``sessionauth.config``).
    """

    __slots__ = ("_cookie", "_logger", "_pending")

    def __init__(self, cookie: CookieConfig, *, logger: logging.Logger = logger):
        self._cookie = cookie
        self._logger = logger
        self._pending = cookie.secure

    def check(self, scope: Scope) -> None:
        """Warn if ``scope`` is a plain-``http`` request and no warning was logged yet.

        Call it only for a response that sets (or clears) one of the middleware's cookies.
        """
        if not self._pending or scope.get("scheme") != "http":
            return
        self._pending = False
        host = next((value for key, value in scope["headers"] if key == b"host"), b"")
        self._logger.warning(
            "the session cookie %r is Secure, but this response goes to a plain-http request "
            "(%r): browsers (except on localhost) and HTTP clients such as httpx and "
            "Starlette's TestClient keep it but never send it back, so every later request "
            "is anonymous. For local development or tests over http, pass "
            "CookieConfig(secure=False) (or CookieConfig.development()) to SessionMiddleware; "
            "in production serve HTTPS, and behind a TLS-terminating proxy trust its "
            "X-Forwarded-Proto (the reference server: SESSIONAUTH_TRUSTED_PROXIES). "
            "Logged once.",
            self._cookie.name,
            f"http://{host.decode('latin-1')}{scope.get('path', '')}",
            extra={"event": "secure_cookie_over_http", "cookie": self._cookie.name},
        )
