"""The reference server's JSON API, driven in process over a real SQLite database."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
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
from sessionauth.stores.users import User

PASSWORD = "correct horse battery"
AUTH_REQUIRED = {"error": "Authentication required"}
INSUFFICIENT = {"error": "Insufficient permissions"}
INVALID = {"error": "Invalid credentials"}


@dataclass
class Server:
    """The app inside its lifespan, and a factory of clients (each its own cookie jar)."""

    app: FastAPI
    clients: list[httpx.AsyncClient] = field(default_factory=list)

    def client(self, **kwargs: Any) -> httpx.AsyncClient:
        transport = httpx.ASGITransport(app=self.app, **kwargs)
        client = httpx.AsyncClient(transport=transport, base_url="http://testserver")
        self.clients.append(client)
        return client

    async def add_user(self, email: str, role: str = "user", password: str = PASSWORD) -> User:
        auth = self.app.state.authenticator
        user: User = await auth.users.create(email, await auth.hasher.hash(password), role=role)
        return user

    async def signed_in(self, email: str, role: str = "user") -> tuple[User, httpx.AsyncClient]:
        user = await self.add_user(email, role)
        client = self.client()
        response = await login(client, email)
        assert response.status_code == 200
        return user, client


def settings_for(tmp_path: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "env": "development",
        "database_url": f"sqlite:///{tmp_path / 'users.db'}",
        "data_dir": tmp_path / "data",
        "secret": "s" * 40,
        "allowed_origins": ("https://app.example.com",),
    }
    values.update(overrides)
    return Settings(**values)


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[Server]:
    app = create_app(settings_for(tmp_path), hasher=PasswordHasher.for_tests())
    async with app.router.lifespan_context(app):
        running = Server(app)
        yield running
        for client in running.clients:
            await client.aclose()


async def login(client: httpx.AsyncClient, email: str, password: str = PASSWORD) -> httpx.Response:
    return await client.post("/login", json={"email": email, "password": password})


async def csrf(client: httpx.AsyncClient) -> dict[str, str]:
    response = await client.get("/csrf-token")
    return {"X-CSRF-Token": response.json()["csrfToken"]}


# -- the tutorial's routes ------------------------------------------------------------------


async def test_login_answers_the_user_and_sets_a_new_session_cookie(server: Server) -> None:
    """POST /login: 200 with the exact body and an HttpOnly, SameSite=Lax session cookie."""
    user = await server.add_user("alice@example.com")
    response = await login(server.client(), "Alice@Example.com")
    assert response.status_code == 200
    body = response.json()
    token = body.pop("csrfToken")  # the session's, fresh: see test_presession.py
    assert isinstance(token, str)
    assert len(token) == 86
    assert body == {
        "success": True,
        "user": {"id": user.id, "email": "alice@example.com", "role": "user"},
    }
    cookie = response.headers["set-cookie"]
    assert cookie.startswith("session=")
    assert "HttpOnly" in cookie
    assert "SameSite=Lax" in cookie
    assert "Secure" not in cookie
    assert response.headers["cache-control"] == "no-store"


@pytest.mark.parametrize(
    ("email", "password"),
    [("alice@example.com", "wrong password"), ("nobody@example.com", PASSWORD)],
)
async def test_login_failures_are_one_indistinguishable_401(
    server: Server, email: str, password: str
) -> None:
    """Wrong password and unknown account both answer 401 Invalid credentials, no cookie."""
    await server.add_user("alice@example.com")
    response = await login(server.client(), email, password)
    assert (response.status_code, response.json()) == (401, INVALID)
    assert "set-cookie" not in response.headers


async def test_login_of_a_disabled_account_is_the_same_401(server: Server) -> None:
    """A disabled account cannot sign in, and learns nothing more than a wrong password."""
    user = await server.add_user("alice@example.com")
    await server.app.state.authenticator.set_disabled(user.id, True)
    response = await login(server.client(), "alice@example.com")
    assert (response.status_code, response.json()) == (401, INVALID)


@pytest.mark.parametrize(
    "body",
    [
        {"email": "alice@example.com", "password": True},
        {"email": 1, "password": PASSWORD},
        {"email": "alice@example.com"},
        {"email": "alice@example.com", "password": PASSWORD, "admin": True},
        ["alice@example.com", PASSWORD],
        {"email": "alice@example.com", "password": None},
    ],
)
async def test_login_refuses_bodies_of_the_wrong_shape(server: Server, body: Any) -> None:
    """Wrong JSON types, missing or unknown fields are 400 {"error": ...}, never coerced."""
    response = await server.client().post("/login", json=body)
    assert response.status_code == 400
    assert list(response.json()) == ["error"]
    assert response.json()["error"].startswith("Invalid request")


async def test_login_refuses_malformed_json_and_other_content_types(server: Server) -> None:
    """Malformed JSON is a 400; a form-encoded body is a 415 (the API speaks JSON only)."""
    client = server.client()
    headers = {"content-type": "application/json"}
    broken = await client.post("/login", content=b'{"email": ', headers=headers)
    assert broken.status_code == 400
    assert broken.json() == {"error": "Invalid request: malformed JSON body"}
    form = await client.post("/login", data={"email": "a@b.c", "password": PASSWORD})
    assert form.status_code == 415
    assert form.json() == {"error": "Content-Type must be application/json"}


async def test_login_body_size_is_bounded(server: Server) -> None:
    """A body over 64 KiB is refused with 413 before anything parses it."""
    huge = {"email": "alice@example.com", "password": "x" * 70_000}
    response = await server.client().post("/login", json=huge)
    assert (response.status_code, response.json()) == (413, {"error": "Request body too large"})


async def test_login_is_throttled_with_retry_after(server: Server) -> None:
    """After five failures the account answers 429 with Retry-After, even to the password."""
    await server.add_user("alice@example.com")
    client = server.client()
    for _ in range(5):
        assert (await login(client, "alice@example.com", "wrong password")).status_code == 401
    response = await login(client, "alice@example.com")
    assert response.status_code == 429
    assert response.json() == {"error": "Too many attempts, try again later"}
    assert int(response.headers["retry-after"]) > 0


async def test_logout_needs_csrf_then_ends_the_session(server: Server) -> None:
    """POST /logout: 403 without the token; with it 200, cookie cleared, session gone."""
    _, client = await server.signed_in("alice@example.com")
    refused = await client.post("/logout")
    assert refused.status_code == 403
    assert refused.json() == {"error": "CSRF check failed", "reason": "CSRF token missing"}
    response = await client.post("/logout", headers=await csrf(client))
    assert (response.status_code, response.json()) == (200, {"success": True})
    assert "Max-Age=0" in response.headers["set-cookie"]
    assert (await client.get("/dashboard")).status_code == 401


async def test_logout_without_a_session_is_401(server: Server) -> None:
    """An anonymous POST /logout is 401 Authentication required."""
    response = await server.client().post("/logout")
    assert (response.status_code, response.json()) == (401, AUTH_REQUIRED)


async def test_csrf_token_is_masked_afresh_each_time(server: Server) -> None:
    """GET /csrf-token answers {"csrfToken": ...}, a different string on every call."""
    client = server.client()
    first = (await client.get("/csrf-token")).json()
    second = (await client.get("/csrf-token")).json()
    assert list(first) == ["csrfToken"]
    assert first["csrfToken"] != second["csrfToken"]


async def test_dashboard_answers_the_user_id(server: Server) -> None:
    """GET /dashboard: 401 anonymous; {"userId": <int>} signed in."""
    anonymous = await server.client().get("/dashboard")
    assert (anonymous.status_code, anonymous.json()) == (401, AUTH_REQUIRED)
    user, client = await server.signed_in("alice@example.com")
    response = await client.get("/dashboard")
    assert (response.status_code, response.json()) == (200, {"userId": user.id})


async def test_admin_area_needs_the_admin_role(server: Server) -> None:
    """GET /admin: 401 anonymous, 403 for a user, 200 Admin area for an admin."""
    assert (await server.client().get("/admin")).json() == AUTH_REQUIRED
    _, user = await server.signed_in("alice@example.com")
    denied = await user.get("/admin")
    assert (denied.status_code, denied.json()) == (403, INSUFFICIENT)
    _, admin = await server.signed_in("root@example.com", role="admin")
    allowed = await admin.get("/admin")
    assert (allowed.status_code, allowed.json()) == (200, {"message": "Admin area"})


async def test_admin_deletes_a_user_whose_session_dies_at_once(server: Server) -> None:
    """DELETE /users/{id}: admin + CSRF; the user's next request is 401; unknown id is 404."""
    victim, victim_client = await server.signed_in("alice@example.com")
    _, admin = await server.signed_in("root@example.com", role="admin")
    assert (await admin.delete(f"/users/{victim.id}")).status_code == 403  # no CSRF token
    denied = await victim_client.delete(f"/users/{victim.id}", headers=await csrf(victim_client))
    assert (denied.status_code, denied.json()) == (403, INSUFFICIENT)
    response = await admin.delete(f"/users/{victim.id}", headers=await csrf(admin))
    assert (response.status_code, response.json()) == (200, {"success": True})
    after = await victim_client.get("/dashboard")
    assert (after.status_code, after.json()) == (401, AUTH_REQUIRED)
    again = await admin.delete(f"/users/{victim.id}", headers=await csrf(admin))
    assert (again.status_code, again.json()) == (404, {"error": "User not found"})


