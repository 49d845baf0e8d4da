"""A login in flight while the account changes never yields a session with the old rights.

The deterministic harness holds a login right after its password check (a hasher whose
``verify`` waits at a gate) until the change has returned, which reproduces the race every
time; the free-running trials let the two interleave as they will. Each runs on every session
store, and with users and sessions in different databases. After each change returns: for a
demotion no admin route answers the racing login's session; for the other changes every route
answers 401.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from sessionauth.auth.passwords import PasswordHasher
from sessionauth.errors import StoreUnavailable
from sessionauth.server.app import create_app
from sessionauth.stores.users import UserStore
from tests.support.apps import server_settings

PASSWORD = "correct horse battery"
NEW_PASSWORD = "another horse battery"


class GatedHasher(PasswordHasher):
    """The fast test hasher; an armed gate holds the next ``verify`` after it has judged."""

    entered: asyncio.Event
    release: asyncio.Event
    armed: bool

    @classmethod
    def gated(cls) -> GatedHasher:
        hasher = cls.for_tests()
        assert isinstance(hasher, GatedHasher)
        hasher.entered, hasher.release, hasher.armed = asyncio.Event(), asyncio.Event(), False
        return hasher

    def arm(self) -> None:
        self.entered.clear()
        self.release.clear()
        self.armed = True

    async def verify(self, password: str, password_hash: str) -> tuple[bool, str | None]:
        result = await super().verify(password, password_hash)
        if self.armed:
            self.armed = False
            self.entered.set()
            await self.release.wait()
        return result


SETUPS = {
    "memory": {"store": "memory"},
    "sqlite": {},
    "postgres": {"users": "postgres", "store": "postgres"},
    "redis": {"store": "redis"},
    "redis_sentinel": {"store": "redis_sentinel"},
    "redis_cluster": {"store": "redis_cluster"},
    "postgres_users+redis": {"users": "postgres", "store": "redis"},
}
MARKS: dict[str, list[pytest.MarkDecorator]] = {
    "postgres": [pytest.mark.postgres],
    "redis": [pytest.mark.redis],
    "redis_sentinel": [pytest.mark.redis, pytest.mark.slow],
    "redis_cluster": [pytest.mark.redis, pytest.mark.slow],
    "postgres_users+redis": [pytest.mark.postgres, pytest.mark.redis],
}


def _store_url(kind: str, request: pytest.FixtureRequest) -> str:
    prefix = request.getfixturevalue("redis_prefix")
    if kind == "memory":
        return "memory://"
    if kind == "postgres":
        return str(request.getfixturevalue("postgres_dsn"))
    if kind == "redis":
        return f"{request.getfixturevalue('redis_url')}?prefix={prefix}"
    if kind == "redis_sentinel":
        return f"{request.getfixturevalue('redis_sentinel').url}?prefix={prefix}"
    return f"{request.getfixturevalue('redis_cluster').url}?prefix={prefix}"


class FailingWrites:
    """The Authenticator's users store, whose next write (once armed) raises StoreUnavailable."""

    _WRITES = frozenset({"set_role", "set_password", "set_disabled", "delete"})

    def __init__(self, inner: UserStore):
        self.inner = inner
        self.armed = False

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self.inner, name)
        if name not in self._WRITES:
            return attribute

        async def write(*args: Any, **kwargs: Any) -> Any:
            if self.armed:
                self.armed = False
                raise StoreUnavailable("injected: the users database failed this write")
            return await attribute(*args, **kwargs)

        return write


@dataclass
class Server:
    """The reference server in process, its gated hasher, and a way to make accounts."""

    app: FastAPI
    hasher: GatedHasher
    clients: list[httpx.AsyncClient]
    users: FailingWrites = field(init=False)

    def __post_init__(self) -> None:
        self.users = FailingWrites(self.auth.users)
        self.auth.users = self.users

    @property
    def auth(self) -> Any:
        return self.app.state.authenticator

    async def account(self, role: str) -> tuple[int, str]:
        email = f"race-{secrets.token_hex(6)}@example.com"
        user = await self.auth.create_user(email, PASSWORD, role=role)
        return int(user.id), email

    def client(self) -> httpx.AsyncClient:
        client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=self.app), base_url="http://testserver"
        )
        self.clients.append(client)
        return client

    async def signed_in(self, email: str, password: str = PASSWORD) -> httpx.AsyncClient:
        client = self.client()
        response = await client.post("/login", json={"email": email, "password": password})
        assert response.status_code == 200, response.text
        client.headers["X-CSRF-Token"] = response.json()["csrfToken"]
        return client


