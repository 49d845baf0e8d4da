"""CORS with credentials, for the trusted origins only.

The origins a browser may let read responses with credentials are the same list that passes
the CSRF origin layer (:func:`sessionauth.origins.validate_origins`), so the two can never
disagree: an origin trusted for one is trusted for the other. There are no wildcards; ``*``
with credentials refuses to start.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, cast

from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sessionauth.origins import single_header, validate_origins

__all__ = [
    "CORS_HEADERS",
    "CORS_METHODS",
    "TrustedCORSMiddleware",
    "credentialed_cors",
    "vary_origin",
]

CORS_METHODS = ("DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT")
"""Methods a preflight allows."""

CORS_HEADERS = ("Content-Type", "CSRF-Token", "X-CSRF-Token")
"""Request headers a preflight allows: JSON bodies and the CSRF token."""


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
        self._cors = credentialed_cors(app, self.trusted_origins, max_age=max_age)

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
                message["headers"] = vary_origin(message.get("headers", ()))
            await send(message)

        await self.app(scope, receive, send_vary)


def credentialed_cors(app: ASGIApp, trusted_origins: frozenset[str], *, max_age: int) -> ASGIApp:
    """Starlette's CORS middleware around ``app``, configured for the trusted origins.

    Credentials allowed, :data:`CORS_METHODS` and :data:`CORS_HEADERS` in preflights. Hand it
    only requests whose ``Origin`` is exactly one of ``trusted_origins`` (validated with
    :func:`validate_origins`), as :class:`TrustedCORSMiddleware` does: Starlette alone would
    send ``Allow-Credentials`` to any origin.
    """
    # Starlette types scopes as MutableMapping; ours are the dicts ASGI servers pass.
    return cast(
        ASGIApp,
        CORSMiddleware(
            cast(Any, app),
            allow_origins=sorted(trusted_origins),
            allow_methods=CORS_METHODS,
            allow_headers=CORS_HEADERS,
            allow_credentials=True,
            max_age=max_age,
        ),
    )


def vary_origin(headers: Iterable[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """Return response ``headers`` with ``Origin`` added to ``Vary``, merged into one header.

    What a response to an untrusted (or absent) ``Origin`` carries when trusted origins exist:
    the answer depends on the header, so a shared cache must not serve it to another origin.
    """
    vary: list[bytes] = []
    kept: list[tuple[bytes, bytes]] = []
    for header in headers:
        if header[0].lower() == b"vary":
            vary.append(header[1])
        else:
            kept.append(header)
    kept.append((b"vary", b", ".join([*vary, b"Origin"])))
    return kept
