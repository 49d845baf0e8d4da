"""Headers every response of the reference server carries, whatever answered it.

Set here, outermost, rather than by each responder: the JSON API, the pages, the error
handlers, static files, and the answers middleware give before any route runs (CORS
preflights, CSRF rejections, 413, 503) all pass through one place, so none can forget them.

* ``X-Content-Type-Options: nosniff`` in every mode: a browser must never guess that a JSON
  body or an uploaded-looking file is HTML or script.
* ``Strict-Transport-Security: max-age=31536000; includeSubDomains`` in production, which is
  served over HTTPS only: after one visit the browser never again tries plain HTTP, where the
  first request (and anything a network attacker injects) would travel in the clear.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["HSTS", "SecurityHeadersMiddleware"]

HSTS = b"max-age=31536000; includeSubDomains"
"""One year, subdomains included: the value of ``Strict-Transport-Security`` in production."""

_NOSNIFF = (b"x-content-type-options", b"nosniff")


class SecurityHeadersMiddleware:
    """Adds ``nosniff`` to every HTTP response, and HSTS when ``hsts`` is on.

    A header of the same name set further in is replaced, so a response never carries two
    disagreeing copies.

    Args:
        app: The ASGI application to wrap (install this outermost).
        hsts: Send ``Strict-Transport-Security`` (production, behind HTTPS).
    """

    def __init__(self, app: ASGIApp, *, hsts: bool):
        self.app = app
        self._headers = [_NOSNIFF, (b"strict-transport-security", HSTS)] if hsts else [_NOSNIFF]
        self._names = frozenset(name for name, _ in self._headers)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one ASGI connection, adding the headers to an HTTP response's start."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [
                    header
                    for header in message.get("headers", ())
                    if header[0].lower() not in self._names
                ]
                headers.extend(self._headers)
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)
