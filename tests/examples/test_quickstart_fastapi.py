"""docs/snippets/quickstart_fastapi.py: the FastAPI quickstart, as printed, on Redis and SQLite."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path
from types import ModuleType

import httpx
import pytest

from tests.support.examples import load_file
from tests.support.services.ports import free_port

SECRET = "quickstart-secret-" * 3


@pytest.fixture(params=["redis", "sqlite"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'sessions.db'}"
    redis_url: str = request.getfixturevalue("redis_url")
    prefix: str = request.getfixturevalue("redis_prefix")
    return f"{redis_url}?prefix={prefix}"


@pytest.fixture
def quickstart(tmp_path: Path, store_url: str, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    monkeypatch.setenv("APP_SECRET", SECRET)
    monkeypatch.setenv("APP_DATABASE", f"sqlite:///{tmp_path / 'app.db'}")
    monkeypatch.setenv("APP_STORE", store_url)
    monkeypatch.delenv("APP_SECURE", raising=False)
    return load_file("docs/snippets/quickstart_fastapi.py", "quickstart_fastapi")


@pytest.fixture
async def client(quickstart: ModuleType, tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    add_user = load_file("docs/snippets/add_user.py", "quickstart_add_user").add_user
    database = f"sqlite:///{tmp_path / 'app.db'}"
    assert await add_user("alice@example.com", "correct horse battery", "admin", database) == 1
    assert await add_user("bob@example.com", "another long password", "user", database) == 2
    app = quickstart.app
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            yield http


async def test_quickstart_walk(client: httpx.AsyncClient) -> None:
    """The quickstart's curl session: csrf, login, /me, /admin, logout with the new token."""
    assert (await client.get("/me")).status_code == 401
    token = (await client.get("/csrf")).json()["csrfToken"]
    assert list(client.cookies) == ["csrf"]  # the names the page gives for plain http
    body = {"email": "alice@example.com", "password": "correct horse battery"}
    login = await client.post("/login", json=body, headers={"X-CSRF-Token": token})
    assert login.status_code == 200
    assert list(client.cookies) == ["session"]
    assert login.json()["user"] == {"id": 1, "role": "admin"}
    assert (await client.get("/me")).json() == {
        "id": 1,
        "email": "alice@example.com",
        "role": "admin",
    }
    assert (await client.get("/admin")).json() == {"message": "Hello, admin 1"}
    assert (await client.post("/logout", headers={"X-CSRF-Token": token})).status_code == 403
    new_token = login.json()["csrfToken"]
    assert (await client.post("/logout", headers={"X-CSRF-Token": new_token})).status_code == 200
    assert (await client.get("/me")).status_code == 401


async def test_quickstart_role_and_password_checks(client: httpx.AsyncClient) -> None:
    """A wrong password is 401; a non-admin is 403 on /admin; no token after /csrf is 403."""
    token = (await client.get("/csrf")).json()["csrfToken"]
    wrong = {"email": "bob@example.com", "password": "not the password"}
    refused = await client.post("/login", json=wrong, headers={"X-CSRF-Token": token})
    assert refused.status_code == 401
    right = {"email": "bob@example.com", "password": "another long password"}
    assert (await client.post("/login", json=right)).status_code == 403
    assert (await client.post("/login", json=right, headers={"X-CSRF-Token": token})).is_success
    denied = await client.get("/admin")
    assert denied.status_code == 403
    assert denied.json() == {"error": "Insufficient permissions"}


async def test_quickstart_refusals_all_answer_error_json(client: httpx.AsyncClient) -> None:
    """401, 429 (with Retry-After) and a bad body answer {"error": ...}, as the guards do."""
    wrong = {"email": "bob@example.com", "password": "not the password"}
    refused = await client.post("/login", json=wrong)
    assert (refused.status_code, refused.json()) == (401, {"error": "Invalid credentials"})
    for _ in range(4):  # five failures for one account within the window
        assert (await client.post("/login", json=wrong)).status_code == 401
    throttled = await client.post("/login", json=wrong)
    assert (throttled.status_code, throttled.json()) == (429, {"error": "Too many attempts"})
    assert 0 < int(throttled.headers["retry-after"]) <= 900
    malformed = await client.post("/login", json={"email": "bob@example.com"})
    assert (malformed.status_code, malformed.json()) == (400, {"error": "Invalid request body"})
    assert (await client.get("/me")).json() == {"error": "Authentication required"}


async def test_a_browser_sent_to_the_login_page_finds_it(client: httpx.AsyncClient) -> None:
    """The guards' redirect leads to a page: GET /login is 200 (it was 405, POST only)."""
    browser = {"accept": "text/html,application/xhtml+xml"}
    redirect = await client.get("/me", headers=browser)
    assert (redirect.status_code, redirect.headers["location"]) == (303, "/login?next=%2Fme")
    page = await client.get(redirect.headers["location"], headers=browser)
    assert page.status_code == 200


async def test_the_guarded_routes_show_the_lock_in_openapi(client: httpx.AsyncClient) -> None:
    """require_auth and require_role declare the session cookie; the login does not."""
    schema = (await client.get("/openapi.json")).json()
    assert schema["components"]["securitySchemes"]["sessionCookie"]["in"] == "cookie"
    for method, path in (("get", "/me"), ("get", "/admin"), ("post", "/logout")):
        assert schema["paths"][path][method]["security"] == [{"sessionCookie": []}], path
    assert "security" not in schema["paths"]["/login"]["post"]


async def test_openapi_names_the_cookie_the_middleware_sets(client: httpx.AsyncClient) -> None:
    """/docs names ``session`` over plain http, the cookie the login sets (not __Host-session)."""
    token = (await client.get("/csrf")).json()["csrfToken"]
    body = {"email": "alice@example.com", "password": "correct horse battery"}
    assert (await client.post("/login", json=body, headers={"X-CSRF-Token": token})).is_success
    schema = (await client.get("/openapi.json")).json()
    assert list(client.cookies) == [
        schema["components"]["securitySchemes"]["sessionCookie"]["name"]
    ]


async def test_login_with_redis_down_is_a_fast_503(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Redis refusing connections: POST /login is the 503 the page promises (it was a 500)."""
    monkeypatch.setenv("APP_SECRET", SECRET)
    monkeypatch.setenv("APP_DATABASE", f"sqlite:///{tmp_path / 'app.db'}")
    monkeypatch.setenv("APP_STORE", f"redis://127.0.0.1:{free_port()}/12")
    monkeypatch.delenv("APP_SECURE", raising=False)
    app = load_file("docs/snippets/quickstart_fastapi.py", "quickstart_fastapi_down").app
    add_user = load_file("docs/snippets/add_user.py", "quickstart_add_user").add_user
    await add_user(
        "alice@example.com", "correct horse battery", "admin", f"sqlite:///{tmp_path / 'app.db'}"
    )
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            token = (await client.get("/csrf")).json()["csrfToken"]
            body = {"email": "alice@example.com", "password": "correct horse battery"}
            started = time.monotonic()
            response = await client.post("/login", json=body, headers={"X-CSRF-Token": token})
            elapsed = time.monotonic() - started
    assert response.status_code == 503, response.text
    assert response.json() == {"error": "Service temporarily unavailable, please retry"}
    assert int(response.headers["retry-after"]) >= 1
    assert elapsed < 2.0  # a refused connection fails at once; no timeout waited out
