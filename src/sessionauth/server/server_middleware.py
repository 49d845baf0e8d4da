"""The reference server's outermost layer: proxy headers, CORS and security headers in one call.

Each of these was a middleware of its own, with its own coroutine frame and, for two of them,
its own ``send`` wrapper, on every request. Folded into one ``__call__`` with one ``send``
wrapper, a request that needs none of the work (no trusted proxies, no ``Origin``) costs one
frame and one header rewrite (``benchmarks/README.md``, "Issue 13: the server's layers").

In that order, per HTTP request (a websocket gets the proxy step only):

* **Trusted proxies** (:func:`~sessionauth.auth.client_address.apply_proxy_headers`): the
  client's address and scheme from the headers of the proxies in ``trusted_proxies``, before
  anything inside reads them (the CSRF origin layer compares the scheme).
* **CORS** (:func:`~sessionauth.cors.credentialed_cors`): a request whose ``Origin`` is exactly
  a trusted origin goes through Starlette's CORS middleware, which answers preflights and adds
  the ``Access-Control-*`` headers; any other gets only ``Vary: Origin``, and none at all
  without trusted origins (no answer depends on ``Origin`` then). As
  :class:`~sessionauth.cors.TrustedCORSMiddleware` does.
* **HEAD answers without a body**: a HEAD gets the answer's headers, ``Content-Length``
  included (RFC 9110 §9.3.2), and never its body, whichever layer answered (a route, the hot
  routes, a 413, a 503, the 500). uvicorn drops such a body too; the server does not count on
  every ASGI server doing so.
* **Security headers**, set here rather than by each responder: the JSON API, the pages, the
  error handlers (the 500 included: this layer is outside Starlette's
  ``ServerErrorMiddleware``), static files and the answers middleware give before any route
  runs (CORS preflights, CSRF rejections, 413, 503) all pass through one place, so none can
  forget them.

  * ``X-Content-Type-Options: nosniff`` in every mode: a browser must never guess that a JSON
    body or an uploaded-looking file is HTML or script.
  * ``Strict-Transport-Security: max-age=31536000; includeSubDomains`` in production, which is
    served over HTTPS only: after one visit the browser never again tries plain HTTP, where
    the first request (and anything a network attacker injects) would travel in the clear.
"""

from __future__ import annotations

from collections.abc import Awaitable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sessionauth.auth.client_address import apply_proxy_headers, trusted_networks
from sessionauth.cors import credentialed_cors, vary_origin
from sessionauth.origins import single_header

__all__ = ["HSTS", "ServerMiddleware"]

HSTS = b"max-age=31536000; includeSubDomains"
"""One year, subdomains included: the value of ``Strict-Transport-Security`` in production."""

_NOSNIFF = (b"x-content-type-options", b"nosniff")


class ServerMiddleware:
    """Resolves proxied clients, applies CORS and adds the security headers, in one layer.

    A security header of the same name set further in is replaced, so a response never carries
    two disagreeing copies.

    Args:
        app: The whole application, Starlette's error layer included (install this outermost).
        hsts: Send ``Strict-Transport-Security`` (production, behind HTTPS).
        trusted_origins: Origins granted credentialed CORS, validated (the CSRF layer's list).
        trusted_proxies: Addresses and networks of the proxies in front of the server, whose
            ``X-Forwarded-For`` and ``X-Forwarded-Proto`` are believed.
        max_age: Seconds a browser may cache a preflight answer.

    Raises:
        ConfigurationError: If a proxy entry is invalid or the entries cover every address.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        hsts: bool,
        trusted_origins: frozenset[str],
        trusted_proxies: tuple[str, ...] = (),
        max_age: int = 600,
    ):
        self.app = app
        self._origins = trusted_origins
        self._cors = credentialed_cors(app, trusted_origins, max_age=max_age)
        self._proxies = trusted_networks(trusted_proxies)
        self._headers = [_NOSNIFF, (b"strict-transport-security", HSTS)] if hsts else [_NOSNIFF]
        self._names = frozenset(name for name, _ in self._headers)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one ASGI connection; an HTTP response's start gets the headers."""
        if scope["type"] != "http":
            apply_proxy_headers(scope, self._proxies)
            await self.app(scope, receive, send)
            return
        if self._proxies:
            apply_proxy_headers(scope, self._proxies)
        app = self.app
        vary = False
        if self._origins:
            # Browsers serialise Origin normalised, so the raw value must match exactly.
            if single_header(scope, b"origin", repeated="null") in self._origins:
                app = self._cors
            else:
                vary = True
        names = self._names
        extra = self._headers
        head = scope["method"] == "HEAD"

        # A plain function returning send's awaitable, not a coroutine: no frame of ours to step
        # through for each message of the response.
        def send_with_headers(message: Message) -> Awaitable[None]:
            if message["type"] == "http.response.start":
                # ASGI response header names are lower-case: no .lower() per header.
                headers = []
                for header in message.get("headers", ()):
                    if header[0] not in names:
                        headers.append(header)
                if vary:
                    headers = vary_origin(headers)
                headers += extra
                message["headers"] = headers
            elif head:
                message = _bodiless(message)
            return send(message)

        await app(scope, receive, send_with_headers)


def _bodiless(message: Message) -> Message:
    """A HEAD answer's body message, emptied; a file handed over by path becomes no body."""
    if message["type"] == "http.response.body":
        return {**message, "body": b""}
    if message["type"] == "http.response.pathsend":
        return {"type": "http.response.body", "body": b""}
    return message
