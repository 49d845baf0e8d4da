"""Every example app answers a bad JSON body to POST /login with 400 ``{"error": ...}``, never 500.

Malformed JSON, bytes that are not UTF-8, nesting deeper than the parser recurses, a JSON
value that is not an object, fields of the wrong type and missing fields: each is the
client's mistake, and each app says so clearly, before any password is checked.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from tests.support.examples import load_file

SECRET = "bad-bodies-example-secret-" * 2
JSON = {"Content-Type": "application/json"}

BAD_BODIES = {
    "truncated": b'{"email": "alice@example.com", "password": ',
    "not-json": b"email=alice@example.com&password=x",
    "empty": b"",
    "not-utf8": b'{"email": "\xff\xfe"}',
    "too-deep": b"[" * 100_000 + b"]" * 100_000,
    "array": b'["alice@example.com", "correct horse battery"]',
    "string": b'"alice@example.com"',
    "null": b"null",
    "number-email": b'{"email": 123, "password": "correct horse battery"}',
    "null-password": b'{"email": "alice@example.com", "password": null}',
    "list-email": b'{"email": ["alice@example.com"], "password": "correct horse battery"}',
    "object-password": b'{"email": "alice@example.com", "password": {"p": 1}}',
    "missing-password": b'{"email": "alice@example.com"}',
    "missing-both": b"{}",
}

APPS = {
    "starlette_sqlite": "examples/starlette_sqlite/app.py",
    "fastapi_sqlalchemy": "examples/fastapi_sqlalchemy/main.py",
    "quickstart_fastapi": "docs/snippets/quickstart_fastapi.py",
}


@pytest.fixture(params=sorted(APPS))
async def client(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[httpx.AsyncClient]:
    """One example app on SQLite files of its own, inside its lifespan."""
    name: str = request.param
    monkeypatch.setenv("APP_SECRET", SECRET)
    driver = "sqlite+aiosqlite" if name == "fastapi_sqlalchemy" else "sqlite"
    monkeypatch.setenv("APP_DATABASE", f"{driver}:///{tmp_path / 'accounts.db'}")
    monkeypatch.setenv("APP_STORE", f"sqlite:///{tmp_path / 'sessions.db'}")
    monkeypatch.delenv("APP_SECURE", raising=False)
    app = load_file(APPS[name], f"bad_bodies_{name}").app
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            yield http


@pytest.mark.parametrize("body", BAD_BODIES.values(), ids=BAD_BODIES.keys())
async def test_a_bad_login_body_is_a_clear_400(client: httpx.AsyncClient, body: bytes) -> None:
    """The answer is 400 with a JSON ``{"error": <text>}`` body, not a 500 or a 401."""
    response = await client.post("/login", content=body, headers=JSON)
    assert response.status_code == 400, response.text
    error = response.json()
    assert set(error) == {"error"}
    assert isinstance(error["error"], str)
    assert error["error"]


async def test_a_good_body_still_reaches_the_password_check(client: httpx.AsyncClient) -> None:
    """A well-formed body for no account is 401 Invalid credentials, as before."""
    body = {"email": "nobody@example.com", "password": "correct horse battery"}
    response = await client.post("/login", json=body)
    assert (response.status_code, response.json()) == (401, {"error": "Invalid credentials"})
