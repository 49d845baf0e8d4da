"""Rights are always the principal's: account changes apply at once, values grant nothing.

The reference server runs on ``memory://`` here (the store every backend is checked against in
``tests/contract/test_principals.py``); the library-level checks run a small app over
:class:`~sessionauth.middleware.SessionMiddleware` and a memory store.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import httpx
import pytest
from fastapi import Depends, FastAPI
from starlette.requests import Request

from sessionauth.auth import guards
from sessionauth.auth.authenticator import Authenticator
from sessionauth.auth.guards import require_auth, require_role, session_of
from sessionauth.auth.passwords import PasswordHasher
from sessionauth.middleware import SessionMiddleware
from sessionauth.policy import TimeoutPolicy
from sessionauth.principal import PrincipalChange
from sessionauth.stores.memory import MemoryStore
from sessionauth.tokens import Keyring
from tests.support.apps import running_app
from tests.support.backends import user_store
from tests.support.clock import FakeClock

PASSWORD = "correct horse battery"
NEW_PASSWORD = "another horse battery"


@dataclass
class Server:
    """The reference server on a memory session store, and clients with their own cookies."""

    app: FastAPI
    clients: list[httpx.AsyncClient] = field(default_factory=list)

    @property
    def auth(self) -> Authenticator:
        auth = self.app.state.authenticator
        assert isinstance(auth, Authenticator)
        return auth

    def client(self) -> httpx.AsyncClient:
        transport = httpx.ASGITransport(app=self.app)
        client = httpx.AsyncClient(transport=transport, base_url="http://testserver")
        self.clients.append(client)
        return client

    async def account(self, email: str, role: str = "user") -> int:
        return (await self.auth.create_user(email, PASSWORD, role=role)).id

    async def signed_in(self, email: str) -> tuple[httpx.AsyncClient, dict[str, Any]]:
        client = self.client()
        response = await client.post("/login", json={"email": email, "password": PASSWORD})
        assert response.status_code == 200, response.text
        body = response.json()
        client.headers["X-CSRF-Token"] = body["csrfToken"]
        return client, body


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[Server]:
    """The reference server, sessions in memory, at most five sessions per user."""
    async with running_app(tmp_path, store_url="memory://", max_sessions_per_user=5) as app:
        running = Server(app)
        yield running
        for client in running.clients:
            await client.aclose()


async def test_a_demoted_admins_live_session_loses_admin_at_once(server: Server) -> None:
    """Demoting an admin: their existing session answers 403 on admin routes at once."""
    victim = await server.account("victim@example.com", "admin")
    await server.account("other@example.com", "admin")
    client, body = await server.signed_in("victim@example.com")
    assert body["user"]["role"] == "admin"
    assert (await client.get("/admin")).status_code == 200
    await server.auth.set_role(victim, "user")
    assert (await client.get("/admin")).status_code == 403
    assert (await client.get("/dashboard")).status_code == 200  # signed in, without the role
    assert (await client.get("/users")).status_code == 403


async def test_a_disabled_accounts_sessions_answer_401_at_once(server: Server) -> None:
    """Disabling an account: every route of its live sessions answers 401 at once."""
    victim = await server.account("victim@example.com")
    client, _ = await server.signed_in("victim@example.com")
    assert (await client.get("/dashboard")).status_code == 200
    await server.auth.set_disabled(victim, True)
    for path in ("/dashboard", "/me", "/sessions"):
        assert (await client.get(path)).status_code == 401, path
    await server.auth.set_disabled(victim, False)
    assert (await client.get("/dashboard")).status_code == 401  # re-enabling revives nothing


async def test_the_login_answers_the_principals_role_until_principal_changed(
    server: Server,
) -> None:
    """A role raised behind the Authenticator's back counts only once principal_changed ran."""
    user_id = await server.account("alice@example.com", "user")
    old, _ = await server.signed_in("alice@example.com")
    await server.auth.users.set_role(user_id, "admin")  # the application's own code
    _, body = await server.signed_in("alice@example.com")
    assert body["user"]["role"] == "user"  # documented: until it runs, the old rights stand
    assert (await old.get("/admin")).status_code == 403
    assert await server.auth.principal_changed(user_id, end_sessions=False) == 0
    assert (await old.get("/admin")).status_code == 200
    _, body = await server.signed_in("alice@example.com")
    assert body["user"]["role"] == "admin"


async def test_a_login_applies_a_restriction_the_principal_missed(server: Server) -> None:
    """A users row with fewer rights than the principal is applied at the user's next login."""
    user_id = await server.account("alice@example.com", "admin")
    await server.account("other@example.com", "admin")
    old, _ = await server.signed_in("alice@example.com")
    await server.auth.users.set_role(user_id, "user")  # the application's own code
    assert (await old.get("/admin")).status_code == 200  # no login yet: the old rights stand
    _, body = await server.signed_in("alice@example.com")
    assert body["user"]["role"] == "user"
    assert (await old.get("/admin")).status_code == 403
    assert (await old.get("/dashboard")).status_code == 200