async def test_transfer_needs_a_session_and_csrf(server: Server) -> None:
    """POST /api/transfer: 401 anonymous, 403 without token, 200 echoing the amount."""
    anonymous = await server.client().post("/api/transfer", json={"amount": 5})
    assert anonymous.status_code == 401
    _, client = await server.signed_in("alice@example.com")
    assert (await client.post("/api/transfer", json={"amount": 5})).status_code == 403
    response = await client.post("/api/transfer", json={"amount": 12.5}, headers=await csrf(client))
    assert (response.status_code, response.json()) == (200, {"success": True, "amount": 12.5})


@pytest.mark.parametrize("amount", [0, -3, "100", True, None])
async def test_transfer_refuses_amounts_that_are_not_positive_numbers(
    server: Server, amount: Any
) -> None:
    """Zero, negative, string, boolean and null amounts are 400 {"error": ...}."""
    _, client = await server.signed_in("alice@example.com")
    response = await client.post(
        "/api/transfer", json={"amount": amount}, headers=await csrf(client)
    )
    assert response.status_code == 400
    assert "error" in response.json()


async def test_tutorial_flow_end_to_end(server: Server) -> None:
    """Login, fetch a CSRF token, transfer, read the dashboard, log out, be anonymous again."""
    user = await server.add_user("alice@example.com")
    client = server.client()
    assert (await client.get("/dashboard")).status_code == 401
    assert (await login(client, "alice@example.com")).json()["success"] is True
    token = await csrf(client)
    transfer = await client.post("/api/transfer", json={"amount": 100}, headers=token)
    assert transfer.json() == {"success": True, "amount": 100}
    assert transfer.text == '{"success":true,"amount":100}'  # an integer stays an integer
    assert (await client.get("/dashboard")).json() == {"userId": user.id}
    assert (await client.post("/logout", headers=token)).json() == {"success": True}
    assert (await client.get("/dashboard")).status_code == 401
    stale = await client.post("/api/transfer", json={"amount": 1}, headers=token)
    assert (stale.status_code, stale.json()) == (401, AUTH_REQUIRED)


