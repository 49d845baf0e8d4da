"""Remember-me on every store: the flag round-trips, picks the cookie and the absolute timeout.

A login with ``remember=True`` gets a persistent cookie and the policy's ``absolute_timeout``;
without it, a browser-session cookie and ``short_absolute_timeout``, enforced from the record
(a cookie the browser kept is dead all the same). The flag survives a regeneration and a
renewal, and a record stored before remember-me (no flag) loads as remembered.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from http.cookiejar import CookieJar, DefaultCookiePolicy
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from sessionauth.auth.authenticator import Authenticator
from sessionauth.auth.passwords import PasswordHasher
from sessionauth.middleware import SessionMiddleware
from sessionauth.policy import TimeoutPolicy
from sessionauth.record import SessionRecord
from sessionauth.session import Session
from sessionauth.tokens import Keyring, new_token, storage_id
from tests.contract.harness import Harness
from tests.support.backends import user_store
from tests.support.clock import FakeClock
from tests.support.records import sign_in

KEYRING = Keyring(["r" * 40])
NAME = "__Host-session"
PASSWORD = "correct horse battery"
HOUR = 3600.0
# Renewal every 5 h: a session lives through rotations before either absolute deadline.
POLICY = TimeoutPolicy(renewal_interval=5 * HOUR)


def _session(request: Request) -> Session:
    session = request.scope["session"]
    assert isinstance(session, Session)
    return session


def _app(auth: Authenticator) -> Starlette:
    async def login(request: Request) -> Response:
        body = await request.json()
        accepted = await auth.authenticate(body["email"], PASSWORD, address="192.0.2.7")
        await auth.login(
            _session(request), accepted, address="192.0.2.7", user_agent="t", **body["options"]
        )
        return JSONResponse({"ok": True})

    async def read(request: Request) -> Response:
        session = _session(request)
        return JSONResponse({"user": session.user_id, "remembered": session.remembered})

    async def regenerate(request: Request) -> Response:
        _session(request).regenerate()
        return JSONResponse({"ok": True})

    async def sessions(request: Request) -> Response:
        listing = await auth.list_sessions(int(request.path_params["user"]))
        return JSONResponse({info.handle: info.remembered for info in listing.sessions})

    return Starlette(
        routes=[
            Route("/login", login, methods=["POST"]),
            Route("/read", read),
            Route("/regenerate", regenerate),
            Route("/sessions/{user}", sessions),
        ]
    )


@dataclass
class Env:
    """The middleware and the Authenticator over the store under test, and a client."""

    harness: Harness
    auth: Authenticator
    clock: FakeClock
    client: httpx.AsyncClient
    user_id: int

    async def get(self, path: str, cookie: str) -> httpx.Response:
        return await self.client.get(path, headers={"cookie": f"{NAME}={cookie}"})

    async def login(self, **options: bool) -> httpx.Response:
        body = {"email": "ann@example.com", "options": options}
        response = await self.client.post("/login", json=body)
        assert response.status_code == 200
        return response

    async def visit(self, cookie: str) -> str | None:
        """Use the session: its cookie afterwards (renewed when due), ``None`` if it is dead."""
        response = await self.get("/read", cookie)
        if response.json()["user"] is None:
            return None
        return cookie_of(response)[0] if "set-cookie" in response.headers else cookie


def cookie_of(response: httpx.Response) -> tuple[str, list[str]]:
    """The session cookie's value and its attributes, lower-cased."""
    assert "set-cookie" in response.headers, (response.status_code, response.text)
    header = response.headers["set-cookie"]
    first, *attributes = [part.strip() for part in header.split(";")]
    name, value = first.split("=", 1)
    assert name == NAME
    return value, [attribute.lower() for attribute in attributes]


def max_age(attributes: list[str]) -> float | None:
    """The cookie's Max-Age (``None``: a browser-session cookie); it has no Expires either."""
    assert not [a for a in attributes if a.startswith("expires")]
    ages = [float(a.split("=", 1)[1]) for a in attributes if a.startswith("max-age=")]
    return ages[0] if ages else None


def sid_of(cookie: str) -> str:
    token = KEYRING.unsign(cookie)
    assert token is not None
    return storage_id(token)


@pytest.fixture
async def env(harness: Harness, clock: FakeClock, tmp_path: Path) -> AsyncIterator[Env]:
    users = user_store(f"sqlite:///{tmp_path / 'users.db'}", clock=clock)
    hasher = PasswordHasher.for_tests()
    auth = Authenticator(
        users=users, sessions=harness.store, hasher=hasher, throttle=None, clock=clock
    )
    user = await users.create("ann@example.com", await hasher.hash(PASSWORD))
    app = SessionMiddleware(
        _app(auth), store=harness.store, keyring=KEYRING, clock=clock, policy=POLICY
    )
    # Cookies are sent by hand: a jar would mix the "browsers" of a test up.
    jar = CookieJar(policy=DefaultCookiePolicy(allowed_domains=[]))
    client = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="https://testserver", cookies=jar
    )
    async with client:
        yield Env(harness, auth, clock, client, user.id)
    await users.aclose()


