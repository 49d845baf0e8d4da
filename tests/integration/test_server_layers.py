"""The server's own layers: the hot routes inside the session layer, ServerMiddleware outermost."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, NoReturn

import httpx
import pytest
from fastapi import FastAPI

from sessionauth.server.hot_routes import HotRouteMiddleware
from tests.support.apps import running_app
from tests.support.asgi import http_scope

TRUSTED = "https://app.example.com"
PASSWORD = "p" * 12


async def _broken() -> None:
    raise RuntimeError("a bug")


@pytest.fixture
async def app(tmp_path: Path) -> AsyncIterator[FastAPI]:
    async with running_app(tmp_path, allowed_origins=(TRUSTED,)) as app:
        app.add_api_route("/broken", _broken)
        yield app


def _client(app: FastAPI, root_path: str = "") -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False, root_path=root_path)
    return httpx.AsyncClient(transport=transport, base_url="http://testserver")


async def _sign_in(app: FastAPI, client: httpx.AsyncClient, role: str) -> int:
    auth = app.state.authenticator
    email = f"{role}@example.com"
    user = await auth.users.create(email, await auth.hasher.hash(PASSWORD), role=role)
    response = await client.post("/login", json={"email": email, "password": PASSWORD})
    assert response.status_code == 200
    return int(user.id)


async def test_head_of_a_hot_route_answers_like_its_get(app: FastAPI) -> None:
    """HEAD /dashboard is 401 anonymous and 200 signed in, as the router's GET route was."""
    async with _client(app) as client:
        assert (await client.head("/dashboard")).status_code == 401
        user_id = await _sign_in(app, client, "user")
        assert (await client.head("/dashboard")).status_code == 200
        assert (await client.get("/dashboard")).json() == {"userId": user_id}


async def test_hot_route_refusals_are_the_guards_answers(app: FastAPI) -> None:
    """A browser without a session is sent to log in; a non-admin gets the JSON 403."""
    async with _client(app) as client:
        browser = await client.get("/admin", headers={"Accept": "text/html"})
        assert browser.status_code == 303
        assert browser.headers["location"] == "/login?next=%2Fadmin"
        await _sign_in(app, client, "user")
        refused = await client.get("/admin")
        assert (refused.status_code, refused.json()) == (403, {"error": "Insufficient permissions"})


async def test_under_a_root_path_the_router_serves_the_hot_routes(app: FastAPI) -> None:
    """Mounted under /auth, GET /auth/dashboard still answers (the router strips the prefix)."""
    async with _client(app, root_path="/auth") as client:
        response = await client.get("/auth/dashboard")
    assert (response.status_code, response.json()) == (401, {"error": "Authentication required"})


async def test_a_500_to_a_trusted_origin_carries_cors_and_the_security_headers(
    app: FastAPI,
) -> None:
    """The front end can read the 500: CORS and nosniff are added outside the error layer."""
    async with _client(app) as client:
        trusted = await client.get("/broken", headers={"Origin": TRUSTED})
        other = await client.get("/broken", headers={"Origin": "https://evil.example"})
    assert trusted.status_code == other.status_code == 500
    assert trusted.headers["access-control-allow-origin"] == TRUSTED
    assert trusted.headers["access-control-allow-credentials"] == "true"
    assert trusted.headers["x-content-type-options"] == "nosniff"
    assert "access-control-allow-origin" not in other.headers
    assert other.headers.get_list("vary") == ["Origin"]
    assert other.headers["x-content-type-options"] == "nosniff"


@pytest.mark.parametrize("path", ["/dashboard", "/admin", "/csrf-token"])
async def test_a_hot_route_answers_as_the_router_would(app: FastAPI, path: str) -> None:
    """Status, headers and body of the hot route's answer are the router route's (same cookie).

    The router serves the same path under a root path; the hot route builds its answer without
    a Starlette ``Response``, so this pins what it sends to what one would have sent.
    """
    async with _client(app) as hot, _client(app, root_path="/auth") as routed:
        await _sign_in(app, hot, "admin")
        routed.cookies = hot.cookies
        fast = await hot.get(path)
        slow = await routed.get(f"/auth{path}")
    assert fast.status_code == slow.status_code == 200
    assert fast.headers.multi_items() == slow.headers.multi_items()
    if path == "/csrf-token":  # freshly masked each time: the same shape, not the same bytes
        assert fast.json().keys() == slow.json().keys() == {"csrfToken"}
        assert len(fast.content) == len(slow.content)
    else:
        assert fast.content == slow.content


