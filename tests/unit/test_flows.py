"""Authenticator over a real SQLite user store, a memory session store and a memory throttle."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from http.cookiejar import CookieJar, DefaultCookiePolicy
from pathlib import Path
from typing import Any, Literal

import bcrypt
import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from sessionauth.auth.authenticator import Authenticator
from sessionauth.auth.client_address import client_address
from sessionauth.auth.events import (
    AccountDisabled,
    AuthEvent,
    LoggedOut,
    LoginFailed,
    LoginSucceeded,
    PasswordChanged,
    SessionRevoked,
    SessionsRevoked,
    UserDeleted,
)
from sessionauth.auth.passwords import PasswordHasher
from sessionauth.auth.throttle import LoginThrottle
from sessionauth.errors import (
    InvalidCredentials,
    NotAuthenticated,
    PasswordPolicyError,
    SessionNotFound,
    StoreUnavailable,
    TooManyAttempts,
)
from sessionauth.middleware import SessionMiddleware
from sessionauth.record import CSRF_SEED
from sessionauth.session import Session
from sessionauth.stores.memory import MemoryCounter, MemoryStore
from sessionauth.stores.users import User, UserStore
from sessionauth.tokens import Keyring, storage_id
from tests.support.backends import user_store
from tests.support.clock import FakeClock
from tests.support.stores import InstrumentedStore

KEYRING = Keyring(["f" * 40])
NAME = "__Host-session"
ALICE, BOB = "alice@example.com", "bob@example.com"
PASSWORD = "correct horse battery"
NEW_PASSWORD = "another fine passphrase"
WRONG = "not the password"
ADDRESS = "198.51.100.7"


def _session(request: Request) -> Session:
    session = request.scope["session"]
    assert isinstance(session, Session)
    return session


def make_app(auth: Authenticator) -> Starlette:
    """A minimal API over the Authenticator, mapping its exceptions the way an edge would."""

    async def login(request: Request) -> Response:
        body = await request.json()
        address = client_address(request.scope)
        accepted = await auth.authenticate(body["email"], body["password"], address=address)
        principal = await auth.login(
            _session(request),
            accepted,
            address=address,
            user_agent=request.headers.get("user-agent"),
        )
        return JSONResponse({"id": accepted.user.id, "role": principal.role})

    async def logout(request: Request) -> Response:
        await auth.logout(_session(request), address=client_address(request.scope))
        return JSONResponse({"success": True})

    async def me(request: Request) -> Response:
        session = _session(request)
        principal = session.principal
        return JSONResponse(
            {
                "user": session.user_id,
                "role": principal.role if principal is not None else None,
                "data": session.data(),
            }
        )

    async def remember(request: Request) -> Response:
        _session(request)["cart"] = request.query_params["cart"]
        return JSONResponse({"success": True})

    async def password(request: Request) -> Response:
        body = await request.json()
        revoked = await auth.change_password(
            _session(request),
            body["current_password"],
            body["new_password"],
            address=client_address(request.scope),
        )
        return JSONResponse({"revoked": revoked})

    async def sessions(request: Request) -> Response:
        session = _session(request)
        user = await auth.current_user(session)
        listing = await auth.list_sessions(user.id, current=session.handle)
        return JSONResponse(
            [
                {"handle": i.handle, "ua": i.user_agent, "current": i.current}
                for i in listing.sessions
            ]
        )

    async def revoke_one(request: Request) -> Response:
        user = await auth.current_user(_session(request))
        await auth.revoke_session(user.id, request.path_params["handle"])
        return JSONResponse({"success": True})

    async def revoke_others(request: Request) -> Response:
        revoked = await auth.revoke_other_sessions(
            _session(request), address=client_address(request.scope)
        )
        return JSONResponse({"revoked": revoked})

    def status(code: int) -> Any:
        async def handler(request: Request, exc: Exception) -> Response:
            del request
            headers = {"retry-after": str(exc.retry_after)} if code == 429 else None  # type: ignore[attr-defined]
            return JSONResponse({"error": str(exc)}, status_code=code, headers=headers)

        return handler

    return Starlette(
        routes=[
            Route("/login", login, methods=["POST"]),
            Route("/logout", logout, methods=["POST"]),
            Route("/me", me),
            Route("/remember", remember),
            Route("/password", password, methods=["POST"]),
            Route("/sessions", sessions),
            Route("/sessions/{handle}", revoke_one, methods=["DELETE"]),
            Route("/sessions-revoke-others", revoke_others, methods=["POST"]),
        ],
        exception_handlers={
            InvalidCredentials: status(401),
            NotAuthenticated: status(401),
            PasswordPolicyError: status(400),
            TooManyAttempts: status(429),
            SessionNotFound: status(404),
        },
    )


def count_hashing(hasher: PasswordHasher) -> Counter[str]:
    """Wrap the hasher's entry points so every call is counted (calls, not timing)."""
    calls: Counter[str] = Counter()
    for name in ("hash", "verify", "dummy_verify"):
        original = getattr(hasher, name)

        async def counted(*args: Any, _name: str = name, _original: Any = original) -> Any:
            calls[_name] += 1
            return await _original(*args)

        setattr(hasher, name, counted)
    return calls