# -- my account -----------------------------------------------------------------------------


async def test_me_answers_the_user_from_the_database(server: Server) -> None:
    """GET /me: 401 anonymous; id, email and role signed in."""
    assert (await server.client().get("/me")).status_code == 401
    user, client = await server.signed_in("alice@example.com")
    assert (await client.get("/me")).json() == {
        "id": user.id,
        "email": "alice@example.com",
        "role": "user",
    }


async def test_sessions_list_and_revoke_one(server: Server) -> None:
    """GET /sessions lists mine, newest first, flagging this one; DELETE /sessions/{h} ends one."""
    _, laptop = await server.signed_in("alice@example.com")
    phone = server.client()
    await login(phone, "alice@example.com")
    listing = (await laptop.get("/sessions", headers={"user-agent": "laptop"})).json()
    assert listing["nextCursor"] is None
    sessions = listing["sessions"]
    assert len(sessions) == 2
    assert set(sessions[0]) == {
        "handle",
        "created",
        "last_seen",
        "ip",
        "user_agent",
        "current",
        "remembered",
    }
    assert [s["current"] for s in sessions] == [False, True]  # the phone signed in last
    other = sessions[0]["handle"]
    response = await laptop.delete(f"/sessions/{other}", headers=await csrf(laptop))
    assert (response.status_code, response.json()) == (200, {"success": True})
    assert (await phone.get("/dashboard")).status_code == 401
    missing = await laptop.delete(f"/sessions/{other}", headers=await csrf(laptop))
    assert (missing.status_code, missing.json()) == (404, {"error": "Session not found"})
    assert (await laptop.get("/dashboard")).status_code == 200


