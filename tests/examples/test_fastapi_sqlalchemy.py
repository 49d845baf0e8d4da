"""examples/fastapi_sqlalchemy: the application's own SQLAlchemy users, sessions in Redis.

The walk (login, the own user object, roles, the login page, logout, the OpenAPI lock), and
the authorization races of tests/security/test_authorization_races.py on this setup: a login
in flight while the application changes the account in its own table (then calls
``principal_changed``) never outlives the change.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import httpx
import pytest
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine

from tests.security.test_authorization_races import GatedHasher
from tests.support.examples import load_file
from tests.support.services.ports import free_port

pytestmark = pytest.mark.redis

SECRET = "sqlalchemy-example-secret-" * 2
PASSWORD = "correct horse battery"
NEW_PASSWORD = "another horse battery"
BROWSER = "text/html,application/xhtml+xml"


@pytest.fixture
def example(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, redis_url: str, redis_prefix: str
) -> ModuleType:
    monkeypatch.setenv("APP_SECRET", SECRET)
    monkeypatch.setenv("APP_DATABASE", f"sqlite+aiosqlite:///{tmp_path / 'accounts.db'}")
    monkeypatch.setenv("APP_STORE", f"{redis_url}?prefix={redis_prefix}")
    monkeypatch.delenv("APP_SECURE", raising=False)
    module = load_file("examples/fastapi_sqlalchemy/main.py", "fastapi_sqlalchemy_app")
    module.app.state.hasher = GatedHasher.gated()
    return module


@dataclass
class Running:
    """The example inside its lifespan, with clients."""

    example: ModuleType
    clients: list[httpx.AsyncClient]

    @property
    def hasher(self) -> GatedHasher:
        hasher: GatedHasher = self.example.app.state.hasher
        return hasher

    def client(self) -> httpx.AsyncClient:
        transport = httpx.ASGITransport(app=self.example.app)
        client = httpx.AsyncClient(transport=transport, base_url="http://testserver")
        self.clients.append(client)
        return client

    async def account(self, role: str) -> tuple[int, str]:
        email = f"race-{secrets.token_hex(6)}@example.com"
        user_id: int = await self.example.add_user(email, PASSWORD, role)
        return user_id, email

    async def login(self, client: httpx.AsyncClient, email: str) -> httpx.Response:
        token = (await client.get("/csrf")).json()["csrfToken"]
        body = {"email": email, "password": PASSWORD}
        return await client.post("/login", json=body, headers={"X-CSRF-Token": token})

    async def signed_in(self, email: str) -> httpx.AsyncClient:
        client = self.client()
        response = await self.login(client, email)
        assert response.status_code == 200, response.text
        client.headers["X-CSRF-Token"] = response.json()["csrfToken"]
        return client


@pytest.fixture
async def running(example: ModuleType) -> AsyncIterator[Running]:
    app = example.app
    async with app.router.lifespan_context(app):
        running = Running(example, [])
        yield running
        for client in running.clients:
            await client.aclose()


async def test_the_walk(running: Running) -> None:
    """Login, the own Account object, the admin route, the login page, logout."""
    _, admin_email = await running.account("admin")
    _, user_email = await running.account("user")
    anonymous = running.client()
    assert (await anonymous.get("/me")).status_code == 401
    redirect = await anonymous.get("/me", headers={"accept": BROWSER})
    assert (redirect.status_code, redirect.headers["location"]) == (303, "/login?next=%2Fme")
    assert (await anonymous.get(redirect.headers["location"])).status_code == 200
    admin = await running.signed_in(admin_email)
    me = (await admin.get("/me")).json()
    assert (me["email"], me["displayName"]) == (admin_email, "")
    assert (await admin.get("/admin")).json()["userId"] == me["id"]  # an int, as the table's
    user = await running.signed_in(user_email)
    assert (await user.get("/admin")).status_code == 403
    assert (await user.post("/logout")).json() == {"success": True}
    assert (await user.get("/me")).status_code == 401


async def test_the_sources_password_write_is_a_compare_and_set(running: Running) -> None:
    """A write over a hash that changed since it was read is refused, not applied."""
    user_id, _ = await running.account("user")
    users = running.example.users
    read = (await users.get(user_id)).password_hash
    assert await users.set_password(user_id, "$argon2id$first", replacing=read) is True
    assert await users.set_password(user_id, "$argon2id$late", replacing=read) is False
    assert (await users.get(user_id)).password_hash == "$argon2id$first"
    assert await users.set_password(user_id + 1000, "$argon2id$x", replacing=read) is False


async def test_wrong_passwords_and_unknown_emails_are_the_same_401(running: Running) -> None:
    """The Authenticator's uniform failure holds on the application's own table."""
    _, email = await running.account("user")
    client = running.client()
    token = (await client.get("/csrf")).json()["csrfToken"]
    for body in (
        {"email": email, "password": "wrong password!"},
        {"email": "x@y.z", "password": PASSWORD},
    ):
        response = await client.post("/login", json=body, headers={"X-CSRF-Token": token})
        assert (response.status_code, response.json()) == (401, {"error": "Invalid credentials"})


async def test_every_refusal_is_an_error_object(running: Running) -> None:
    """A malformed body, a missing account and a wrong current password: {"error": ...}."""
    _, admin_email = await running.account("admin")
    admin = await running.signed_in(admin_email)
    bad_body = await admin.post("/password", json={"current_password": 1})
    assert (bad_body.status_code, bad_body.json()) == (400, {"error": "Invalid request body"})
    missing = await admin.patch("/users/999999", json={"role": "user"})
    assert (missing.status_code, missing.json()) == (404, {"error": "No such user"})
    body = {"current_password": "not the password", "new_password": NEW_PASSWORD}
    wrong = await admin.post("/password", json=body)
    assert (wrong.status_code, wrong.json()) == (401, {"error": "Invalid credentials"})


async def test_an_unreachable_accounts_database_is_a_503(running: Running, tmp_path: Path) -> None:
    """current_user's source raising StoreUnavailable: 503 with Retry-After, not a 500."""
    _, email = await running.account("user")
    client = await running.signed_in(email)
    users = running.example.users
    working = users.sessionmaker
    # A real SQLAlchemy engine on a file that cannot be opened: OperationalError on each use.
    gone = create_async_engine(f"sqlite+aiosqlite:///{tmp_path / 'no' / 'such' / 'dir.db'}")
    users.sessionmaker = async_sessionmaker(gone)
    try:
        response = await client.get("/me")
    finally:
        users.sessionmaker = working
        await gone.dispose()
    assert response.status_code == 503
    assert response.json() == {"error": "Service temporarily unavailable, please retry"}
    assert int(response.headers["retry-after"]) >= 1
    assert (await client.get("/me")).status_code == 200  # the session survived the outage


