"""Two ``sessionauth serve`` processes on one session store act as one server.

A browser behind a load balancer reaches whichever process answers: a login on one must work
on the other, a logout or a role change made through one must hold on the other at once. Run
for both shared stores: Redis (the shared server's DB 13, under a key prefix of this test's)
with users in a shared SQLite file, and PostgreSQL (a database of this run's) for both.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

import httpx
import pytest

from tests.support.live_server import (
    Agent,
    LiveServer,
    create_user,
    deployment_env,
    live_servers,
    new_client,
)


@dataclass
class Deployment:
    """Two server processes sharing every database, and the settings they were given."""

    a: LiveServer
    b: LiveServer
    settings: dict[str, str]

    def new_user(self, role: str = "user") -> tuple[int, str]:
        """Create an account with the CLI, while both servers run; return its id and email."""
        email = f"{role}-{uuid.uuid4().hex[:10]}@example.com"
        return create_user(self.settings, email, role=role), email


@pytest.fixture(
    scope="module",
    params=[
        pytest.param("redis", marks=pytest.mark.redis),
        pytest.param("postgres", marks=pytest.mark.postgres),
    ],
)
def deployment(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Deployment]:
    directory = tmp_path_factory.mktemp(f"two-servers-{request.param}")
    if request.param == "redis":
        url: str = request.getfixturevalue("redis_url")
        run_prefix: str = request.getfixturevalue("redis_run_prefix")
        # Under the run's prefix, so the run's cleanup deletes these keys too.
        store = f"{url}?prefix={run_prefix}multi-{uuid.uuid4().hex[:8]}:"
        database = f"sqlite:///{directory / 'users.db'}"
    else:
        store = database = request.getfixturevalue("postgres_dsn")
    settings = deployment_env(database_url=database, store_url=store, data_dir=directory / "data")
    # An account before the servers start, so neither bootstraps an administrator of its own.
    create_user(settings, f"first-{uuid.uuid4().hex[:10]}@example.com")
    with live_servers() as pool:
        yield Deployment(pool.start(settings), pool.start(settings), settings)


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with new_client() as opened:
        yield opened


def expect(response: httpx.Response, status: int, body: object = None) -> None:
    """Assert the status (and the JSON body, if given), showing the answer otherwise."""
    where = f"{response.request.method} {response.request.url}"
    assert response.status_code == status, f"{where}: {response.status_code} {response.text}"
    if body is not None:
        assert response.json() == body, f"{where}: {response.text}"


async def signed_in(client: httpx.AsyncClient, server: LiveServer, email: str) -> Agent:
    agent = Agent(client)
    response = await agent.login(server.url, email)
    expect(response, 200)
    assert response.json()["user"]["email"] == email
    assert agent.cookie is not None
    return agent


async def test_a_login_on_one_process_works_on_the_other(
    deployment: Deployment, client: httpx.AsyncClient
) -> None:
    """A session created by A is found by B: /dashboard, /me and /sessions answer for it."""
    user_id, email = deployment.new_user()
    agent = await signed_in(client, deployment.a, email)
    b = deployment.b.url
    expect(await agent.request("GET", f"{b}/dashboard"), 200, {"userId": user_id})
    me = await agent.request("GET", f"{b}/me")
    expect(me, 200)
    assert (me.json()["id"], me.json()["email"]) == (user_id, email)
    sessions = await agent.request("GET", f"{b}/sessions")
    expect(sessions, 200)
    assert [s["current"] for s in sessions.json()["sessions"]] == [True]


async def test_a_logout_on_one_process_ends_the_session_on_the_other(
    deployment: Deployment, client: httpx.AsyncClient
) -> None:
    """Logging out on B (with B's CSRF token) makes A answer 401 to the same cookie."""
    _, email = deployment.new_user()
    agent = await signed_in(client, deployment.a, email)
    a, b = deployment.a.url, deployment.b.url
    expect(await agent.request("GET", f"{a}/dashboard"), 200)
    stolen = Agent(client, cookie=agent.cookie)  # a copy the logout cannot clear
    expect(await agent.request("POST", f"{b}/logout", csrf_from=b), 200, {"success": True})
    assert agent.cookie is None  # B cleared the cookie
    required = {"error": "Authentication required"}
    expect(await stolen.request("GET", f"{a}/dashboard"), 401, required)
    expect(await stolen.request("GET", f"{b}/dashboard"), 401, required)


async def test_a_role_change_on_one_process_applies_on_the_other_at_once(
    deployment: Deployment, client: httpx.AsyncClient
) -> None:
    """An admin on A promotes then demotes a user; the user's next request on B sees each."""
    _, admin_email = deployment.new_user("admin")
    user_id, email = deployment.new_user()
    a, b = deployment.a.url, deployment.b.url
    admin = await signed_in(client, deployment.a, admin_email)
    user = await signed_in(client, deployment.b, email)
    insufficient = {"error": "Insufficient permissions"}
    expect(await user.request("GET", f"{b}/admin"), 403, insufficient)

    promote = await admin.request(
        "PATCH", f"{a}/users/{user_id}", json={"role": "admin"}, csrf_from=a
    )
    expect(promote, 200)
    assert promote.json()["user"]["role"] == "admin"
    expect(await user.request("GET", f"{b}/admin"), 200, {"message": "Admin area"})
    expect(await user.request("GET", f"{a}/admin"), 200, {"message": "Admin area"})

    demote = await admin.request(
        "PATCH", f"{a}/users/{user_id}", json={"role": "user"}, csrf_from=a
    )
    expect(demote, 200)
    expect(await user.request("GET", f"{b}/admin"), 403, insufficient)
    expect(await user.request("GET", f"{b}/dashboard"), 200, {"userId": user_id})


async def test_an_admin_revocation_on_one_process_signs_the_user_out_on_both(
    deployment: Deployment, client: httpx.AsyncClient
) -> None:
    """Revoking a user's sessions through B ends the sessions they opened on A and on B."""
    _, admin_email = deployment.new_user("admin")
    user_id, email = deployment.new_user()
    a, b = deployment.a.url, deployment.b.url
    admin = await signed_in(client, deployment.a, admin_email)
    on_a = await signed_in(client, deployment.a, email)
    on_b = await signed_in(client, deployment.b, email)
    revoked = await admin.request("POST", f"{b}/users/{user_id}/revoke-sessions", csrf_from=b)
    expect(revoked, 200, {"success": True, "revoked": 2})
    for agent in (on_a, on_b):
        for server in (a, b):
            expect(await agent.request("GET", f"{server}/dashboard"), 401)
    expect(await admin.request("GET", f"{b}/admin"), 200)