@dataclass
class Env:
    """The Authenticator, its stores and clock, an app around it, and what it reported."""

    auth: Authenticator
    users: UserStore
    memory: MemoryStore
    clock: FakeClock
    hashing: Counter[str]
    client: httpx.AsyncClient
    events: list[AuthEvent] = field(default_factory=list)
    async_events: list[AuthEvent] = field(default_factory=list)

    async def add_user(self, email: str, password: str = PASSWORD, role: str = "user") -> User:
        """Create an account, leaving the hashing counter at zero."""
        user = await self.users.create(email, await self.auth.hasher.hash(password), role)
        self.hashing.clear()
        return user

    async def call(
        self, method: str, path: str, cookie: str | None = None, **kwargs: Any
    ) -> httpx.Response:
        """Send a request carrying ``cookie`` (if given) as the session cookie."""
        headers = dict(kwargs.pop("headers", {}))
        if cookie is not None:
            headers["cookie"] = f"{NAME}={cookie}"
        return await self.client.request(method, path, headers=headers, **kwargs)

    async def login(
        self,
        email: str = ALICE,
        password: str = PASSWORD,
        cookie: str | None = None,
        ua: str = "TestBrowser/1.0",
    ) -> str:
        """Log in through the app and return the new session cookie."""
        response = await self.call(
            "POST",
            "/login",
            cookie,
            json={"email": email, "password": password},
            headers={"user-agent": ua},
        )
        assert response.status_code == 200, response.text
        return cookie_value(response)

    async def whoami(self, cookie: str) -> str | None:
        """The user id the app sees for ``cookie`` (``None``: anonymous)."""
        user: str | None = (await self.call("GET", "/me", cookie)).json()["user"]
        return user


def cookie_value(response: httpx.Response) -> str:
    header = response.headers["set-cookie"]
    assert header.startswith(f"{NAME}=")
    value = header.split(";")[0].split("=", 1)[1]
    assert value, "expected a new session cookie, got a cleared one"
    return value


def handle_of(cookie: str) -> str:
    """The store handle of the session a cookie carries."""
    return storage_id(cookie.split(".")[0])


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[Env]:
    clock = FakeClock()
    users = user_store(f"sqlite:///{tmp_path / 'users.db'}", clock=clock)
    memory = MemoryStore(clock=clock)
    hasher = PasswordHasher.for_tests()
    hashing = count_hashing(hasher)
    events: list[AuthEvent] = []
    async_events: list[AuthEvent] = []

    async def async_hook(event: AuthEvent) -> None:
        async_events.append(event)

    auth = Authenticator(
        users=users,
        sessions=memory,
        hasher=hasher,
        throttle=LoginThrottle(MemoryCounter(clock), clock=clock),
        clock=clock,
        hooks=[events.append, async_hook],
    )
    app = SessionMiddleware(make_app(auth), store=memory, keyring=KEYRING, clock=clock)
    # Cookies are sent by hand, per request: a jar would mix sessions up between "browsers".
    jar = CookieJar(policy=DefaultCookiePolicy(allowed_domains=[]))
    client = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="https://testserver", cookies=jar
    )
    async with client:
        yield Env(auth, users, memory, clock, hashing, client, events, async_events)
    await users.aclose()