async def test_principal_changed_ends_sessions_when_asked(server: Server) -> None:
    """A password set outside the Authenticator: principal_changed(end_sessions=True) ends all."""
    user_id = await server.account("alice@example.com")
    first, _ = await server.signed_in("alice@example.com")
    second, _ = await server.signed_in("alice@example.com")
    new_hash = await server.auth.hasher.hash(NEW_PASSWORD)
    await server.auth.users.set_password(user_id, new_hash)
    assert (await first.get("/dashboard")).status_code == 200
    assert await server.auth.principal_changed(user_id, end_sessions=True) == 2
    assert (await first.get("/dashboard")).status_code == 401
    assert (await second.get("/dashboard")).status_code == 401


async def test_sessions_beyond_the_cap_end_the_oldest(server: Server) -> None:
    """With SESSIONAUTH_MAX_SESSIONS_PER_USER=5 a sixth login ends the first session only."""
    await server.account("alice@example.com")
    clients = [(await server.signed_in("alice@example.com"))[0] for _ in range(6)]
    statuses = [(await client.get("/dashboard")).status_code for client in clients]
    assert statuses == [401, 200, 200, 200, 200, 200]


async def test_sessions_are_paged_newest_first(server: Server) -> None:
    """GET /sessions?limit=2 walks five sessions in three pages, newest first, each once."""
    await server.account("alice@example.com")
    clients = [(await server.signed_in("alice@example.com"))[0] for _ in range(5)]
    newest = clients[-1]
    full = (await newest.get("/sessions")).json()
    assert full["nextCursor"] is None
    everything = [entry["handle"] for entry in full["sessions"]]
    assert len(everything) == 5
    assert full["sessions"][0]["current"] is True
    walked: list[str] = []
    sizes = []
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"limit": 2} if cursor is None else {"limit": 2, "cursor": cursor}
        page = (await newest.get("/sessions", params=params)).json()
        sizes.append(len(page["sessions"]))
        walked += [entry["handle"] for entry in page["sessions"]]
        cursor = page["nextCursor"]
        if cursor is None:
            break
    assert sizes == [2, 2, 1]
    assert walked == everything


@pytest.mark.parametrize("limit", ["0", "101", "-1", "x", "1.5"])
async def test_a_bad_limit_is_a_400(server: Server, limit: str) -> None:
    """limit must be an integer from 1 to 100: anything else is 400 with a JSON error."""
    await server.account("alice@example.com")
    client, _ = await server.signed_in("alice@example.com")
    response = await client.get("/sessions", params={"limit": limit})
    assert response.status_code == 400
    assert "limit" in response.json()["error"]


@pytest.mark.parametrize("cursor", ["nonsense", "-1", "9" * 40, "0", "x" * 300])
async def test_a_bad_cursor_is_an_empty_last_page(server: Server, cursor: str) -> None:
    """An unknown or malformed cursor answers an empty page with no next cursor."""
    await server.account("alice@example.com")
    client, _ = await server.signed_in("alice@example.com")
    page = (await client.get("/sessions", params={"cursor": cursor})).json()
    assert page == {"sessions": [], "nextCursor": None}


async def test_the_account_page_pages_its_sessions(server: Server) -> None:
    """/account?limit=2 shows two sessions and links the older ones, page after page."""
    await server.account("alice@example.com")
    for _ in range(4):
        await server.signed_in("alice@example.com")
    client, _ = await server.signed_in("alice@example.com")
    html = {"accept": "text/html"}
    seen: list[int] = []
    target: str | None = "/account?limit=2"
    while target is not None:
        page = await client.get(target, headers=html)
        assert page.status_code == 200
        seen.append(page.text.count('/revoke" class="inline"'))
        found = re.search(r'<a href="(/account\?[^"]+)" rel="next">Older sessions</a>', page.text)
        target = found.group(1).replace("&amp;", "&") if found else None
    # Five sessions, two a page; this device's own session has no revoke button (page one).
    assert seen == [1, 2, 1]


# -- the library, without the reference server ----------------------------------------------


@dataclass
class Library:
    """A FastAPI app over SessionMiddleware and a memory store, with an Authenticator."""

    store: MemoryStore
    auth: Authenticator
    client: httpx.AsyncClient
    clock: FakeClock


