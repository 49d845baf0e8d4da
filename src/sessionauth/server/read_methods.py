"""``HeadMiddleware``: every GET route answers HEAD too, and a 405 says so.

RFC 9110 §9.1 asks every general-purpose server to support GET and HEAD, and a HEAD request to
answer with the headers its GET would (§9.3.2). Starlette's own routes do this (a ``Route`` for
GET adds HEAD to its methods), FastAPI's do not: ``HEAD /healthz`` was a 405, so a load balancer
or uptime checker that probes with HEAD saw the server as broken. Adding ``HEAD`` to each route
would put a second operation per path in the OpenAPI document; instead this layer, right around
the router, passes a HEAD request on as a GET and drops the body of its answer, keeping the
GET's headers (``Content-Length`` included, as §9.3.2 allows).

A 405's ``Allow`` then names HEAD wherever it names GET, in one order: Starlette joins a set of
methods, whose order changes with each process's string hashing.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["HeadMiddleware", "allowed_methods"]


def allowed_methods(allow: bytes) -> bytes:
    """An ``Allow`` header's value with HEAD wherever GET is, sorted: ``b"GET, HEAD, POST"``."""
    methods = {method.strip() for method in allow.split(b",")} - {b""}
    if b"GET" in methods:
        methods.add(b"HEAD")
    return b", ".join(sorted(methods))


class HeadMiddleware:
    """Serves HEAD as GET for the app it wraps, and completes the ``Allow`` of its 405s.

    Install it innermost, right around the router: the layers outside it (the session layer,
    the CSRF check, the server's access log) still see the request as the HEAD it is.

    Args:
        app: The router (or any ASGI app whose GET routes should answer HEAD).
    """

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one ASGI connection: HEAD reaches ``app`` as GET; 405s list HEAD with GET."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        head = scope["method"] == "HEAD"
        if head:
            # A copy: the layers outside keep their scope, and with it the method sent.
            scope = {**scope, "method": "GET"}

        async def answer(message: Message) -> None:
            kind = message["type"]
            if kind == "http.response.start":
                if message["status"] == 405:
                    message["headers"] = [
                        (name, allowed_methods(value) if name.lower() == b"allow" else value)
                        for name, value in message.get("headers", ())
                    ]
            elif head and kind == "http.response.body":
                message = {**message, "body": b""}
            elif head and kind == "http.response.pathsend":
                # A file handed to a server that sends it itself: for HEAD, nothing.
                message = {"type": "http.response.body", "body": b""}
            await send(message)

        await self.app(scope, receive, answer)