async def test_someone_elses_handle_is_not_found(server: Server) -> None:
    """A handle of another user's session answers 404 and leaves that session alive."""
    _, alice = await server.signed_in("alice@example.com")
    _, bob = await server.signed_in("bob@example.com")
    handle = (await bob.get("/sessions")).json()["sessions"][0]["handle"]
    response = await alice.delete(f"/sessions/{handle}", headers=await csrf(alice))
    assert response.status_code == 404
    assert (await bob.get("/dashboard")).status_code == 200


async def test_revoke_others_keeps_only_this_session(server: Server) -> None:
    """POST /sessions/revoke-others ends every other session and says how many."""
    _, laptop = await server.signed_in("alice@example.com")
    phones = [server.client() for _ in range(2)]
    for phone in phones:
        await login(phone, "alice@example.com")
    response = await laptop.post("/sessions/revoke-others", headers=await csrf(laptop))
    assert response.json() == {"success": True, "revoked": 2}
    assert [(await p.get("/dashboard")).status_code for p in phones] == [401, 401]
    assert (await laptop.get("/dashboard")).status_code == 200


async def test_password_change_revokes_the_other_session(server: Server) -> None:
    """POST /password: the other session gets 401, this one lives on, the new password works."""
    _, laptop = await server.signed_in("alice@example.com")
    phone = server.client()
    await login(phone, "alice@example.com")
    body = {"current_password": PASSWORD, "new_password": "a brand new secret"}
    response = await laptop.post("/password", json=body, headers=await csrf(laptop))
    assert (response.status_code, response.json()) == (200, {"success": True, "revoked": 1})
    assert (await phone.get("/dashboard")).status_code == 401
    assert (await laptop.get("/dashboard")).status_code == 200
    assert (await login(server.client(), "alice@example.com")).status_code == 401
    assert (await login(server.client(), "alice@example.com", "a brand new secret")).is_success


async def test_password_change_failures(server: Server) -> None:
    """A wrong current password is 401, a too-short new one 400, both with {"error": ...}."""
    _, client = await server.signed_in("alice@example.com")
    wrong = {"current_password": "not it at all", "new_password": "a brand new secret"}
    response = await client.post("/password", json=wrong, headers=await csrf(client))
    assert (response.status_code, response.json()) == (401, INVALID)
    short = {"current_password": PASSWORD, "new_password": "short"}
    response = await client.post("/password", json=short, headers=await csrf(client))
    assert response.status_code == 400
    assert response.json() == {"error": "Password shorter than 8 characters"}


# -- administration -------------------------------------------------------------------------


