"""Anonymous clients write nothing: CSRF tokens without a session ride on a pre-session cookie.

Before, every cookieless ``GET /csrf-token`` stored a session for 24 h (200 requests, 200 rows
or Redis keys). Now the token is bound to a signed, two-hour ``__Host-csrf`` cookie (``csrf``
in development) and nothing is stored until a login or a written value.
"""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from sessionauth import csrf
from sessionauth.auth.passwords import PasswordHasher
from sessionauth.config import CookieConfig
from sessionauth.csrf import CSRFMiddleware, csrf_token
from sessionauth.middleware import SessionMiddleware
from sessionauth.presession import MAX_AGE
from sessionauth.server.app import create_app
from sessionauth.server.settings import Settings
from sessionauth.stores import open_store
from sessionauth.stores.base import SessionStore
from sessionauth.tokens import Keyring
from tests.support.clock import FakeClock

KEYRING = Keyring(["p" * 40])
PASSWORD = "correct horse battery"
SITE = "http://testserver"
REQUESTS = 200


# -- counting what a store holds, by its own means ------------------------------------------


def _sqlite_rows(path: Path) -> int:
    if not path.exists():
        return 0  # the store creates its file and table on its first use
    with sqlite3.connect(path) as connection:
        tables = connection.execute(
            "SELECT COUNT(*) FROM sqlite_master WHERE name = 'sessionauth_sessions'"
        ).fetchone()
        if tables == (0,):
            return 0
        (count,) = connection.execute("SELECT COUNT(*) FROM sessionauth_sessions").fetchone()
    return int(count)


def _redis_keys(url: str, prefix: str) -> int:
    import redis

    with redis.Redis.from_url(url) as client:
        return sum(1 for _ in client.scan_iter(match=f"{prefix}*", count=1000))


@pytest.fixture(params=["sqlite", pytest.param("redis", marks=pytest.mark.redis)])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, Callable[[], int]]:
    """A session store URL and a function counting the records it holds."""
    if request.param == "sqlite":
        path = tmp_path / "sessions.db"
        return f"sqlite:///{path}", lambda: _sqlite_rows(path)
    url: str = request.getfixturevalue("redis_url")
    prefix = f"{request.getfixturevalue('redis_prefix')}pre:"
    return f"{url}?prefix={prefix}", lambda: _redis_keys(url, prefix)


# -- the reference server -------------------------------------------------------------------


@pytest.fixture
async def server(
    tmp_path: Path, backend: tuple[str, Callable[[], int]]
) -> AsyncIterator[tuple[FastAPI, Callable[[], int]]]:
    store_url, count = backend
    settings = Settings(
        env="development",
        secret="s" * 40,
        database_url=f"sqlite:///{tmp_path / 'users.db'}",
        store_url=store_url,
        data_dir=tmp_path / "data",
    )
    app = create_app(settings, hasher=PasswordHasher.for_tests())
    async with app.router.lifespan_context(app):
        auth = app.state.authenticator
        await auth.users.create("alice@example.com", await auth.hasher.hash(PASSWORD))
        yield app, count


def _client(app: Any) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app)
    return httpx.AsyncClient(transport=transport, base_url=SITE, headers={"origin": SITE})


async def test_cookieless_token_requests_store_nothing(
    server: tuple[FastAPI, Callable[[], int]],
) -> None:
    """200 cookieless GET /csrf-token leave the store's record count as it was."""
    app, count = server
    before = count()
    async with _client(app) as client:
        for _ in range(REQUESTS):
            response = await client.get("/csrf-token")
            client.cookies.clear()  # each request a new cookieless client
            assert response.status_code == 200
            assert len(response.json()["csrfToken"]) == csrf.TOKEN_LENGTH
            (cookie,) = response.headers.get_list("set-cookie")
            assert cookie.startswith("csrf=")
            assert "Max-Age=7200" in cookie
            assert "HttpOnly" in cookie
            assert "SameSite=Lax" in cookie
    assert count() == before