async def test_the_hot_routes_keep_their_names_and_need_the_session_layer(app: FastAPI) -> None:
    """Each router copy is named by its OpenAPI operation id; without sessions, a clear error."""
    operations = {
        path: app.openapi()["paths"][path]["get"]["operationId"]
        for path in ("/dashboard", "/admin", "/csrf-token")
    }
    assert operations == {
        "/dashboard": "dashboard",
        "/admin": "admin",
        "/csrf-token": "get_csrf_token",
    }
    for path, name in operations.items():
        assert app.url_path_for(name) == path
    bare = HotRouteMiddleware(app)
    scope = {"type": "http", "method": "GET", "path": "/dashboard", "headers": []}
    with pytest.raises(TypeError, match="need SessionMiddleware"):
        await bare(scope, _never, _never)


async def _never(*args: object) -> NoReturn:
    raise AssertionError("nothing is received or sent before the session is found")


# Every page GET besides the JSON API's (which the OpenAPI document lists).
_PAGES = (
    "/",
    "/login",
    "/account",
    "/admin/users",
    "/signup",
    "/verify",
    "/password/forgot",
    "/password/reset",
    "/static/app.css",
)
# Answers whose length changes from one request to the next (counters, times).
_RANDOM = frozenset({"/metrics"})


async def _raw(
    app: FastAPI, method: str, path: str, headers: list[tuple[bytes, bytes]]
) -> tuple[int, dict[bytes, bytes], bytes]:
    """One request straight through the ASGI app: what the app sends, before any server."""
    sent: list[dict[str, Any]] = []
    requests = [{"type": "http.request", "body": b""}]

    async def receive() -> dict[str, Any]:
        if requests:
            return requests.pop()
        await asyncio.Event().wait()  # the client stays connected (responses listen for it)
        raise AssertionError("unreachable")

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = http_scope(method, path, headers)
    await app(scope, receive, send)
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return sent[0]["status"], dict(sent[0]["headers"]), body


async def test_every_get_route_answers_head_as_its_get(app: FastAPI) -> None:
    """HEAD of each GET route (API, hot routes, pages, static): its GET's headers, no body."""
    async with _client(app) as client:
        await _sign_in(app, client, "admin")
        documented = [
            path
            for path, operations in (await client.get("/openapi.json")).json()["paths"].items()
            if "get" in operations and path != "/broken"  # the fixture's 500, tested above
        ]
        cookie = "; ".join(f"{name}={value}" for name, value in client.cookies.items())
    assert {"/healthz", "/readyz", "/me", "/dashboard", "/csrf-token"} <= set(documented)
    for signed_in in (True, False):
        headers = [(b"accept", b"text/html")] + ([(b"cookie", cookie.encode())] * signed_in)
        for path in [*documented, *_PAGES]:
            get = await _raw(app, "GET", path, headers)
            head = await _raw(app, "HEAD", path, headers)
            assert (path, head[0], head[2]) == (path, get[0], b"")
            assert get[0] != 405
            assert get[2] or get[0] == 303  # a HEAD whose GET has a body to drop
            names = set(get[1]) - {b"set-cookie"}
            assert set(head[1]) - {b"set-cookie"} == names, path
            assert head[1][b"content-length"] == get[1][b"content-length"] or path in _RANDOM


async def test_a_head_refused_before_any_route_has_no_body_either(app: FastAPI) -> None:
    """The body limit's 413 and a hot route's 401 answer HEAD with their headers only."""
    too_large = await _raw(app, "HEAD", "/healthz", [(b"content-length", b"100000")])
    anonymous = await _raw(app, "HEAD", "/dashboard", [])
    assert (too_large[0], too_large[2], too_large[1][b"content-type"]) == (
        413,
        b"",
        b"application/json",
    )
    assert (anonymous[0], anonymous[2], anonymous[1][b"content-length"]) == (401, b"", b"35")


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("POST", "/healthz", "GET, HEAD"),
        ("POST", "/me", "GET, HEAD"),
        ("POST", "/dashboard", "GET, HEAD"),
        ("POST", "/openapi.json", "GET, HEAD"),
        ("GET", "/logout", "POST"),
        ("PUT", "/login", "GET, HEAD, POST"),
        ("PUT", "/users", "GET, HEAD, POST"),
        ("POST", "/users/1", "DELETE, PATCH"),
        ("GET", "/sessions/revoke-others", "DELETE, POST"),
        ("GET", "/passkeys/register", "DELETE, PATCH, POST"),
    ],
)
async def test_a_405_names_every_method_its_path_takes(
    app: FastAPI, method: str, path: str, allow: str
) -> None:
    """Allow lists the methods of every route of the path, HEAD with GET, sorted.

    Starlette named only the first matching route's (``PUT /login``: ``POST``, though the
    login page answers GET), in an order that changed from process to process.
    """
    async with _client(app) as client:
        response = await client.request(method, path, json={})
    assert (response.status_code, response.headers["allow"]) == (405, allow)