@pytest.fixture
async def library(tmp_path: Path) -> AsyncIterator[Library]:
    """A minimal app: login through the Authenticator, set_user, clear, and guarded routes."""
    clock = FakeClock()
    store = MemoryStore(clock=clock)
    users = user_store(f"sqlite:///{tmp_path / 'users.db'}")
    auth = Authenticator(
        users=users, sessions=store, hasher=PasswordHasher.for_tests(), throttle=None, clock=clock
    )
    app = FastAPI(exception_handlers=guards.exception_handlers)

    @app.post("/login")
    async def login(request: Request) -> dict[str, Any]:
        body = await request.json()
        accepted = await auth.authenticate(body["email"], body["password"], address="127.0.0.1")
        principal = await auth.login(session_of(request), accepted, address=None, user_agent=None)
        return {"role": principal.role}

    @app.post("/bind")
    async def bind(request: Request) -> dict[str, Any]:
        session_of(request).set_user("42")
        return {}

    @app.post("/clear")
    async def clear(request: Request) -> dict[str, Any]:
        session_of(request).clear()
        return {}

    @app.get("/auth")
    async def authenticated(user_id: Annotated[str, Depends(require_auth)]) -> dict[str, Any]:
        return {"user": user_id}

    @app.get("/admin")
    async def admin(user_id: Annotated[str, Depends(require_role("admin"))]) -> dict[str, Any]:
        return {"user": user_id}

    @app.get("/user")
    async def user(user_id: Annotated[str, Depends(require_role("user"))]) -> dict[str, Any]:
        return {"user": user_id}

    @app.post("/revoke-everywhere")
    async def revoke_everywhere(request: Request) -> dict[str, Any]:
        # Another request (an admin, another device) ends every session of the user meanwhile.
        change = PrincipalChange(fallback_role="user", fallback_disabled=False, rotate=True)
        await store.change_principal(session_of(request).user_id or "", change)
        return {}

    @app.post("/claim")
    async def claim(request: Request) -> dict[str, Any]:
        session_of(request)["role"] = "admin"
        return {}

    policy = TimeoutPolicy(renewal_interval=600, touch_interval=60)
    wrapped = SessionMiddleware(
        app, store=store, keyring=Keyring(["k" * 40]), policy=policy, clock=clock
    )
    transport = httpx.ASGITransport(app=wrapped)
    async with httpx.AsyncClient(transport=transport, base_url="https://t") as client:
        yield Library(store, auth, client, clock)
    await users.aclose()


async def test_set_user_without_the_authenticator_grants_no_role(library: Library) -> None:
    """A session bound by set_user is authenticated (require_auth) and has no role (403)."""
    assert (await library.client.post("/bind")).status_code == 200
    assert (await library.client.get("/auth")).json() == {"user": "42"}
    assert (await library.client.get("/admin")).status_code == 403
    assert (await library.client.get("/user")).status_code == 403
    await library.client.post("/claim")  # a value the application writes grants nothing
    assert (await library.client.get("/admin")).status_code == 403


async def test_session_clear_logs_out(library: Library) -> None:
    """session.clear() on a logged-in session deletes its record and clears the cookie."""
    user = await library.auth.create_user("alice@example.com", PASSWORD, role="admin")
    login = await library.client.post(
        "/login", json={"email": "alice@example.com", "password": PASSWORD}
    )
    assert login.json() == {"role": "admin"}
    token = library.client.cookies["__Host-session"]
    assert (await library.client.get("/admin")).status_code == 200
    cleared = await library.client.post("/clear")
    assert "Max-Age=0" in cleared.headers["set-cookie"]
    assert (await library.store.list_user(str(user.id))).sessions == []
    library.client.cookies.set("__Host-session", token, domain="t")  # a copy kept elsewhere
    assert (await library.client.get("/auth")).status_code == 401


async def test_a_renewal_after_a_revocation_ends_the_session(library: Library) -> None:
    """A renewal due on a session revoked during the request: served, no new cookie, gone.

    The renewal finds the old record gone and stores nothing: it cannot tell a revocation from
    another tab's renewal that won, whose cookie a cleared one could overwrite, so it leaves
    the cookie alone. The browser's old cookie names nothing: within the renewal's grace its
    forward leads nowhere (no session, the cookie left alone), and after it the cookie is
    cleared at its next use.
    """
    user = await library.auth.create_user("alice@example.com", PASSWORD)
    await library.client.post("/login", json={"email": "alice@example.com", "password": PASSWORD})
    token = library.client.cookies["__Host-session"]
    library.clock.advance(601)  # this request renews the token
    response = await library.client.post("/revoke-everywhere")
    assert response.status_code == 200
    assert "set-cookie" not in response.headers
    assert (await library.store.list_user(str(user.id))).sessions == []
    assert len(library.store) == 1  # the renewal's forward, to a record never stored
    library.client.cookies.set("__Host-session", token, domain="t")
    within_grace = await library.client.get("/auth")
    assert within_grace.status_code == 401
    library.clock.advance(TimeoutPolicy().renewal_grace)
    stale = await library.client.get("/auth")
    assert stale.status_code == 401
    assert "Max-Age=0" in stale.headers["set-cookie"]