async def fail_login(env: Env, email: str, address: str = ADDRESS) -> Exception:
    """Attempt a login with a wrong password and return what it raised."""
    with pytest.raises((InvalidCredentials, TooManyAttempts)) as caught:
        await env.auth.authenticate(email, WRONG, address=address)
    return caught.value


# -- authenticate ---------------------------------------------------------------------------


async def test_authenticate_returns_the_user_for_any_spelling_of_the_email(env: Env) -> None:
    """The right password logs in whatever the case and padding of the email, with one hash."""
    alice = await env.add_user(ALICE)
    accepted = await env.auth.authenticate(" Alice@Example.COM ", PASSWORD, address=ADDRESS)
    assert (accepted.user.id, accepted.user.email) == (alice.id, ALICE)
    assert (accepted.principal.role, accepted.principal.disabled) == ("user", False)
    assert env.hashing == Counter(verify=1)
    stored = await env.users.get(alice.id)
    assert stored is not None
    assert stored.password_hash == alice.password_hash  # a current hash is not rewritten


@pytest.mark.parametrize("case", ["unknown email", "wrong password", "disabled account"])
async def test_failures_are_indistinguishable_and_cost_one_hash(env: Env, case: str) -> None:
    """Unknown email, wrong password and disabled account: same exception, message, one hash."""
    alice = await env.add_user(ALICE)
    if case == "disabled account":
        await env.auth.set_disabled(alice.id, True)
    email = "nobody@example.com" if case == "unknown email" else ALICE
    password = WRONG if case == "wrong password" else PASSWORD
    with pytest.raises(InvalidCredentials) as caught:
        await env.auth.authenticate(email, password, address=ADDRESS)
    assert type(caught.value) is InvalidCredentials
    assert str(caught.value) == "Invalid credentials"
    assert env.hashing["verify"] + env.hashing["dummy_verify"] == 1
    assert env.hashing["hash"] == 0
    reason: dict[str, Literal["unknown", "password", "disabled"]] = {
        "unknown email": "unknown",
        "wrong password": "password",
        "disabled account": "disabled",
    }
    user_id = None if case == "unknown email" else alice.id
    assert env.events[-1] == LoginFailed(user_id=user_id, address=ADDRESS, reason=reason[case])


async def test_bcrypt_hash_verifies_and_is_rehashed_to_argon2id_only_on_success(env: Env) -> None:
    """A tutorial bcrypt hash logs in; failures leave it alone, success replaces it once."""
    legacy = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=4)).decode()
    alice = await env.users.create(ALICE, legacy)

    async def stored_hash() -> str:
        user = await env.users.get(alice.id)
        assert user is not None
        return user.password_hash

    await fail_login(env, ALICE)
    assert await stored_hash() == legacy
    await env.auth.set_disabled(alice.id, True)
    with pytest.raises(InvalidCredentials):  # right password, but the login still fails
        await env.auth.authenticate(ALICE, PASSWORD, address=ADDRESS)
    assert await stored_hash() == legacy
    await env.auth.set_disabled(alice.id, False)

    await env.auth.authenticate(ALICE, PASSWORD, address=ADDRESS)
    upgraded = await stored_hash()
    assert upgraded.startswith("$argon2id$")
    assert await env.auth.hasher.verify(PASSWORD, upgraded) == (True, None)
    await env.auth.authenticate(ALICE, PASSWORD, address=ADDRESS)
    assert await stored_hash() == upgraded  # upgraded once, not on every login