async def test_the_tutorial_login_works_without_cookies_and_answers_a_token(
    server: tuple[FastAPI, Callable[[], int]],
) -> None:
    """Cookieless POST /login passes on the origin layer; its csrfToken serves the session."""
    app, count = server
    async with _client(app) as client:
        login = await client.post(
            "/login", json={"email": "alice@example.com", "password": PASSWORD}
        )
        assert login.status_code == 200
        token = login.json()["csrfToken"]
        assert count() == 1
        refused = await client.post("/api/transfer", json={"amount": 5})
        assert refused.status_code == 403
        done = await client.post(
            "/api/transfer", json={"amount": 5}, headers={"x-csrf-token": token}
        )
        assert done.status_code == 200


async def test_the_pre_session_token_carries_a_login_which_clears_the_cookie(
    server: tuple[FastAPI, Callable[[], int]],
) -> None:
    """GET /csrf-token, then POST /login with that token; the pre-session cookie is cleared."""
    app, count = server
    async with _client(app) as client:
        token = (await client.get("/csrf-token")).json()["csrfToken"]
        assert "csrf" in client.cookies
        body = {"email": "alice@example.com", "password": PASSWORD}
        missing = await client.post("/login", json=body)
        assert missing.status_code == 403
        assert missing.json()["reason"] == csrf.REASON_NO_TOKEN
        login = await client.post("/login", json=body, headers={"x-csrf-token": token})
        assert login.status_code == 200
        assert count() == 1
        assert "csrf" not in client.cookies  # cleared: the session's tokens take over
        assert "session" in client.cookies
        stale = await client.post(
            "/api/transfer", json={"amount": 1}, headers={"x-csrf-token": token}
        )
        assert stale.status_code == 403  # the pre-session token does not serve a logged-in session


async def test_the_login_page_works_for_a_browser_holding_the_cookie(
    server: tuple[FastAPI, Callable[[], int]],
) -> None:
    """A browser that fetched /csrf-token gets a login form whose token passes; a crawler none."""
    app, count = server
    async with _client(app) as client:
        crawler = await client.get("/login", headers={"accept": "text/html"})
        assert "set-cookie" not in crawler.headers
        await client.get("/csrf-token")
        page = await client.get("/login", headers={"accept": "text/html"})
        field = page.text.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
        assert len(field) == csrf.TOKEN_LENGTH
        form = {"email": "alice@example.com", "password": PASSWORD, "csrf_token": field}
        posted = await client.post("/ui/login", data=form, headers={"accept": "text/html"})
        assert posted.status_code == 303
        assert count() == 1
        assert "session" in client.cookies


# -- the library's middleware directly ------------------------------------------------------


async def _issue(request: Request) -> Response:
    return JSONResponse({"csrfToken": csrf_token(request.session, KEYRING)})


async def _write(request: Request) -> Response:
    request.session["cart"] = ["book"]
    return JSONResponse({"ok": True})


async def _echo(request: Request) -> Response:
    return JSONResponse({"ok": True})


def _library_app(store: SessionStore, clock: FakeClock) -> Any:
    routes = [
        Route("/token", _issue),
        Route("/write", _write, methods=["POST"]),
        Route("/echo", _echo, methods=["POST"]),
    ]
    protected = CSRFMiddleware(Starlette(routes=routes), keyring=KEYRING)
    return SessionMiddleware(
        protected, store=store, keyring=KEYRING, cookie=CookieConfig.development(), clock=clock
    )


@pytest.fixture
async def library(
    backend: tuple[str, Callable[[], int]],
) -> AsyncIterator[tuple[Any, FakeClock, Callable[[], int]]]:
    store_url, count = backend
    clock = FakeClock()
    store = open_store(store_url, clock=clock)
    try:
        yield _library_app(store, clock), clock, count
    finally:
        await store.aclose()