async def test_admin_creates_lists_and_refuses_bad_users(server: Server) -> None:
    """POST /users: 201; duplicate 409; bad email, short password or bad role 400."""
    _, admin = await server.signed_in("root@example.com", role="admin")
    token = await csrf(admin)
    body = {"email": "new@example.com", "password": PASSWORD, "role": "user"}
    created = await admin.post("/users", json=body, headers=token)
    assert created.status_code == 201
    assert created.json()["user"]["email"] == "new@example.com"
    assert created.json()["user"]["disabled"] is False
    duplicate = await admin.post("/users", json=body, headers=token)
    assert (duplicate.status_code, duplicate.json()) == (
        409,
        {"error": "A user with that email already exists"},
    )
    for bad in ({"email": "no-at-sign"}, {"password": "short"}, {"role": "Super User"}):
        response = await admin.post("/users", json={**body, **bad}, headers=token)
        assert response.status_code == 400, bad
    emails = [u["email"] for u in (await admin.get("/users")).json()["users"]]
    assert "new@example.com" in emails
    assert "root@example.com" in emails


async def test_admin_routes_refuse_users(server: Server) -> None:
    """GET /users and POST /users answer 403 to a plain user."""
    _, client = await server.signed_in("alice@example.com")
    assert (await client.get("/users")).json() == INSUFFICIENT
    body = {"email": "x@example.com", "password": PASSWORD}
    response = await client.post("/users", json=body, headers=await csrf(client))
    assert response.status_code == 403


async def test_role_change_applies_to_the_live_session_at_once(server: Server) -> None:
    """PATCH /users/{id} {"role": "admin"}: the user's existing session passes /admin next."""
    user, client = await server.signed_in("alice@example.com")
    _, admin = await server.signed_in("root@example.com", role="admin")
    assert (await client.get("/admin")).status_code == 403
    response = await admin.patch(
        f"/users/{user.id}", json={"role": "admin"}, headers=await csrf(admin)
    )
    assert response.json()["user"]["role"] == "admin"
    assert (await client.get("/admin")).status_code == 200


async def test_disabling_a_user_ends_their_sessions(server: Server) -> None:
    """PATCH {"disabled": true}: the session is 401 at once and login fails; unknown id 404."""
    user, client = await server.signed_in("alice@example.com")
    _, admin = await server.signed_in("root@example.com", role="admin")
    token = await csrf(admin)
    response = await admin.patch(f"/users/{user.id}", json={"disabled": True}, headers=token)
    assert response.json()["user"]["disabled"] is True
    assert (await client.get("/dashboard")).status_code == 401
    assert (await login(server.client(), "alice@example.com")).status_code == 401
    empty = await admin.patch(f"/users/{user.id}", json={}, headers=token)
    assert empty.status_code == 400
    unknown = await admin.patch("/users/999999", json={"disabled": True}, headers=token)
    assert (unknown.status_code, unknown.json()) == (404, {"error": "User not found"})


async def test_admin_revokes_every_session_of_a_user(server: Server) -> None:
    """POST /users/{id}/revoke-sessions counts the revoked sessions; unknown id 404."""
    user, client = await server.signed_in("alice@example.com")
    _, admin = await server.signed_in("root@example.com", role="admin")
    token = await csrf(admin)
    response = await admin.post(f"/users/{user.id}/revoke-sessions", headers=token)
    assert response.json() == {"success": True, "revoked": 1}
    assert (await client.get("/dashboard")).status_code == 401
    assert (await admin.post("/users/999999/revoke-sessions", headers=token)).status_code == 404


# -- edges: origins, errors, operations -----------------------------------------------------


async def test_cross_site_posts_are_refused_and_counted(server: Server) -> None:
    """A cross-site POST /login is 403 before the handler, and shows in the metrics."""
    client = server.client()
    response = await client.post(
        "/login",
        json={"email": "a@b.c", "password": PASSWORD},
        headers={"Origin": "https://evil.example"},
    )
    assert response.status_code == 403
    assert response.json()["reason"] == "origin not trusted"
    metrics = (await client.get("/metrics")).text
    assert 'sessionauth_csrf_rejections_total{reason="origin not trusted"} 1.0' in metrics