async def test_login_with_the_session_store_down_is_a_fast_503(
    example: ModuleType, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Redis refusing connections: POST /login answers 503 quickly (it was a 500)."""
    monkeypatch.setenv("APP_STORE", f"redis://127.0.0.1:{free_port()}/12")
    down = load_file("examples/fastapi_sqlalchemy/main.py", "fastapi_sqlalchemy_down")
    _, email = await Running(example, []).account("user")  # the accounts database works
    app = down.app
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            token = (await client.get("/csrf")).json()["csrfToken"]
            body = {"email": email, "password": PASSWORD}
            started = time.monotonic()
            response = await client.post("/login", json=body, headers={"X-CSRF-Token": token})
            elapsed = time.monotonic() - started
    assert response.status_code == 503, response.text
    assert response.json() == {"error": "Service temporarily unavailable, please retry"}
    assert int(response.headers["retry-after"]) >= 1
    assert elapsed < 2.0  # a refused connection fails at once; no timeout waited out


async def test_openapi_names_the_cookie_the_middleware_sets(
    running: Running, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Over plain http the cookie is ``session``, and /docs says so (it said __Host-session)."""
    _, email = await running.account("user")
    client = await running.signed_in(email)
    schema = (await client.get("/openapi.json")).json()
    assert list(client.cookies) == [
        schema["components"]["securitySchemes"]["sessionCookie"]["name"]
    ]
    assert list(client.cookies) == ["session"]
    monkeypatch.setenv("APP_SECURE", "1")
    secure = load_file("examples/fastapi_sqlalchemy/main.py", "fastapi_sqlalchemy_secure")
    schema = secure.app.openapi()
    assert schema["components"]["securitySchemes"]["sessionCookie"]["name"] == "__Host-session"


async def test_openapi_shows_the_lock(running: Running) -> None:
    """/docs shows the session cookie on the guarded routes, not on the login."""
    schema = (await running.client().get("/openapi.json")).json()
    scheme = schema["components"]["securitySchemes"]["sessionCookie"]
    assert (scheme["type"], scheme["in"], scheme["name"]) == ("apiKey", "cookie", "session")
    assert schema["paths"]["/me"]["get"]["security"] == [{"sessionCookie": []}]
    assert schema["paths"]["/users/{user_id}"]["patch"]["security"] == [{"sessionCookie": []}]
    assert "security" not in schema["paths"]["/login"]["post"]


Change = Callable[[Running, int, httpx.AsyncClient, httpx.AsyncClient], Awaitable[int]]


async def _patch(admin: httpx.AsyncClient, victim: int, body: dict[str, object]) -> int:
    return (await admin.patch(f"/users/{victim}", json=body)).status_code


async def _demote(
    run: Running, victim: int, admin: httpx.AsyncClient, own: httpx.AsyncClient
) -> int:
    return await _patch(admin, victim, {"role": "user"})


async def _disable(
    run: Running, victim: int, admin: httpx.AsyncClient, own: httpx.AsyncClient
) -> int:
    return await _patch(admin, victim, {"disabled": True})


async def _reset(
    run: Running, victim: int, admin: httpx.AsyncClient, own: httpx.AsyncClient
) -> int:
    return await _patch(admin, victim, {"password": NEW_PASSWORD})


async def _delete(
    run: Running, victim: int, admin: httpx.AsyncClient, own: httpx.AsyncClient
) -> int:
    return (await admin.delete(f"/users/{victim}")).status_code


async def _change(
    run: Running, victim: int, admin: httpx.AsyncClient, own: httpx.AsyncClient
) -> int:
    body = {"current_password": PASSWORD, "new_password": NEW_PASSWORD}
    return (await own.post("/password", json=body)).status_code


CHANGES: dict[str, Change] = {
    "demote": _demote,
    "disable": _disable,
    "delete": _delete,
    "password_change": _change,
    "password_reset": _reset,
}


async def _race(run: Running, kind: str, *, gated: bool) -> httpx.AsyncClient:
    """One login of the victim against the change; return the racing login's client."""
    _, admin_email = await run.account("admin")
    victim, email = await run.account("admin" if kind == "demote" else "user")
    admin, own, racer = await run.signed_in(admin_email), await run.signed_in(email), run.client()
    token = (await racer.get("/csrf")).json()["csrfToken"]
    if gated:
        run.hasher.arm()
    body = {"email": email, "password": PASSWORD}
    login = asyncio.create_task(racer.post("/login", json=body, headers={"X-CSRF-Token": token}))
    if gated:
        await run.hasher.entered.wait()
    try:
        assert await CHANGES[kind](run, victim, admin, own) == 200
    finally:
        run.hasher.release.set()
    response = await login
    assert response.status_code in (200, 401), response.text
    if response.status_code == 200:
        racer.headers["X-CSRF-Token"] = response.json()["csrfToken"]
    return racer


async def _assert_no_old_rights(kind: str, racer: httpx.AsyncClient) -> None:
    if kind == "demote":
        assert (await racer.get("/admin")).status_code in (401, 403)
        assert (await racer.patch("/users/1", json={"role": "admin"})).status_code in (401, 403)
        return
    for path in ("/admin", "/me"):  # /admin first: the guard alone, no users read
        assert (await racer.get(path)).status_code == 401, path


@pytest.mark.parametrize("kind", CHANGES)
async def test_a_held_login_gets_no_old_rights(running: Running, kind: str) -> None:
    """A login held after its password check until the change returned keeps no old right."""
    await _assert_no_old_rights(kind, await _race(running, kind, gated=True))


@pytest.mark.parametrize("kind", CHANGES)
async def test_free_running_logins_get_no_old_rights(running: Running, kind: str) -> None:
    """Logins interleaved freely with the change keep no old right either (five trials)."""
    for _ in range(5):
        await _assert_no_old_rights(kind, await _race(running, kind, gated=False))


async def test_a_change_without_principal_changed_keeps_the_old_rights(running: Running) -> None:
    """The documented window: a role written to the table alone changes nothing until told."""
    victim, email = await running.account("admin")
    client = await running.signed_in(email)
    async with running.example.sessionmaker.begin() as db:
        (await db.get(running.example.Account, victim)).role = "user"
    assert (await client.get("/admin")).status_code == 200
    await running.example.app.state.auth.principal_changed(victim, end_sessions=False)
    assert (await client.get("/admin")).status_code == 403