async def test_library_csrf_token_stores_nothing(
    library: tuple[Any, FakeClock, Callable[[], int]],
) -> None:
    """The library's csrf_token() on a cookieless request writes no record either."""
    app, _, count = library
    before = count()
    async with _client(app) as client:
        for _ in range(REQUESTS):
            assert (await client.get("/token")).status_code == 200
            client.cookies.clear()
    assert count() == before


async def test_pre_session_token_validates_and_is_refused_otherwise(
    library: tuple[Any, FakeClock, Callable[[], int]],
) -> None:
    """Valid with its cookie; refused forged, with another cookie, or missing once set."""
    app, _, count = library
    before = count()
    async with _client(app) as mine, _client(app) as theirs:
        token = (await mine.get("/token")).json()["csrfToken"]
        other = (await theirs.get("/token")).json()["csrfToken"]
        ok = await mine.post("/echo", headers={"x-csrf-token": token})
        assert ok.status_code == 200
        missing = await mine.post("/echo")
        assert (missing.status_code, missing.json()["reason"]) == (403, csrf.REASON_NO_TOKEN)
        forged = await mine.post("/echo", headers={"x-csrf-token": token[:-4] + "AAAA"})
        assert (forged.status_code, forged.json()["reason"]) == (403, csrf.REASON_BAD_TOKEN)
        crossed = await mine.post("/echo", headers={"x-csrf-token": other})
        assert (crossed.status_code, crossed.json()["reason"]) == (403, csrf.REASON_BAD_TOKEN)
        cookie = mine.cookies["csrf"]
        nonce, issued, mac = cookie.split(".")
        other_last = "B" if nonce.endswith("A") else "A"  # one in 16 nonces ends in "A"
        for bad in (
            f"{nonce[:-1]}{other_last}.{issued}.{mac}",
            f"{nonce}.{int(issued) + 1}.{mac}",
            "x",
            "",
            f"{cookie}; csrf={cookie}",  # sent twice: which one counts is anyone's guess
        ):
            mine.cookies.clear()
            headers = {"x-csrf-token": token, "cookie": f"csrf={bad}"}
            refused = await mine.post("/echo", headers=headers)
            assert refused.status_code == 403  # a forged cookie is present: a token is due
            assert refused.json()["reason"] == csrf.REASON_BAD_TOKEN
    assert count() == before  # neither checking nor refusing stored anything


async def test_pre_session_cookie_expires_after_two_hours(
    library: tuple[Any, FakeClock, Callable[[], int]],
) -> None:
    """Past MAX_AGE the cookie verifies nothing, even if the browser kept it."""
    app, clock, _ = library
    async with _client(app) as client:
        token = (await client.get("/token")).json()["csrfToken"]
        clock.advance(MAX_AGE - 1)
        assert (await client.post("/echo", headers={"x-csrf-token": token})).status_code == 200
        clock.advance(2)
        expired = await client.post("/echo", headers={"x-csrf-token": token})
        assert (expired.status_code, expired.json()["reason"]) == (403, csrf.REASON_BAD_TOKEN)


async def test_a_session_is_stored_once_the_application_writes(
    library: tuple[Any, FakeClock, Callable[[], int]],
) -> None:
    """Writing a value stores the session; the pre-session token keeps serving it, anonymous."""
    app, _, count = library
    before = count()
    async with _client(app) as client:
        token = (await client.get("/token")).json()["csrfToken"]
        assert count() == before
        wrote = await client.post("/write", headers={"x-csrf-token": token})
        assert wrote.status_code == 200
        assert count() == before + 1
        assert "session" in client.cookies
        again = await client.post("/echo", headers={"x-csrf-token": token})
        assert again.status_code == 200
        fresh = (await client.get("/token")).json()["csrfToken"]  # now the session's own
        assert (await client.post("/echo", headers={"x-csrf-token": fresh})).status_code == 200
        client.cookies.delete("csrf")
        assert (await client.post("/echo", headers={"x-csrf-token": token})).status_code == 403