async def test_cors_answers_the_trusted_origin_only(server: Server) -> None:
    """A preflight from the trusted origin is allowed with credentials; another gets nothing."""
    client = server.client()
    preflight = {"Access-Control-Request-Method": "POST"}
    trusted = await client.options(
        "/login", headers={"Origin": "https://app.example.com", **preflight}
    )
    assert trusted.headers["access-control-allow-origin"] == "https://app.example.com"
    assert trusted.headers["access-control-allow-credentials"] == "true"
    other = await client.options("/login", headers={"Origin": "https://evil.example", **preflight})
    assert "access-control-allow-origin" not in other.headers


async def test_errors_are_always_json(server: Server) -> None:
    """Unknown paths, wrong methods and bad path parameters answer {"error": ...}."""
    client = server.client()
    missing = await client.get("/no/such/thing")
    assert (missing.status_code, missing.json()) == (404, {"error": "Not found"})
    wrong = await client.put("/dashboard")
    assert (wrong.status_code, wrong.json()) == (405, {"error": "Method not allowed"})
    _, admin = await server.signed_in("root@example.com", role="admin")
    bad = await admin.patch("/users/abc", json={"role": "user"}, headers=await csrf(admin))
    assert (bad.status_code, bad.json()) == (404, {"error": "User not found"})


async def test_an_unexpected_failure_is_a_bare_500(server: Server) -> None:
    """A bug in a route answers 500 {"error": "Internal server error"}, no traceback."""

    async def broken() -> None:
        raise RuntimeError("secret detail")

    server.app.add_api_route("/broken", broken)
    response = await server.client(raise_app_exceptions=False).get("/broken")
    assert (response.status_code, response.json()) == (500, {"error": "Internal server error"})
    assert "secret detail" not in response.text