@pytest.mark.parametrize("email", [ALICE, "nobody@example.com"])
async def test_megabyte_password_is_refused_before_any_hashing(env: Env, email: str) -> None:
    """A 1 MB password raises PasswordPolicyError without a single hash, known user or not."""
    await env.add_user(ALICE)
    with pytest.raises(PasswordPolicyError):
        await env.auth.authenticate(email, "x" * 1_000_000, address=ADDRESS)
    assert sum(env.hashing.values()) == 0


# -- login, logout --------------------------------------------------------------------------


async def test_login_regenerates_and_records_the_client(env: Env) -> None:
    """Login issues a new token, deletes the old record, stores ip, ua, auth time and epoch."""
    alice = await env.add_user(ALICE, role="editor")
    anonymous = cookie_value(await env.call("GET", "/remember?cart=7"))
    env.clock.advance(30)
    cookie = await env.login(cookie=anonymous, ua="Firefox/128")
    assert cookie != anonymous
    assert await env.memory.load(handle_of(anonymous)) is None
    assert await env.whoami(anonymous) is None
    record = await env.memory.load(handle_of(cookie))
    assert record is not None
    assert record.user_id == str(alice.id)
    assert len(record.meta[CSRF_SEED]) == 22  # the CSRF seed: random, drawn at login
    assert {key: value for key, value in record.meta.items() if key != CSRF_SEED} == {
        "ip": "127.0.0.1",
        "ua": "Firefox/128",
        "auth": env.clock.now,
        "remember": False,
    }
    assert record.data == {"cart": "7"}  # the role is the principal's, never a session value
    assert record.principal is not None
    assert (record.epoch, record.principal.role) == (record.principal.epoch, "editor")
    assert len(env.memory) == 1


async def test_login_as_another_user_drops_the_previous_users_values(env: Env) -> None:
    """On a shared browser, values of the previous user's session never reach the next one."""
    bob = await env.add_user(BOB)
    await env.add_user(ALICE)
    alice_cookie = await env.login(ALICE)
    await env.call("GET", "/remember?cart=alice", alice_cookie)
    bob_cookie = await env.login(BOB, cookie=alice_cookie)
    record = await env.memory.load(handle_of(bob_cookie))
    assert record is not None
    assert (record.user_id, record.data) == (str(bob.id), {})
    assert await env.whoami(alice_cookie) is None


async def test_logout_destroys_the_session(env: Env) -> None:
    """Logout deletes the record, clears the cookie, and the old cookie is anonymous."""
    alice = await env.add_user(ALICE)
    cookie = await env.login()
    response = await env.call("POST", "/logout", cookie)
    assert response.json() == {"success": True}
    assert "Max-Age=0" in response.headers["set-cookie"]
    assert len(env.memory) == 0
    assert (await env.memory.list_user(str(alice.id))).sessions == []
    assert await env.whoami(cookie) is None


# -- password, role, disable, delete --------------------------------------------------------


async def test_change_password_revokes_others_and_regenerates_this_one(env: Env) -> None:
    """The current password is checked; other sessions die; this one gets a new cookie."""
    alice = await env.add_user(ALICE)
    bob = await env.add_user(BOB)
    here, elsewhere, bobs = await env.login(), await env.login(), await env.login(BOB)
    body = {"current_password": PASSWORD, "new_password": NEW_PASSWORD}
    response = await env.call("POST", "/password", here, json=body)
    assert response.json() == {"revoked": 1}
    renewed = cookie_value(response)
    assert renewed != here
    assert await env.whoami(here) is None
    assert await env.whoami(elsewhere) is None
    assert await env.whoami(renewed) == str(alice.id)
    assert await env.whoami(bobs) == str(bob.id)
    page = await env.memory.list_user(str(alice.id))
    assert [h for h, _ in page.sessions] == [handle_of(renewed)]
    with pytest.raises(InvalidCredentials):
        await env.auth.authenticate(ALICE, PASSWORD, address=ADDRESS)
    await env.auth.authenticate(ALICE, NEW_PASSWORD, address=ADDRESS)