@pytest.fixture(params=[pytest.param(name, marks=MARKS.get(name, []), id=name) for name in SETUPS])
async def server(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Server]:
    """The server on one setup of users database and session store."""
    setup = SETUPS[request.param]
    overrides: dict[str, Any] = {}
    if setup.get("users") == "postgres":
        overrides["database_url"] = request.getfixturevalue("postgres_dsn")
    if "store" in setup:
        overrides["store_url"] = _store_url(setup["store"], request)
    hasher = GatedHasher.gated()
    app = create_app(server_settings(tmp_path, **overrides), hasher=hasher)
    async with app.router.lifespan_context(app):
        running = Server(app, hasher, [])
        yield running
        for client in running.clients:
            await client.aclose()


Change = Callable[[Server, int, httpx.AsyncClient, httpx.AsyncClient], Awaitable[int]]
"""Runs one change; returns its HTTP status (503 when a store failed it)."""


async def _demote(
    server: Server, victim: int, admin: httpx.AsyncClient, own: httpx.AsyncClient
) -> int:
    response = await admin.patch(f"/users/{victim}", json={"role": "user"})
    return response.status_code


async def _disable(
    server: Server, victim: int, admin: httpx.AsyncClient, own: httpx.AsyncClient
) -> int:
    response = await admin.patch(f"/users/{victim}", json={"disabled": True})
    return response.status_code


async def _delete(
    server: Server, victim: int, admin: httpx.AsyncClient, own: httpx.AsyncClient
) -> int:
    response = await admin.delete(f"/users/{victim}")
    return response.status_code


async def _change_password(
    server: Server, victim: int, admin: httpx.AsyncClient, own: httpx.AsyncClient
) -> int:
    body = {"current_password": PASSWORD, "new_password": NEW_PASSWORD}
    response = await own.post("/password", json=body)
    return response.status_code


async def _reset_password(
    server: Server, victim: int, admin: httpx.AsyncClient, own: httpx.AsyncClient
) -> int:
    try:
        await server.auth.set_password(victim, NEW_PASSWORD)
    except StoreUnavailable:
        return 503
    return 200


async def _revoke_others(
    server: Server, victim: int, admin: httpx.AsyncClient, own: httpx.AsyncClient
) -> int:
    response = await own.post("/sessions/revoke-others")
    return response.status_code


CHANGES: dict[str, Change] = {
    "demote": _demote,
    "disable": _disable,
    "delete": _delete,
    "password_change": _change_password,
    "password_reset": _reset_password,
    "revoke_others": _revoke_others,
}


async def _assert_no_old_rights(kind: str, racer: httpx.AsyncClient, server: Server) -> None:
    """The racing login's session keeps none of the rights the change took away."""
    if kind == "demote":
        assert (await racer.get("/admin")).status_code in (401, 403)
        promote = await racer.post(
            "/users",
            json={
                "email": f"x-{secrets.token_hex(4)}@example.com",
                "password": PASSWORD,
                "role": "admin",
            },
        )
        assert promote.status_code in (401, 403), promote.text
        return
    for path in ("/dashboard", "/me", "/sessions"):
        response = await racer.get(path)
        assert response.status_code == 401, (path, response.status_code, response.text)


@dataclass
class Race:
    """One race's parties: the racing login's client, and what the change needs to run again."""

    racer: httpx.AsyncClient
    victim: int
    admin: httpx.AsyncClient
    own: httpx.AsyncClient


async def _race(
    server: Server, kind: str, *, gated: bool, failing: bool = False
) -> httpx.AsyncClient:
    """Run one login of the victim against the change; return the racing login's client."""
    return (await _race_with(server, kind, gated=gated, failing=failing)).racer


