"""``AllowedMethodsMiddleware``: every GET route answers HEAD, and a 405 names what a path takes.

RFC 9110 §9.1 asks every general-purpose server to support GET and HEAD, and a HEAD request to
answer with the headers its GET would (§9.3.2). Starlette's own routes do this (a ``Route`` for
GET adds HEAD to its methods), FastAPI's do not: ``HEAD /healthz`` was a 405, so a load balancer
or uptime checker that probes with HEAD saw the server as broken. Adding ``HEAD`` to each route
would put a second operation per path in the OpenAPI document; instead this layer, right around
the router, passes a HEAD request on as a GET. The body of the answer is dropped outermost, by
:class:`~sessionauth.server.server_middleware.ServerMiddleware`, for every HEAD answer alike.

A 405 must say in ``Allow`` what the path does take (§15.5.6). Starlette's router names the
methods of the first route whose path matches, so where several routes share a path (the
``/login`` page and ``POST /login``; ``DELETE /sessions/{handle}`` and ``POST
/sessions/revoke-others``) it named one of them, and in the order of a set, which changes with
each process's string hashing. Here a 405 asks every route, through Starlette's public
``matches``, which methods it would take for the path: a 405 is rare, and the routes are few.
"""

from __future__ import annotations

from collections.abc import Sequence

from starlette.routing import BaseRoute, Match, Mount
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["AllowedMethodsMiddleware", "methods_taken"]

# The methods a route can declare that a 405 may name (HEAD follows GET; OPTIONS and TRACE
# are no route's: CORS preflights are answered before the router).
_ROUTED = ("DELETE", "GET", "PATCH", "POST", "PUT")


def methods_taken(routes: Sequence[BaseRoute], scope: Scope) -> list[str]:
    """The methods some route of ``routes`` takes for the path of ``scope``, HEAD with GET, sorted.

    A mount matches a path whatever the method, so it says nothing about methods and is left
    out (its app answers its own 405s).
    """
    routed = [route for route in routes if not isinstance(route, Mount)]
    taken = {
        method
        for method in _ROUTED
        if any(route.matches({**scope, "method": method})[0] is Match.FULL for route in routed)
    }
    if "GET" in taken:
        taken.add("HEAD")
    return sorted(taken)


class AllowedMethodsMiddleware:
    """Serves HEAD as GET for the router it wraps, and names in a 405's ``Allow`` what a path takes.

    Install it innermost, right around the router: the layers outside it (the session layer,
    the CSRF check, the server's access log) still see the request as the HEAD it is.

    Args:
        app: The router, with FastAPI's exception layer around it.
        routes: The router's routes, asked which methods a path takes when it answers 405.
    """

    def __init__(self, app: ASGIApp, *, routes: Sequence[BaseRoute]):
        self.app = app
        self.routes = routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one ASGI connection: HEAD reaches ``app`` as GET; a 405 gets the full ``Allow``."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if scope["method"] == "HEAD":
            # A copy: the layers outside keep their scope, and with it the method sent.
            scope = {**scope, "method": "GET"}

        async def complete_allow(message: Message) -> None:
            if message["type"] == "http.response.start" and message["status"] == 405:
                allow = ", ".join(methods_taken(self.routes, scope)).encode()
                message["headers"] = [
                    (name, allow if name.lower() == b"allow" and allow else value)
                    for name, value in message.get("headers", ())
                ]
            await send(message)

        await self.app(scope, receive, complete_allow)
