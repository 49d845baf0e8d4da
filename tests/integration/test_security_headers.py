"""nosniff on every response in every mode, HSTS on every response in production."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from sessionauth.auth.passwords import PasswordHasher
from sessionauth.errors import StoreUnavailable
from sessionauth.server.app import create_app
from sessionauth.server.metrics import TimedStore
from sessionauth.server.settings import Settings

HSTS = "max-age=31536000; includeSubDomains"
TRUSTED = "https://app.example.com"
JSON = {"Content-Type": "application/json"}
HTML = {"Accept": "text/html"}
SAME_ORIGIN = {"Origin": "https://testserver"}

# (method, path, headers, body, expected status): the JSON API, pages, static files, and the
# answers given by every layer before or instead of a route.
REQUESTS: list[tuple[str, str, dict[str, str], bytes | None, int]] = [
    ("GET", "/healthz", {}, None, 200),
    ("GET", "/csrf-token", {}, None, 200),
    ("GET", "/login", HTML, None, 200),
    ("GET", "/static/app.css", {}, None, 200),
    ("GET", "/openapi.json", {}, None, 200),
    ("GET", "/dashboard", {}, None, 401),
    ("GET", "/account", HTML, None, 303),
    ("GET", "/no-such-page", {}, None, 404),
    ("GET", "/no-such-page", HTML, None, 404),
    ("GET", "/static/missing.css", {}, None, 404),
    ("PUT", "/dashboard", {}, None, 405),
    ("POST", "/login", JSON, b'{"email": "x@example.com", "password": "wrong password"}', 401),
    ("POST", "/login", JSON, b"{not json", 400),
    ("POST", "/login", {"Content-Type": "text/plain"}, b"x", 415),
    ("POST", "/login", JSON, b"x" * (65 * 1024), 413),
    ("POST", "/login", {**JSON, "Sec-Fetch-Site": "cross-site"}, b"{}", 403),
    ("POST", "/ui/login", {"Sec-Fetch-Site": "cross-site", **HTML}, b"", 403),
    (
        "OPTIONS",
        "/login",
        {"Origin": TRUSTED, "Access-Control-Request-Method": "POST"},
        None,
        200,
    ),
    ("GET", "/broken", {}, None, 500),
    ("GET", "/down", {}, None, 503),
]


def _settings(tmp_path: Path, env: str) -> Settings:
    return Settings(
        env=env,
        database_url=f"sqlite:///{tmp_path / 'users.db'}",
        data_dir=tmp_path / "data",
        secret="s" * 40,
        allowed_origins=(TRUSTED,),
    )


async def _broken() -> None:
    raise RuntimeError("a bug")


async def _down() -> None:
    raise StoreUnavailable("injected", retry_after=2)


@pytest.fixture(params=["development", "production"])
async def app(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[FastAPI]:
    app = create_app(_settings(tmp_path, request.param), hasher=PasswordHasher.for_tests())
    app.add_api_route("/broken", _broken)
    app.add_api_route("/down", _down)
    async with app.router.lifespan_context(app):
        yield app


async def _send(app: FastAPI, method: str, path: str, headers: dict[str, str], body: Any) -> Any:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(
        transport=transport, base_url="https://testserver", headers=SAME_ORIGIN
    ) as client:
        return await client.request(method, path, headers=headers, content=body)


async def test_every_response_carries_nosniff_and_hsts_in_production_only(app: FastAPI) -> None:
    """Each route and error path answers nosniff once; HSTS exactly in production."""
    production = app.state.settings.production
    for method, path, headers, body, status in REQUESTS:
        response = await _send(app, method, path, headers, body)
        where = f"{method} {path} {headers}"
        assert response.status_code == status, where
        assert response.headers.get_list("x-content-type-options") == ["nosniff"], where
        expected = [HSTS] if production else []
        assert response.headers.get_list("strict-transport-security") == expected, where


async def test_a_store_outage_answered_by_the_middleware_carries_the_headers(
    app: FastAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The session middleware's own 503 (store down on a cookie's load) carries nosniff."""
    store: TimedStore = app.state.authenticator.sessions
    auth = app.state.authenticator
    user = await auth.users.create("a@example.com", await auth.hasher.hash("p" * 12), role="user")
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(
        transport=transport, base_url="https://testserver", headers=SAME_ORIGIN
    ) as client:
        signed_in = await client.post("/login", json={"email": user.email, "password": "p" * 12})
        assert signed_in.status_code == 200

        async def down(*args: Any, **kwargs: Any) -> None:
            raise StoreUnavailable("injected", retry_after=2)

        monkeypatch.setattr(store.inner, "load", down)
        response = await client.get("/dashboard")
    assert response.status_code == 503
    assert response.headers.get_list("x-content-type-options") == ["nosniff"]
    production = app.state.settings.production
    assert response.headers.get_list("strict-transport-security") == ([HSTS] if production else [])