async def test_the_cookie_and_the_stored_flag_follow_remember(env: Env) -> None:
    """remember=False: no Max-Age or Expires; True: Max-Age of the absolute timeout; stored."""
    forgetful, attributes = cookie_of(await env.login())
    assert max_age(attributes) is None
    remembered, attributes = cookie_of(await env.login(remember=True))
    assert max_age(attributes) == POLICY.absolute_timeout
    for cookie, flag in ((forgetful, False), (remembered, True)):
        record = await env.harness.store.load(sid_of(cookie))
        assert record is not None
        assert record.meta["remember"] is flag
        read = (await env.get("/read", cookie)).json()
        assert read == {"user": str(env.user_id), "remembered": flag}
    listed = (await env.get(f"/sessions/{env.user_id}", forgetful)).json()
    assert listed == {sid_of(forgetful): False, sid_of(remembered): True}


async def test_a_session_not_remembered_dies_at_the_short_absolute_timeout(env: Env) -> None:
    """In use all along, a session without remember-me is dead 12 h after login, in the store too.

    The remembered one, logged in at the same moment, lives on: the short timeout comes from
    the record, not from the policy alone.
    """
    forgetful: str | None = cookie_of(await env.login())[0]
    remembered: str | None = cookie_of(await env.login(remember=True))[0]
    for _ in range(11):  # 11 h of hourly requests: touches and renewals, never idle
        env.clock.advance(HOUR)
        assert forgetful is not None
        assert remembered is not None
        forgetful, remembered = await env.visit(forgetful), await env.visit(remembered)
    env.clock.advance(HOUR - 1)
    assert forgetful is not None
    assert remembered is not None
    forgetful = await env.visit(forgetful)
    assert forgetful is not None
    # A second past 12 h after the login (Redis keeps milliseconds): the browser still sends
    # the cookie.
    env.clock.advance(2)
    response = await env.get("/read", forgetful)
    assert response.json()["user"] is None
    assert cookie_of(response)[0] == ""  # and is told to forget it
    assert await env.harness.store.load(sid_of(forgetful)) is None
    assert await env.visit(remembered) is not None


async def test_regeneration_and_renewal_keep_the_flag(env: Env) -> None:
    """A rotated session keeps its cookie kind and its absolute deadline, remembered or not."""
    forgetful, _ = cookie_of(await env.login())
    remembered, _ = cookie_of(await env.login(remember=True))
    forgetful, attributes = cookie_of(await env.get("/regenerate", forgetful))
    assert max_age(attributes) is None
    remembered, attributes = cookie_of(await env.get("/regenerate", remembered))
    assert max_age(attributes) == pytest.approx(POLICY.absolute_timeout, abs=1)
    for renewal in (1, 2):  # renewals at 5 h and 10 h (and a second: Redis keeps milliseconds)
        env.clock.advance(5 * HOUR + 1)
        forgetful, attributes = cookie_of(await env.get("/read", forgetful))
        assert max_age(attributes) is None
        remembered, attributes = cookie_of(await env.get("/read", remembered))
        left = POLICY.absolute_timeout - renewal * (5 * HOUR + 1)  # the deadline did not move
        assert max_age(attributes) == pytest.approx(left, abs=1)
    for cookie, flag in ((forgetful, False), (remembered, True)):
        record = await env.harness.store.load(sid_of(cookie))
        assert record is not None
        assert record.meta["remember"] is flag
    env.clock.advance(2 * HOUR)  # past 12 h after the login
    assert await env.visit(forgetful) is None
    assert await env.visit(remembered) is not None


async def test_a_record_stored_before_remember_me_loads_as_remembered(env: Env) -> None:
    """A record without the flag (every session was persistent) is served, kept, and listed.

    It lives past the short timeout, and a renewal gives it a persistent cookie.
    """
    token = new_token(str(env.user_id))
    now = env.clock()
    old = SessionRecord(
        data={"cart": [1, 2]},
        created=now,
        seen=now,
        issued=now,
        expires=now + POLICY.idle_timeout,
        user_id=str(env.user_id),
        meta={"ip": "192.0.2.9", "ua": "old", "auth": now},
    )
    await sign_in(env.harness.store, storage_id(token), old)
    cookie: str | None = KEYRING.sign(token)
    assert cookie is not None
    read = (await env.get("/read", cookie)).json()
    assert read == {"user": str(env.user_id), "remembered": True}
    listed = (await env.get(f"/sessions/{env.user_id}", cookie)).json()
    assert listed == {storage_id(token): True}
    env.clock.advance(6 * HOUR)  # a renewal is due
    response = await env.get("/read", cookie)
    cookie, attributes = cookie_of(response)
    assert max_age(attributes) == pytest.approx(POLICY.absolute_timeout - 6 * HOUR, abs=1)
    env.clock.advance(7 * HOUR)  # 13 h after the login: past the short timeout
    assert await env.visit(cookie) is not None
