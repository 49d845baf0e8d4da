"""User ids in every id-taking route, API and forms: one spelling names a user, the rest 404."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
from fastapi import FastAPI

from sessionauth.auth.user_ids import MAX_USER_ID, parse_user_id
from sessionauth.errors import UserNotFound
from tests.support.apps import running_app

PASSWORD = "correct horse battery"
BASE = "http://testserver"

# Each names an existing user (1 to 18 exist) to int() or str.isdigit(), or
# is out of range: none may address anyone, and none may be a 500.
BAD_IDS = [
    " 1",
    "1 ",
    "+2",
    "-2",
    "01",
    "0",
    "1.0",
    "1e1",
    "0x11",
    "\u0661\u0667",  # Arabic-Indic 17
    "\U0001d7d9\U0001d7df",  # mathematical double-struck 17
    "\uff11\uff17",  # fullwidth 17
    "\u00b2",  # superscript two: isdigit() is true, int() raises
    "1_7",
    str(MAX_USER_ID + 1),
    "9" * 20,
]


@dataclass(frozen=True)
class IdRoute:
    """A route that takes a user id in its path; ``form`` routes are the HTML admin page's."""

    method: str
    template: str
    form: bool = False
    json: dict[str, object] | None = None

    def __str__(self) -> str:
        return f"{self.method} {self.template}"


ROUTES = [
    IdRoute("DELETE", "/users/{id}"),
    IdRoute("PATCH", "/users/{id}", json={"disabled": True}),
    IdRoute("POST", "/users/{id}/revoke-sessions"),
    IdRoute("POST", "/ui/admin/users/{id}/role", form=True),
    IdRoute("POST", "/ui/admin/users/{id}/disable", form=True),
    IdRoute("POST", "/ui/admin/users/{id}/delete", form=True),
    IdRoute("POST", "/ui/admin/users/{id}/revoke-sessions", form=True),
]


@pytest.fixture
async def app(tmp_path: Path) -> AsyncIterator[FastAPI]:
    """The server with its first admin (id 1, made at start-up), root (2), users 3 to 18."""
    async with running_app(tmp_path) as application:
        auth = application.state.authenticator
        password_hash = await auth.hasher.hash(PASSWORD)
        await auth.users.create("root@example.com", password_hash, role="admin")
        for n in range(3, 19):
            await auth.users.create(f"user{n}@example.com", password_hash)
        # User 17 has a session, so revoking sessions changes something too.
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url=BASE) as client:
            response = await client.post(
                "/login", json={"email": "user17@example.com", "password": PASSWORD}
            )
            assert response.status_code == 200
        yield application


@pytest.fixture
async def admin(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """A client signed in as the admin."""
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as client:
        response = await client.post(
            "/login", json={"email": "root@example.com", "password": PASSWORD}
        )
        assert response.status_code == 200
        yield client


async def _state(app: FastAPI) -> list[tuple[int, str, bool, int]]:
    auth = app.state.authenticator
    return [
        (u.id, u.role, u.disabled, await auth.count_sessions(u.id)) for u in await auth.users.list()
    ]


async def _send(client: httpx.AsyncClient, route: IdRoute, user_id: str) -> httpx.Response:
    path = route.template.format(id=quote(user_id, safe=""))
    if route.form:
        page = await client.get("/admin/users")
        token = re.findall(r'name="csrf_token" value="([^"]*)"', page.text)[0]
        return await client.post(
            path,
            data={"csrf_token": token, "role": "admin", "disabled": "true"},
            headers={"Accept": "text/html", "Origin": BASE},
        )
    token = (await client.get("/csrf-token")).json()["csrfToken"]
    return await client.request(
        route.method, path, json=route.json, headers={"X-CSRF-Token": token}
    )


@pytest.mark.parametrize("route", ROUTES, ids=str)
async def test_only_the_canonical_id_addresses_a_user(
    app: FastAPI, admin: httpx.AsyncClient, route: IdRoute
) -> None:
    """Spaces, signs, zeros, decimals, non-ASCII digits and overflow are 404 and change nothing."""
    before = await _state(app)
    for bad in BAD_IDS:
        response = await _send(admin, route, bad)
        assert response.status_code == 404, (bad, response.status_code, response.text[:200])
        if not route.form:
            assert response.json() == {"error": "User not found"}
        assert await _state(app) == before, bad
    # The positive control: the canonical spelling of user 17 does reach the route.
    response = await _send(admin, route, "17")
    assert response.status_code in (200, 303), response.text[:200]
    assert await _state(app) != before


@pytest.mark.parametrize("text", ["1", "17", "9223372036854775807"])
def test_parse_user_id_accepts_the_canonical_spelling(text: str) -> None:
    """Plain ASCII decimal ids from 1 to 2**63-1 parse to themselves."""
    assert parse_user_id(text) == int(text)


@pytest.mark.parametrize("text", [*BAD_IDS, "", "1\n", "\n1"])
def test_parse_user_id_refuses_every_other_spelling(text: str) -> None:
    """Anything but ``^[1-9][0-9]{0,18}$`` up to 2**63-1 is no such user."""
    with pytest.raises(UserNotFound):
        parse_user_id(text)