async def test_store_outage_is_a_503_with_retry_after(
    server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With the session store down, a signed-in request and /readyz answer 503 JSON."""
    _, client = await server.signed_in("alice@example.com")
    store: TimedStore = server.app.state.authenticator.sessions

    async def down(*args: Any, **kwargs: Any) -> None:
        raise StoreUnavailable("injected", retry_after=3)

    monkeypatch.setattr(store.inner, "load", down)
    monkeypatch.setattr(store.inner, "ping", down)
    response = await client.get("/dashboard")
    assert response.status_code == 503
    assert response.headers["retry-after"] == "3"
    assert "error" in response.json()
    ready = await server.client().get("/readyz")  # no cookie: the route itself pings
    assert (ready.status_code, ready.json()) == (
        503,
        {"error": "Not ready: session store unavailable"},
    )
    assert (await client.get("/healthz")).status_code == 503  # the cookie still asks the store
    assert (await server.client().get("/healthz")).json() == {"status": "ok"}


async def test_health_ready_and_metrics(server: Server) -> None:
    """/healthz and /readyz answer ok; /metrics counts logins in the text format."""
    client = server.client()
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    assert (await client.get("/readyz")).json()["status"] == "ok"
    await server.signed_in("alice@example.com")
    await login(client, "alice@example.com", "wrong password")
    response = await client.get("/metrics")
    assert response.headers["content-type"].startswith("text/plain")
    assert 'sessionauth_logins_total{result="ok"} 1.0' in response.text
    assert 'sessionauth_logins_total{result="failed"} 1.0' in response.text
    assert "sessionauth_sessions_created_total 1.0" in response.text
    assert 'sessionauth_store_seconds_count{operation="create"} 1.0' in response.text


@pytest.mark.parametrize(
    ("env", "token", "sent", "status"),
    [
        ("development", None, None, 200),
        ("production", None, None, 404),
        ("production", None, "Bearer anything", 404),
        ("production", "m" * 32, None, 401),
        ("production", "m" * 32, "Bearer " + "m" * 31, 401),
        ("production", "m" * 32, "m" * 32, 401),
        ("production", "m" * 32, "Bearer " + "m" * 32, 200),
        ("development", "m" * 32, None, 401),
    ],
)
async def test_metrics_need_the_token_when_one_is_set_and_are_off_in_production_without(
    tmp_path: Path, env: str, token: str | None, sent: str | None, status: int
) -> None:
    """SESSIONAUTH_METRICS_TOKEN guards /metrics; production never serves them openly."""
    settings = settings_for(tmp_path, env=env, metrics_token=token)
    app = create_app(settings, hasher=PasswordHasher.for_tests())
    async with app.router.lifespan_context(app):
        headers = {"authorization": sent} if sent else {}
        response = await Server(app).client().get("/metrics", headers=headers)
    assert response.status_code == status
    if status == 200:
        assert "sessionauth_logins_total" in response.text
    else:
        assert "sessionauth" not in response.text
    if status == 401:
        assert response.headers["www-authenticate"] == "Bearer"


async def test_openapi_lists_every_route(server: Server) -> None:
    """/openapi.json describes every API route with its method."""
    schema = (await server.client().get("/openapi.json")).json()
    listed = {(method.upper(), path) for path, ops in schema["paths"].items() for method in ops}
    assert listed == {
        ("POST", "/login"),
        ("POST", "/logout"),
        ("GET", "/csrf-token"),
        ("GET", "/dashboard"),
        ("GET", "/admin"),
        ("DELETE", "/users/{user_id}"),
        ("PATCH", "/users/{user_id}"),
        ("POST", "/api/transfer"),
        ("GET", "/me"),
        ("GET", "/sessions"),
        ("DELETE", "/sessions/{handle}"),
        ("POST", "/sessions/revoke-others"),
        ("POST", "/password"),
        ("GET", "/users"),
        ("POST", "/users"),
        ("POST", "/users/{user_id}/revoke-sessions"),
        ("POST", "/signup"),
        ("POST", "/verify/request"),
        ("POST", "/verify"),
        ("POST", "/email"),
        ("POST", "/password/forgot"),
        ("POST", "/password/reset"),
        ("POST", "/login/mfa"),
        ("POST", "/mfa/totp/setup"),
        ("POST", "/mfa/totp/confirm"),
        ("POST", "/mfa/totp/disable"),
        ("POST", "/mfa/recovery-codes"),
        ("GET", "/passkeys"),
        ("POST", "/passkeys/register/options"),
        ("POST", "/passkeys/register"),
        ("PATCH", "/passkeys/{credential_id}"),
        ("DELETE", "/passkeys/{credential_id}"),
        ("POST", "/passkeys/login/options"),
        ("POST", "/passkeys/login"),
        ("GET", "/healthz"),
        ("GET", "/readyz"),
        ("GET", "/metrics"),
    }
    login_schema = schema["paths"]["/login"]["post"]
    assert {"200", "401", "429"} <= set(login_schema["responses"])


@pytest.mark.postgres
async def test_tutorial_flow_on_postgresql(tmp_path: Path, postgres_dsn: str) -> None:
    """Users, sessions and login counters on PostgreSQL: login, CSRF, transfer, logout."""
    settings = settings_for(tmp_path, database_url=postgres_dsn)
    app = create_app(settings, hasher=PasswordHasher.for_tests())
    async with app.router.lifespan_context(app):
        running = Server(app)
        email = f"pg-{uuid.uuid4().hex[:8]}@example.com"
        user = await running.add_user(email)
        client = running.client()
        assert (await login(client, email, "wrong password")).status_code == 401
        assert (await login(client, email)).json()["user"]["id"] == user.id
        token = await csrf(client)
        transfer = await client.post("/api/transfer", json={"amount": 7}, headers=token)
        assert transfer.json() == {"success": True, "amount": 7}
        assert (await client.get("/readyz")).json()["status"] == "ok"
        assert (await client.post("/logout", headers=token)).json() == {"success": True}
        assert (await client.get("/dashboard")).status_code == 401
        await client.aclose()