async def test_change_password_with_a_wrong_current_password_changes_nothing(env: Env) -> None:
    """A wrong current password is a 401; no session is revoked and the password stays."""
    await env.add_user(ALICE)
    here, elsewhere = await env.login(), await env.login()
    body = {"current_password": WRONG, "new_password": NEW_PASSWORD}
    response = await env.call("POST", "/password", here, json=body)
    assert response.status_code == 401
    assert "set-cookie" not in response.headers
    assert await env.whoami(here) is not None
    assert await env.whoami(elsewhere) is not None
    await env.auth.authenticate(ALICE, PASSWORD, address=ADDRESS)
    with pytest.raises(InvalidCredentials):
        await env.auth.authenticate(ALICE, NEW_PASSWORD, address=ADDRESS)


async def test_set_role_applies_to_every_live_session_at_once(env: Env) -> None:
    """A role change is visible on the next request of each of the user's sessions."""
    alice = await env.add_user(ALICE)
    bob = await env.add_user(BOB)
    first, second, bobs = await env.login(), await env.login(), await env.login(BOB)
    updated = await env.auth.set_role(alice.id, "admin")
    assert updated.role == "admin"
    for cookie in (first, second):
        assert (await env.call("GET", "/me", cookie)).json()["role"] == "admin"
    assert (await env.call("GET", "/me", bobs)).json()["role"] == "user"
    stored = await env.users.get(bob.id)
    assert stored is not None
    assert stored.role == "user"


@pytest.mark.parametrize("action", ["disable", "delete"])
async def test_disabling_or_deleting_revokes_all_the_users_sessions(env: Env, action: str) -> None:
    """set_disabled(True) and delete_user end every session of that user, and only theirs."""
    alice = await env.add_user(ALICE)
    bob = await env.add_user(BOB)
    first, second, bobs = await env.login(), await env.login(), await env.login(BOB)
    if action == "disable":
        assert (await env.auth.set_disabled(alice.id, True)).disabled
    else:
        assert await env.auth.delete_user(alice.id) == 2
        assert await env.users.get(alice.id) is None
    assert await env.whoami(first) is None
    assert await env.whoami(second) is None
    assert (await env.memory.list_user(str(alice.id))).sessions == []
    assert await env.whoami(bobs) == str(bob.id)
    if action == "disable":
        assert env.events[-2:] == [
            AccountDisabled(user_id=alice.id, actor=None),
            SessionsRevoked(user_id=alice.id, count=2, why="disabled", actor=None),
        ]
    else:
        assert env.events[-2:] == [
            UserDeleted(user_id=alice.id, actor=None),
            SessionsRevoked(user_id=alice.id, count=2, why="deleted", actor=None),
        ]


async def test_a_demotion_that_fails_halfway_leaves_the_sessions_demoted(
    env: Env,
) -> None:
    """The principal is demoted before the account: a failure between leaves less, not more."""
    alice = await env.add_user(ALICE, role="admin")
    await env.add_user(BOB, role="admin")  # alice is not the last admin
    cookie = await env.login()
    assert (await env.call("GET", "/me", cookie)).json()["role"] == "admin"
    failing = InstrumentedStore(env.memory)
    auth = Authenticator(users=env.users, sessions=failing, hasher=env.auth.hasher, throttle=None)
    failing.fail = True
    with pytest.raises(StoreUnavailable):
        await auth.set_role(alice.id, "user")
    assert (await env.users.get(alice.id)) == alice  # nothing changed
    assert (await env.call("GET", "/me", cookie)).json()["role"] == "admin"
    failing.fail = False

    async def user_store_down(user_id: int, role: str, **options: object) -> User:
        raise ConnectionError("user store down")

    original = env.users.set_role
    env.users.set_role = user_store_down  # type: ignore[method-assign]
    with pytest.raises(ConnectionError):
        await auth.set_role(alice.id, "user")
    assert (await env.call("GET", "/me", cookie)).json()["role"] == "user"  # demoted, not kept
    stored = await env.users.get(alice.id)
    assert stored is not None
    assert stored.role == "admin"
    env.users.set_role = original  # type: ignore[method-assign]
    assert (await auth.set_role(alice.id, "user")).role == "user"  # the retry does the rest


