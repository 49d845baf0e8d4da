"""examples/starlette_sqlite: the documented Starlette app, walked from login to logout."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from types import ModuleType

import httpx
import pytest

from tests.support.examples import load_file

SECRET = "example-secret-" * 4


@pytest.fixture
def example(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    monkeypatch.setenv("APP_SECRET", SECRET)
    monkeypatch.setenv("APP_DATABASE", f"sqlite:///{tmp_path / 'example.db'}")
    monkeypatch.delenv("APP_SECURE", raising=False)
    return load_file("examples/starlette_sqlite/app.py", "starlette_sqlite_app")


@pytest.fixture
async def client(example: ModuleType) -> AsyncIterator[httpx.AsyncClient]:
    app = example.app
    await example.add_user("alice@example.com", "correct horse battery", "admin")
    await example.add_user("bob@example.com", "another long password", "user")
    # --8<-- [start:client]
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            yield http
    # --8<-- [end:client]


async def sign_in(http: httpx.AsyncClient, email: str, password: str) -> httpx.Response:
    token = (await http.get("/csrf")).json()["csrfToken"]
    body = {"email": email, "password": password}
    return await http.post("/login", json=body, headers={"X-CSRF-Token": token})


async def test_login_protected_admin_logout(client: httpx.AsyncClient) -> None:
    """Signed out 401; login gives /me and /admin; logout needs the login's token, then 401."""
    assert (await client.get("/me")).status_code == 401
    before = (await client.get("/csrf")).json()["csrfToken"]
    login = await client.post(
        "/login",
        json={"email": "alice@example.com", "password": "correct horse battery"},
        headers={"X-CSRF-Token": before},
    )
    assert login.status_code == 200
    assert login.json()["user"]["role"] == "admin"
    me = await client.get("/me")
    assert me.json() == {"id": 1, "email": "alice@example.com", "role": "admin"}
    assert (await client.get("/admin")).json() == {"message": "Admin area"}
    # The token fetched before the login belonged to the pre-session: it no longer verifies.
    stale = await client.post("/logout", headers={"X-CSRF-Token": before})
    assert stale.status_code == 403
    assert (await client.post("/logout")).status_code == 403
    out = await client.post("/logout", headers={"X-CSRF-Token": login.json()["csrfToken"]})
    assert out.json() == {"success": True}
    assert (await client.get("/me")).status_code == 401


async def test_role_check_and_wrong_password(client: httpx.AsyncClient) -> None:
    """A wrong password is 401; a user without the admin role gets 403 on /admin."""
    wrong = await sign_in(client, "bob@example.com", "not his password")
    assert wrong.status_code == 401
    assert wrong.json() == {"error": "Invalid credentials"}
    assert (await sign_in(client, "bob@example.com", "another long password")).status_code == 200
    assert (await client.get("/me")).json()["role"] == "user"
    denied = await client.get("/admin")
    assert denied.status_code == 403
    assert denied.json() == {"error": "Insufficient permissions"}


async def test_login_without_token_after_csrf_cookie_is_refused(client: httpx.AsyncClient) -> None:
    """Once the client holds the pre-session cookie, a login without the token is 403."""
    await client.get("/csrf")
    body = {"email": "alice@example.com", "password": "correct horse battery"}
    refused = await client.post("/login", json=body)
    assert refused.status_code == 403
    assert (await client.get("/me")).status_code == 401


async def test_the_login_redirect_leads_to_a_page(client: httpx.AsyncClient) -> None:
    """A browser sent to /login?next=/me gets a page (it was 405: POST /login only)."""
    browser = {"accept": "text/html,application/xhtml+xml"}
    redirect = await client.get("/me", headers=browser)
    assert (redirect.status_code, redirect.headers["location"]) == (303, "/login?next=%2Fme")
    page = await client.get(redirect.headers["location"], headers=browser)
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")


async def test_refusals_are_error_objects(client: httpx.AsyncClient) -> None:
    """A wrong password is 401 {"error": ...} through exception_handlers, with no try/except."""
    wrong = await sign_in(client, "alice@example.com", "not the password!")
    assert (wrong.status_code, wrong.json()) == (401, {"error": "Invalid credentials"})
