"""AllowedMethodsMiddleware: HEAD reaches the router as GET; a 405 names what the path takes."""

from __future__ import annotations

from typing import Any

import pytest
from starlette.responses import PlainTextResponse
from starlette.routing import BaseRoute, Mount, Route, Router

from sessionauth.server.allowed_methods import AllowedMethodsMiddleware, methods_taken


async def _ok(request: Any) -> PlainTextResponse:
    return PlainTextResponse(request.method)


# Paths shared by routes of different methods, as the server's are (/login: a page and the API).
ROUTES: list[BaseRoute] = [
    Route("/login", _ok, methods=["POST"]),
    Route("/login", _ok, methods=["GET"]),
    Route("/items/{name}", _ok, methods=["DELETE", "PATCH"]),
    Route("/items/new", _ok, methods=["POST"]),
    Mount("/files", Router()),
]


def _scope(method: str, path: str) -> dict[str, Any]:
    return {"type": "http", "method": method, "path": path, "root_path": "", "headers": []}


@pytest.mark.parametrize(
    ("path", "taken"),
    [
        ("/login", ["GET", "HEAD", "POST"]),
        ("/items/new", ["DELETE", "PATCH", "POST"]),
        ("/items/x", ["DELETE", "PATCH"]),
        ("/files/a.css", []),
        ("/nowhere", []),
    ],
)
def test_methods_taken_asks_every_route_of_the_path(path: str, taken: list[str]) -> None:
    """Every route whose path matches adds its methods; a mount says nothing about methods."""
    assert methods_taken(ROUTES, _scope("PUT", path)) == taken


async def _serve(app: Any, scope: dict[str, Any]) -> list[dict[str, Any]]:
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b""}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    return sent


async def test_head_is_handed_on_as_get_while_the_callers_scope_keeps_head() -> None:
    """The router sees GET (and answers it); the scope of the layers outside still says HEAD."""
    scope = _scope("HEAD", "/login")
    sent = await _serve(AllowedMethodsMiddleware(Router(ROUTES), routes=ROUTES), scope)
    assert (sent[0]["status"], sent[1]["body"]) == (200, b"GET")
    assert scope["method"] == "HEAD"


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("PUT", "/login", b"GET, HEAD, POST"),
        ("GET", "/items/new", b"DELETE, PATCH, POST"),
        ("POST", "/items/x", b"DELETE, PATCH"),
    ],
)
async def test_a_405_names_every_method_the_path_takes(
    method: str, path: str, allow: bytes
) -> None:
    """Starlette names the first matching route's methods; the layer names them all."""
    sent = await _serve(
        AllowedMethodsMiddleware(Router(ROUTES), routes=ROUTES), _scope(method, path)
    )
    assert sent[0]["status"] == 405
    assert dict(sent[0]["headers"])[b"allow"] == allow


async def test_only_a_405s_allow_is_rewritten() -> None:
    """An Allow on another status, or a 405 no route explains, is left as the app sent it."""

    def answering(status: int) -> Any:
        async def app(scope: Any, receive: Any, send: Any) -> None:
            headers = [(b"allow", b"GET"), (b"content-type", b"text/plain")]
            await send({"type": "http.response.start", "status": status, "headers": headers})
            await send({"type": "http.response.body", "body": b""})

        return app

    other = await _serve(
        AllowedMethodsMiddleware(answering(200), routes=ROUTES), _scope("PUT", "/login")
    )
    unknown = await _serve(
        AllowedMethodsMiddleware(answering(405), routes=ROUTES), _scope("PUT", "/x")
    )
    known = await _serve(
        AllowedMethodsMiddleware(answering(405), routes=ROUTES), _scope("PUT", "/login")
    )
    assert (
        other[0]["headers"]
        == unknown[0]["headers"]
        == [
            (b"allow", b"GET"),
            (b"content-type", b"text/plain"),
        ]
    )
    assert known[0]["headers"] == [(b"allow", b"GET, HEAD, POST"), (b"content-type", b"text/plain")]


async def test_other_connections_pass_through_untouched() -> None:
    """A websocket (or lifespan) scope reaches the app as it came, with the caller's send."""
    seen: list[Any] = []

    async def inner(scope: Any, receive: Any, send: Any) -> None:
        seen.append((scope, send))

    async def receive() -> Any:
        """The caller's receive."""

    async def send(message: Any) -> None:
        """The caller's send."""

    scope = {"type": "websocket", "path": "/"}
    await AllowedMethodsMiddleware(inner, routes=ROUTES)(scope, receive, send)
    assert seen == [(scope, send)]