@pytest.mark.parametrize("action", ["reset password", "disable", "delete"])
async def test_a_session_store_outage_leaves_the_account_and_its_sessions_as_they_were(
    env: Env, action: str
) -> None:
    """Revocation comes first: if the store is down, the account is not changed without it.

    Changed first, a disabled account, reset password or deleted user would keep every live
    session until it expired.
    """
    alice = await env.add_user(ALICE)
    cookie = await env.login()
    failing = InstrumentedStore(env.memory)
    auth = Authenticator(users=env.users, sessions=failing, hasher=env.auth.hasher, throttle=None)
    failing.fail = True
    operations = {
        "reset password": lambda: auth.set_password(alice.id, NEW_PASSWORD),
        "disable": lambda: auth.set_disabled(alice.id, True),
        "delete": lambda: auth.delete_user(alice.id),
    }
    with pytest.raises(StoreUnavailable):
        await operations[action]()
    assert failing.calls["change_principal"] == 1
    assert await env.users.get(alice.id) == alice
    assert await env.whoami(cookie) == str(alice.id)
    failing.fail = False
    await operations[action]()  # the retry does it all
    assert await env.whoami(cookie) is None


async def test_a_login_during_a_password_reset_is_revoked_too(env: Env) -> None:
    """A session created while the account changes is caught by the second revocation."""
    alice = await env.add_user(ALICE)
    before = await env.login()
    during: list[str] = []
    original = env.users.set_password

    async def set_password_while_someone_logs_in(
        user_id: int, password_hash: str, *, replacing: str | None = None
    ) -> bool:
        during.append(await env.login())
        return await original(user_id, password_hash, replacing=replacing)

    env.users.set_password = set_password_while_someone_logs_in  # type: ignore[method-assign]
    assert await env.auth.set_password(alice.id, NEW_PASSWORD) == 2
    assert await env.whoami(before) is None
    assert await env.whoami(during[0]) is None


async def test_a_password_reset_between_a_logins_reads_refuses_the_old_password(env: Env) -> None:
    """A reset landing after the login read the account, before its principal: no session."""
    alice = await env.add_user(ALICE)
    await env.login()  # the principal exists
    original = env.memory.principal

    async def principal_after_a_reset(user_id: str) -> Any:
        env.memory.principal = original  # type: ignore[method-assign]
        await env.auth.set_password(alice.id, NEW_PASSWORD)
        return await original(user_id)

    env.memory.principal = principal_after_a_reset  # type: ignore[method-assign]
    with pytest.raises(InvalidCredentials):
        await env.auth.authenticate(ALICE, PASSWORD, address=ADDRESS)
    assert (await env.memory.list_user(str(alice.id))).sessions == []


async def test_a_login_stale_because_its_principal_expired_is_retried_once(env: Env) -> None:
    """A principal forgotten between the password check and the create is installed again."""
    alice = await env.add_user(ALICE)
    accepted = await env.auth.authenticate(ALICE, PASSWORD, address=ADDRESS)
    env.memory._principals.pop(str(alice.id))  # the store forgot it (no session was left)
    session = Session()
    principal = await env.auth.login(session, accepted, address=ADDRESS, user_agent=None)
    assert principal.epoch != accepted.principal.epoch
    assert session.epoch == principal.epoch
    assert session.handle is not None
    record = await env.memory.load(session.handle)
    assert record is not None
    assert record.user_id == str(alice.id)


async def test_a_login_stale_because_the_account_changed_is_the_uniform_401(env: Env) -> None:
    """A rotation between the password check and the create: 401, a LoginFailed 'stale'."""
    alice = await env.add_user(ALICE)
    accepted = await env.auth.authenticate(ALICE, PASSWORD, address=ADDRESS)
    await env.auth.revoke_all_sessions(alice.id)
    session = Session()
    with pytest.raises(InvalidCredentials):
        await env.auth.login(session, accepted, address=ADDRESS, user_agent=None)
    assert env.events[-1] == LoginFailed(user_id=alice.id, address=ADDRESS, reason="stale")
    assert session.user_id is None
    assert (await env.memory.list_user(str(alice.id))).sessions == []


