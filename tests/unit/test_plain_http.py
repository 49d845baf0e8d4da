"""A Secure cookie set on a plain-http request logs one warning naming the fix."""

from __future__ import annotations

import logging

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from sessionauth.config import CookieConfig
from sessionauth.middleware import SessionMiddleware
from sessionauth.stores.memory import MemoryStore
from sessionauth.tokens import Keyring

KEYRING = Keyring(["k" * 40])
FIX = "CookieConfig(secure=False)"


async def login(request: Request) -> Response:
    request.session.set_user("1")
    return PlainTextResponse("logged in")


async def anonymous(request: Request) -> Response:
    return PlainTextResponse("hello")


def client(cookie: CookieConfig, scheme: str) -> httpx.AsyncClient:
    routes = [Route("/login", login, methods=["POST"]), Route("/", anonymous)]
    app = SessionMiddleware(
        Starlette(routes=routes), store=MemoryStore(), keyring=KEYRING, cookie=cookie
    )
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url=f"{scheme}://testserver"
    )


def warnings_in(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "sessionauth.config"]


async def test_secure_cookie_over_http_warns_once_naming_the_fix(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A Secure login cookie over http logs one WARNING naming CookieConfig(secure=False), once."""
    caplog.set_level(logging.WARNING, logger="sessionauth.config")
    async with client(CookieConfig(), "http") as http:
        first = await http.post("/login")
        await http.post("/login")
    assert "Secure" in first.headers["set-cookie"]
    records = warnings_in(caplog)
    assert len(records) == 1
    assert records[0].levelno == logging.WARNING
    message = records[0].getMessage()
    assert FIX in message
    assert "'__Host-session'" in message
    assert "http://testserver/login" in message


async def test_secure_cookie_over_https_is_silent(caplog: pytest.LogCaptureFixture) -> None:
    """The same login over https logs nothing: the cookie comes back."""
    caplog.set_level(logging.DEBUG, logger="sessionauth.config")
    async with client(CookieConfig(), "https") as http:
        response = await http.post("/login")
        again = await http.get("/")
    assert response.status_code == 200
    assert again.status_code == 200
    assert warnings_in(caplog) == []


async def test_insecure_cookie_over_http_is_silent(caplog: pytest.LogCaptureFixture) -> None:
    """With CookieConfig(secure=False) a login over http logs nothing."""
    caplog.set_level(logging.DEBUG, logger="sessionauth.config")
    async with client(CookieConfig(secure=False), "http") as http:
        response = await http.post("/login")
    assert response.headers["set-cookie"].startswith("session=")
    assert warnings_in(caplog) == []


async def test_http_request_setting_no_cookie_is_silent(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """An anonymous http request that sets no cookie does not warn, and leaves the warning armed."""
    caplog.set_level(logging.WARNING, logger="sessionauth.config")
    async with client(CookieConfig(), "http") as http:
        quiet = await http.get("/")
        assert "set-cookie" not in quiet.headers
        assert warnings_in(caplog) == []
        await http.post("/login")
    assert len(warnings_in(caplog)) == 1