async def _race_with(server: Server, kind: str, *, gated: bool, failing: bool) -> Race:
    """Like ``_race``; with ``failing``, the change's users-database write fails (a 503)."""
    admin_id, admin_email = await server.account("admin")
    del admin_id
    victim, email = await server.account("admin" if kind == "demote" else "user")
    admin = await server.signed_in(admin_email)
    own = await server.signed_in(email)
    racer = server.client()
    if gated:
        server.hasher.arm()
    login = asyncio.create_task(racer.post("/login", json={"email": email, "password": PASSWORD}))
    if gated:
        await server.hasher.entered.wait()
    server.users.armed = failing
    try:
        status = await CHANGES[kind](server, victim, admin, own)
    finally:
        server.users.armed = False
        server.hasher.release.set()
    assert status == (503 if failing else 200), status
    response = await login
    assert response.status_code in (200, 401), response.text
    if response.status_code == 200:
        racer.headers["X-CSRF-Token"] = response.json()["csrfToken"]
    return Race(racer, victim, admin, own)


@pytest.mark.parametrize("kind", CHANGES)
async def test_a_held_login_gets_no_old_rights(server: Server, kind: str) -> None:
    """A login held after its password check until the change returned keeps no old right."""
    racer = await _race(server, kind, gated=True)
    await _assert_no_old_rights(kind, racer, server)


# A free-running login may read the account after "sign out everywhere else" has returned, and
# then rightly stays signed in: only the held login tells that race apart.
FREE_RUNNING = [kind for kind in CHANGES if kind != "revoke_others"]


@pytest.mark.parametrize("kind", FREE_RUNNING)
async def test_free_running_logins_get_no_old_rights(server: Server, kind: str) -> None:
    """Logins interleaved freely with the change keep no old right either (five trials)."""
    for _ in range(5):
        racer = await _race(server, kind, gated=False)
        await _assert_no_old_rights(kind, racer, server)


# Revoke-others writes nothing to the users database: nothing can fail between two writes.
TWO_WRITES = [kind for kind in CHANGES if kind != "revoke_others"]


@pytest.mark.parametrize("kind", TWO_WRITES)
async def test_a_change_failing_between_its_writes_leaves_no_old_rights(
    server: Server, kind: str
) -> None:
    """The users database fails after the session store changed: no old right; a retry works."""
    race = await _race_with(server, kind, gated=True, failing=True)
    await _assert_no_old_rights(kind, race.racer, server)
    assert await CHANGES[kind](server, race.victim, race.admin, race.own) == 200
    await _assert_no_old_rights(kind, race.racer, server)


async def test_a_demotion_racing_a_promotion_leaves_no_hidden_admin(server: Server) -> None:
    """Two admin changes of one account at once never leave the principal above the users row."""
    _, admin_email = await server.account("admin")
    admin = await server.signed_in(admin_email)
    for _ in range(20):
        victim, email = await server.account("admin")
        own = await server.signed_in(email)  # an admin may raise itself: the promotion
        promote, demote = await asyncio.gather(
            own.patch(f"/users/{victim}", json={"role": "admin"}),
            admin.patch(f"/users/{victim}", json={"role": "user"}),
        )
        assert {promote.status_code, demote.status_code} <= {200, 401, 403}, promote.text
        account = await server.auth.get_user(victim)
        principal = await server.auth.sessions.principal(str(victim))
        assert principal is not None
        assert principal.role == account.role or account.role == "admin", (account, principal)
        if account.role != "admin":
            assert (await own.get("/admin")).status_code == 403


async def test_odd_handles_cursors_and_searches_are_not_errors(server: Server) -> None:
    """NUL and non-ASCII digits in a handle, a cursor or a search answer 4xx or an empty page."""
    _, email = await server.account("admin")
    admin = await server.signed_in(email)
    assert (await admin.delete("/sessions/abcdefghijk.%00abc")).status_code == 404
    for cursor in ("%C2%B2", "%D9%A1", "%00"):
        listed = await admin.get(f"/sessions?cursor={cursor}")
        assert listed.status_code == 200, (cursor, listed.text)
        assert listed.json() == {"sessions": [], "nextCursor": None}
    searched = await admin.get("/users?q=a%00b")
    assert searched.status_code in (200, 400), searched.text
    if searched.status_code == 200:
        assert searched.json()["users"] == []