# -- listing and revoking sessions ----------------------------------------------------------


async def test_list_sessions_flags_the_current_one(env: Env) -> None:
    """Each session is listed once, with the asking one flagged and handles not cookies."""
    await env.add_user(ALICE)
    laptop = await env.login(ua="Laptop")
    env.clock.advance(1)
    phone = await env.login(ua="Phone")
    listed = (await env.call("GET", "/sessions", phone)).json()
    assert [(s["ua"], s["current"]) for s in listed] == [("Phone", True), ("Laptop", False)]
    assert {s["handle"] for s in listed} == {handle_of(laptop), handle_of(phone)}
    for entry in listed:
        assert entry["handle"] not in laptop + phone
        assert await env.whoami(entry["handle"]) is None


async def test_revoking_another_users_session_is_not_found_and_revokes_nothing(
    env: Env,
) -> None:
    """Someone else's handle is SessionNotFound, like a made-up one, and nothing is deleted."""
    alice = await env.add_user(ALICE)
    bob = await env.add_user(BOB)
    mine, bobs = await env.login(), await env.login(BOB)
    with pytest.raises(SessionNotFound):
        await env.auth.revoke_session(alice.id, handle_of(bobs))
    response = await env.call("DELETE", f"/sessions/{handle_of(bobs)}", mine)
    assert response.status_code == 404
    assert len(env.memory) == 2
    assert await env.whoami(bobs) == str(bob.id)
    assert not [e for e in env.events if isinstance(e, SessionRevoked | SessionsRevoked)]


async def test_revoking_an_own_session_by_handle_ends_it(env: Env) -> None:
    """A user's own handle revokes exactly that session."""
    alice = await env.add_user(ALICE)
    here, other = await env.login(), await env.login()
    response = await env.call("DELETE", f"/sessions/{handle_of(other)}", here)
    assert response.json() == {"success": True}
    assert await env.whoami(other) is None
    assert await env.whoami(here) == str(alice.id)


async def test_revoke_other_sessions_keeps_the_current_one(env: Env) -> None:
    """Every other session of the user goes; the asking session and other users' stay.

    The asking session carries on under a new token: its old one (which a renewal's forward
    may still lead from, sessionauth.forwards) reaches nothing any more.
    """
    alice = await env.add_user(ALICE)
    bob = await env.add_user(BOB)
    here, second, third, bobs = (
        await env.login(),
        await env.login(),
        await env.login(),
        await env.login(BOB),
    )
    response = await env.call("POST", "/sessions-revoke-others", here)
    assert response.json() == {"revoked": 2}
    kept = cookie_value(response)
    assert kept != here
    assert await env.whoami(kept) == str(alice.id)
    assert await env.whoami(here) is None
    assert await env.whoami(second) is None
    assert await env.whoami(third) is None
    assert await env.whoami(bobs) == str(bob.id)


async def test_revoke_other_sessions_needs_a_login() -> None:
    """An anonymous session cannot revoke anything."""
    auth = Authenticator(
        users=None,  # type: ignore[arg-type]  # never reached
        sessions=MemoryStore(),
        hasher=PasswordHasher.for_tests(),
        throttle=None,
    )
    with pytest.raises(NotAuthenticated):
        await auth.revoke_other_sessions(Session())


# -- events and logs ------------------------------------------------------------------------


