"""Email verification state in the reference server: REQUIRE_VERIFIED, the admin views, the CLI."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from sessionauth.auth.events import LoginFailed
from sessionauth.auth.passwords import PasswordHasher
from sessionauth.server.app import create_app
from sessionauth.server.settings import load_settings
from sessionauth.stores.users import User
from tests.integration.test_api import INVALID, PASSWORD, Server, csrf, login, settings_for
from tests.support.backends import user_store
from tests.support.cli import invoke, user_named

UNVERIFIED = {"error": "Email not verified"}


async def _server(tmp_path: Path, **overrides: object) -> AsyncIterator[Server]:
    app = create_app(settings_for(tmp_path, **overrides), hasher=PasswordHasher.for_tests())
    async with app.router.lifespan_context(app):
        running = Server(app)
        yield running
        for client in running.clients:
            await client.aclose()


@pytest.fixture
async def strict(tmp_path: Path) -> AsyncIterator[Server]:
    """A server with SESSIONAUTH_REQUIRE_VERIFIED on."""
    async for running in _server(tmp_path, require_verified=True):
        yield running


@pytest.fixture
async def lenient(tmp_path: Path) -> AsyncIterator[Server]:
    """A server with the default settings (verification not required)."""
    async for running in _server(tmp_path):
        yield running


async def _unverified(server: Server, email: str, password: str = PASSWORD) -> User:
    auth = server.app.state.authenticator
    user: User = await auth.create_user(email, password, verified=False)
    return user


def test_require_verified_is_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """SESSIONAUTH_REQUIRE_VERIFIED is off by default and on with "true"."""
    monkeypatch.delenv("SESSIONAUTH_REQUIRE_VERIFIED", raising=False)
    assert load_settings().require_verified is False
    monkeypatch.setenv("SESSIONAUTH_REQUIRE_VERIFIED", "true")
    assert load_settings().require_verified is True


async def test_right_password_of_an_unverified_account_is_403(strict: Server) -> None:
    """Required: the right password of an unverified account is 403, with no session cookie."""
    await _unverified(strict, "ann@example.com")
    response = await login(strict.client(), "Ann@Example.com")
    assert (response.status_code, response.json()) == (403, UNVERIFIED)
    assert "set-cookie" not in response.headers


async def test_wrong_password_of_an_unverified_account_is_the_usual_401(strict: Server) -> None:
    """Required: a wrong password on an unverified account answers like an unknown account."""
    await _unverified(strict, "ann@example.com")
    await strict.add_user("bob@example.com")
    answers = [
        await login(strict.client(), "ann@example.com", "wrong password"),
        await login(strict.client(), "bob@example.com", "wrong password"),
        await login(strict.client(), "nobody@example.com"),
    ]
    for response in answers:
        assert (response.status_code, response.json()) == (401, INVALID)
        assert "set-cookie" not in response.headers
    assert len({tuple(sorted(r.headers.items())) for r in answers}) == 1


async def test_disabled_unverified_account_is_the_usual_401(strict: Server) -> None:
    """Required: a disabled account is refused as invalid even with the right password."""
    user = await _unverified(strict, "ann@example.com")
    await strict.app.state.authenticator.set_disabled(user.id, True)
    response = await login(strict.client(), "ann@example.com")
    assert (response.status_code, response.json()) == (401, INVALID)


async def test_verified_accounts_sign_in_and_verifying_lets_one_in(strict: Server) -> None:
    """Required: verified accounts sign in; an unverified one can once its email is marked."""
    await strict.add_user("bob@example.com")
    assert (await login(strict.client(), "bob@example.com")).status_code == 200
    user = await _unverified(strict, "ann@example.com")
    seen: list[LoginFailed] = []
    strict.app.state.authenticator.events.subscribe(LoginFailed, seen.append)
    assert (await login(strict.client(), "ann@example.com")).status_code == 403
    assert [(e.user_id, e.reason) for e in seen] == [(user.id, "unverified")]
    await strict.app.state.authenticator.mark_email_verified(user.id)
    response = await login(strict.client(), "ann@example.com")
    assert response.status_code == 200
    assert response.json()["user"]["email"] == "ann@example.com"


async def test_unverified_accounts_sign_in_when_not_required(lenient: Server) -> None:
    """By default an unverified account signs in like any other."""
    await _unverified(lenient, "ann@example.com")
    assert (await login(lenient.client(), "ann@example.com")).status_code == 200


async def test_unverified_right_password_does_not_count_as_a_failure(strict: Server) -> None:
    """Throttling is unchanged: 403s for the right password never lock the account out."""
    await _unverified(strict, "ann@example.com")
    statuses = [(await login(strict.client(), "ann@example.com")).status_code for _ in range(12)]
    assert statuses == [403] * 12


async def test_login_form_says_the_email_is_not_verified(strict: Server) -> None:
    """The HTML form: right password, unverified: back to /login with a clear message."""
    await _unverified(strict, "ann@example.com")
    client = strict.client()
    await client.get("/login")
    token = (await csrf(client))["X-CSRF-Token"]
    form = {"email": "ann@example.com", "password": PASSWORD, "csrf_token": token}
    response = await client.post("/ui/login", data=form)
    assert response.status_code == 303
    location = response.headers["location"]
    assert location.startswith("/login?error=unverified")
    page = (await client.get(location)).text
    assert "Your email address is not verified yet" in page
    wrong = await client.post("/ui/login", data={**form, "password": "wrong password"})
    assert wrong.headers["location"].startswith("/login?error=invalid")


async def test_admin_listing_and_page_show_verification(lenient: Server) -> None:
    """GET /users carries emailVerified per account, and /admin/users shows it as a badge."""
    admin = await lenient.add_user("root@example.com", "admin")
    ann = await _unverified(lenient, "ann@example.com")
    client = lenient.client()
    assert (await login(client, "root@example.com")).status_code == 200
    users = (await client.get("/users")).json()["users"]
    # The first administrator the server made at start-up is verified too.
    states = {u["email"]: u["emailVerified"] for u in users}
    assert states == {"admin@localhost": True, "root@example.com": True, "ann@example.com": False}
    assert all("email_verified" not in u for u in users)
    html = (await client.get("/admin/users")).text
    row = html.split(f'id="user-{ann.id}"', 1)[1].split("</tr>", 1)[0]
    assert ">Unverified<" in row
    admin_row = html.split(f'id="user-{admin.id}"', 1)[1].split("</tr>", 1)[0]
    assert ">Verified<" in admin_row
    assert ">Unverified<" not in admin_row
    created = await client.post(
        "/users",
        json={"email": "new@example.com", "password": PASSWORD, "role": "user"},
        headers=await csrf(client),
    )
    assert created.json()["user"]["emailVerified"] is True


def test_cli_verify_marks_the_account_and_refuses_unknown_emails(env: dict[str, str]) -> None:
    """`users verify EMAIL` verifies (in any case), says so twice over, and exits 1 if unknown."""

    async def make() -> None:
        async with user_store(env["SESSIONAUTH_DATABASE_URL"]) as users:
            await users.create("ann@example.com", "hash", verified=False)

    asyncio.run(make())
    assert "ann@example.com\tuser\tactive, unverified" in invoke(env, "users", "list").stdout
    done = invoke(env, "users", "verify", "ANN@example.com")
    assert (done.exit_code, done.stdout) == (0, "ANN@example.com is verified\n")
    assert user_named(env, "ann@example.com").email_verified  # type: ignore[union-attr]
    assert "unverified" not in invoke(env, "users", "list").stdout
    again = invoke(env, "users", "verify", "ann@example.com")
    assert (again.exit_code, again.stdout) == (0, "ann@example.com was already verified\n")
    unknown = invoke(env, "users", "verify", "nobody@example.com")
    assert unknown.exit_code == 1
    assert "no user with email 'nobody@example.com'" in unknown.stderr
    assert "Traceback" not in unknown.output


def test_cli_created_accounts_are_verified(env: dict[str, str]) -> None:
    """`users create` makes verified accounts (an operator vouches for the address)."""
    made = invoke(env, "users", "create", "bob@example.com", "--password-stdin", input=PASSWORD)
    assert made.exit_code == 0, made.output
    assert user_named(env, "bob@example.com").email_verified  # type: ignore[union-attr]
