"""The administrator rules through the JSON API: no self-lockout, never zero admins, known roles."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from sessionauth.auth.passwords import PasswordHasher
from sessionauth.server.app import create_app
from sessionauth.server.settings import Settings
from sessionauth.stores.users import User

PASSWORD = "correct horse battery"
SELF = {"error": "You cannot demote, disable or delete your own account"}


async def _app(tmp_path: Path, **settings: Any) -> AsyncIterator[FastAPI]:
    """The server with no account (the one made at start-up is gone); clients close with it."""
    app = create_app(
        Settings(
            env="development",
            database_url=f"sqlite:///{tmp_path / 'users.db'}",
            data_dir=tmp_path / "data",
            secret="s" * 40,
            **settings,
        ),
        hasher=PasswordHasher.for_tests(),
    )
    async with app.router.lifespan_context(app), contextlib.AsyncExitStack() as clients:
        app.state.test_clients = clients
        auth = app.state.authenticator
        for user in await auth.users.list():  # the start-up's admin: the test's admins only
            await auth.users.delete(user.id)
        yield app


@pytest.fixture
async def app(tmp_path: Path) -> AsyncIterator[FastAPI]:
    """The server with no account (the one made at start-up is gone)."""
    async for running in _app(tmp_path):
        yield running


async def signed_in(
    app: FastAPI, email: str, role: str = "admin"
) -> tuple[User, httpx.AsyncClient]:
    """A new account and a client signed in as it, with its CSRF header set."""
    auth = app.state.authenticator
    user: User = await auth.users.create(email, await auth.hasher.hash(PASSWORD), role=role)
    client = await app.state.test_clients.enter_async_context(
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver")
    )
    response = await client.post("/login", json={"email": email, "password": PASSWORD})
    assert response.status_code == 200
    client.headers["X-CSRF-Token"] = (await client.get("/csrf-token")).json()["csrfToken"]
    return user, client


async def enabled_admins(app: FastAPI) -> list[int]:
    users = await app.state.authenticator.users.list()
    return [u.id for u in users if u.role == "admin" and not u.disabled]


REMOVALS = {
    "demote": ("PATCH", {"role": "user"}),
    "disable": ("PATCH", {"disabled": True}),
    "delete": ("DELETE", None),
}


@pytest.mark.parametrize("removal", REMOVALS)
async def test_an_admin_cannot_remove_itself(app: FastAPI, removal: str) -> None:
    """Demoting, disabling or deleting your own account is 409, with another admin or not."""
    me, client = await signed_in(app, "root@example.com")
    await signed_in(app, "other@example.com")
    method, body = REMOVALS[removal]
    response = await client.request(method, f"/users/{me.id}", json=body)
    assert (response.status_code, response.json()) == (409, SELF)
    assert (await client.get("/admin")).status_code == 200  # still an admin, still in
    assert await app.state.authenticator.users.get(me.id) == me


@pytest.mark.parametrize("removal", REMOVALS)
async def test_two_admins_removing_each_other_at_once_leave_one(app: FastAPI, removal: str) -> None:
    """The only two admins removing each other concurrently: one succeeds, one is refused."""
    method, body = REMOVALS[removal]
    for round_ in range(5):
        first, first_client = await signed_in(app, f"a{round_}@example.com")
        second, second_client = await signed_in(app, f"b{round_}@example.com")
        responses = await asyncio.gather(
            first_client.request(method, f"/users/{second.id}", json=body),
            second_client.request(method, f"/users/{first.id}", json=body),
        )
        statuses = sorted(r.status_code for r in responses)
        survivors = await enabled_admins(app)
        assert len(survivors) == 1, statuses
        # The loser is refused by the rule (409) or, once demoted, by the admin guard (403).
        assert statuses[0] == 200, statuses
        assert statuses[1] in (403, 409), statuses
        await app.state.authenticator.users.set_role(survivors[0], "user")


async def test_roles_outside_the_configured_set_are_a_400(app: FastAPI) -> None:
    """superuser and root are refused on create and on change; the account is left alone."""
    _, client = await signed_in(app, "root@example.com")
    user, _ = await signed_in(app, "ann@example.com", role="user")
    for role in ("superuser", "root"):
        created = await client.post(
            "/users", json={"email": "x@example.com", "password": PASSWORD, "role": role}
        )
        assert created.status_code == 400
        assert created.json() == {"error": f"Unknown role {role!r}: use one of admin, user"}
        changed = await client.patch(f"/users/{user.id}", json={"role": role})
        assert changed.status_code == 400
    assert await app.state.authenticator.users.get_by_email("x@example.com") is None
    assert (await app.state.authenticator.users.get(user.id)).role == "user"


async def test_configured_roles_are_accepted(tmp_path: Path) -> None:
    """SESSIONAUTH_ROLES adds roles the API then accepts."""
    async for app in _app(tmp_path, roles=("admin", "user", "editor")):
        _, client = await signed_in(app, "root@example.com")
        created = await client.post(
            "/users", json={"email": "ed@example.com", "password": PASSWORD, "role": "editor"}
        )
        assert created.status_code == 201, created.text
        assert created.json()["user"]["role"] == "editor"


@pytest.mark.parametrize("roles", ["user", "admin,Boss", "admin,"])
def test_roles_without_admin_or_with_bad_names_are_refused(roles: str) -> None:
    """SESSIONAUTH_ROLES must name admin, and only valid role names."""
    from sessionauth.errors import ConfigurationError
    from sessionauth.server.settings import load_settings

    if roles == "admin,":
        assert load_settings(roles=roles).roles == ("admin",)
        return
    with pytest.raises(ConfigurationError, match="SESSIONAUTH_ROLES"):
        load_settings(roles=roles)