async def test_hooks_and_security_log_see_events_but_no_secrets(
    env: Env, caplog: pytest.LogCaptureFixture
) -> None:
    """Hooks get each event object in order; each is logged once; none holds a password or token."""
    caplog.set_level(logging.DEBUG)
    alice = await env.add_user(ALICE)
    failed = await env.call("POST", "/login", json={"email": ALICE, "password": WRONG})
    assert failed.status_code == 401
    first, second = await env.login(), await env.login()
    second = cookie_value(await env.call("POST", "/sessions-revoke-others", second))
    body = {"current_password": PASSWORD, "new_password": NEW_PASSWORD}
    third = cookie_value(await env.call("POST", "/password", second, json=body))
    await env.call("POST", "/logout", third)
    await env.call("POST", "/login", json={"email": "ghost@example.com", "password": WRONG})

    here = "127.0.0.1"
    assert env.events == [
        LoginFailed(user_id=alice.id, address=here, reason="password"),
        LoginSucceeded(user_id=alice.id, address=here),
        LoginSucceeded(user_id=alice.id, address=here),
        SessionsRevoked(user_id=alice.id, address=here, count=1, why="others", actor=alice.id),
        PasswordChanged(user_id=alice.id, address=here),
        SessionsRevoked(
            user_id=alice.id, address=here, count=0, why="password-changed", actor=alice.id
        ),
        LoggedOut(user_id=alice.id, address=here),
        LoginFailed(user_id=None, address=here, reason="unknown"),
    ]
    assert env.async_events == env.events

    secrets = [WRONG, PASSWORD, NEW_PASSWORD]
    for cookie in (first, second, third):
        secrets += [cookie, cookie.split(".")[0]]
    security = [r for r in caplog.records if r.name == "sessionauth.security"]
    assert [r.__dict__["event"] for r in security] == [e.name for e in env.events]
    for record in caplog.records:
        text = record.getMessage() + repr(record.args)
        assert not [s for s in secrets if s in text], text
    for event in env.events:
        assert not [s for s in secrets if s in repr(event)]


# -- throttling -----------------------------------------------------------------------------


async def test_sixth_failed_attempt_is_throttled_before_any_hashing(env: Env) -> None:
    """Five failures are answered; the sixth, even with the right password, is 429 unhashed."""
    await env.add_user(ALICE)
    for _ in range(5):
        assert isinstance(await fail_login(env, ALICE), InvalidCredentials)
    env.hashing.clear()
    env.clock.advance(60)
    with pytest.raises(TooManyAttempts) as caught:
        await env.auth.authenticate(ALICE, PASSWORD, address=ADDRESS)
    assert caught.value.retry_after == 15 * 60 - 60
    assert sum(env.hashing.values()) == 0
    env.clock.advance(15 * 60)
    await env.auth.authenticate(ALICE, PASSWORD, address=ADDRESS)


async def test_unknown_accounts_are_throttled_exactly_like_known_ones(env: Env) -> None:
    """Attempt for attempt, an unknown email gets the same answers as a registered one."""
    await env.add_user(ALICE)

    async def outcomes(email: str, address: str) -> list[tuple[type[Exception], str, int]]:
        seen = []
        for _ in range(7):
            exc = await fail_login(env, email, address)
            seen.append((type(exc), str(exc), getattr(exc, "retry_after", 0)))
        return seen

    known = await outcomes(ALICE, "198.51.100.1")
    unknown = await outcomes("nobody@example.com", "198.51.100.2")
    assert known == unknown
    assert [kind for kind, _, _ in known] == [InvalidCredentials] * 5 + [TooManyAttempts] * 2
    assert known[-1][2] == 15 * 60


async def test_successful_login_resets_the_account_counter(env: Env) -> None:
    """After a success, the account has its full budget of five failures again."""
    await env.add_user(ALICE)
    for _ in range(4):
        await fail_login(env, ALICE)
    await env.auth.authenticate(ALICE, PASSWORD, address=ADDRESS)
    for _ in range(5):
        assert isinstance(await fail_login(env, ALICE), InvalidCredentials)
    assert isinstance(await fail_login(env, ALICE), TooManyAttempts)


async def test_login_route_answers_429_with_retry_after(env: Env) -> None:
    """Through the app, the sixth attempt is a 429 carrying the wait in Retry-After."""
    await env.add_user(ALICE)
    body = {"email": ALICE, "password": WRONG}
    statuses = [(await env.call("POST", "/login", json=body)).status_code for _ in range(5)]
    assert statuses == [401] * 5
    response = await env.call("POST", "/login", json={"email": ALICE, "password": PASSWORD})
    assert response.status_code == 429
    assert response.headers["retry-after"] == str(15 * 60)
    assert "set-cookie" not in response.headers
