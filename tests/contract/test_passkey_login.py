"""Passkey sign-in through the Authenticator with sessions, counters and factors on each backend.

The users live in SQLite (they are not what varies); the session store, the attempt counter
(the challenges' single use, the throttle) and the factor store are the backend's, each over
its real server, so create-if-current and the sign counter's compare-and-set are the backend's.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from sessionauth.auth.authenticator import Authenticator
from sessionauth.auth.passkeys import ChallengeKeeper, Passkeys, RelyingParty
from sessionauth.auth.passwords import PasswordHasher
from sessionauth.auth.throttle import LoginThrottle
from sessionauth.backends import open_backend
from sessionauth.errors import InvalidCode, InvalidCredentials
from sessionauth.session import Session
from sessionauth.stores.users import User
from sessionauth.tokens import Keyring
from tests.support.backends import user_store
from tests.support.clock import FakeClock
from tests.support.webauthn import ORIGIN, SoftAuthenticator

RP = RelyingParty(id="example.com", name="Example", origins=(ORIGIN,))
HASHER = PasswordHasher.for_tests()

KEYRING = Keyring(["passkey-test-" + "k" * 40])


@dataclass
class World:
    """An Authenticator with passkeys on one backend, and one user signed in."""

    auth: Authenticator[int]
    user: User
    session: Session


def _url(name: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if name == "memory":
        return "memory://"
    if name == "sqlite":
        return f"sqlite:///{tmp_path / 'sessions.db'}"
    if name == "postgres":
        return str(request.getfixturevalue("postgres_dsn"))
    return (
        f"{request.getfixturevalue('redis_url')}?prefix={request.getfixturevalue('redis_prefix')}"
    )


@pytest.fixture(params=["memory", "sqlite", "redis", "postgres"])
async def world(
    request: pytest.FixtureRequest, tmp_path: Path, clock: FakeClock
) -> AsyncIterator[World]:
    backend = open_backend(_url(request.param, request, tmp_path), clock=clock)
    # A run's PostgreSQL database is its own, dropped at the end: fresh tables suffice.
    tag = secrets.token_hex(6)

    def options(kind: str) -> dict[str, Any]:
        return {"table": f"pk_{kind}_{tag}"} if request.param == "postgres" else {}

    users = user_store(f"sqlite:///{tmp_path / 'users.db'}")
    counter = backend.attempt_counter(**options("attempts"))
    auth: Authenticator[int] = Authenticator(
        users=users,
        sessions=backend.session_store(**options("sessions")),
        hasher=HASHER,
        throttle=LoginThrottle(counter, clock=clock),
        clock=clock,
    )
    auth.passkeys = Passkeys(
        store=backend.factor_store(**options("factors")),
        rp=RP,
        challenges=ChallengeKeeper(counter, KEYRING, clock=clock),
        clock=clock,
        events=auth.events,
    )
    try:
        user = await users.create("ann@example.com", await HASHER.hash("pw " * 4))
        session = Session()
        accepted = await auth.authenticate("ann@example.com", "pw " * 4, address="10.0.0.1")
        await auth.login(session, accepted, address="10.0.0.1", user_agent=None)
        yield World(auth, user, session)
    finally:
        await users.aclose()
        await backend.aclose()


async def _register(world: World) -> SoftAuthenticator:
    key = SoftAuthenticator()
    options = await world.auth.passkey_registration_options(world.session)
    await world.auth.register_passkey(world.session, key.create(options), name="Key")
    return key


async def _sign_in(world: World, key: SoftAuthenticator) -> Session:
    session = Session()
    credential = key.get(world.auth.passkey_login_options())
    await world.auth.login_with_passkey(session, credential, address="10.0.0.2", user_agent="test")
    return session


async def test_a_passkey_signs_in_until_it_is_deleted(world: World) -> None:
    """Registered: signs in (the user, the epoch in force); deleted: refused."""
    key = await _register(world)
    session = await _sign_in(world, key)
    assert session.user_id == str(world.user.id)
    assert await world.auth.count_sessions(world.user.id) == 2
    await world.auth.delete_passkey(world.session, key.credential_id)
    assert await world.auth.count_sessions(world.user.id) == 1  # the passkey's session ended
    with pytest.raises(InvalidCode):
        await _sign_in(world, key)


async def test_a_counter_that_does_not_grow_is_refused(world: World) -> None:
    """The backend's compare-and-set: the same count twice is a clone, refused."""
    key = await _register(world)
    await _sign_in(world, key)
    key.counter -= 1
    with pytest.raises(InvalidCode):
        await _sign_in(world, key)
    assert await world.auth.count_sessions(world.user.id) == 2


async def test_one_assertion_signs_in_once(world: World) -> None:
    """The challenge is used up: the same session and assertion again is refused."""
    key = await _register(world)
    session = Session()
    credential = key.get(world.auth.passkey_login_options())
    snapshot = dict(session)
    await world.auth.login_with_passkey(session, credential, address=None, user_agent=None)
    replayed = Session()
    replayed.update(json.loads(json.dumps(snapshot)))  # the challenge, copied before its use
    with pytest.raises(InvalidCode):
        await world.auth.login_with_passkey(replayed, credential, address=None, user_agent=None)


async def test_a_sign_in_after_the_principal_moved_is_refused(world: World) -> None:
    """Read before the check, stored after a revocation: the store refuses the stale epoch."""
    key = await _register(world)
    session = Session()
    credential = key.get(world.auth.passkey_login_options())
    original = world.auth.passkeys
    assert original is not None

    class Revoking(Passkeys):
        async def authenticate(self, c: str | dict[str, Any]) -> tuple[str, Any]:
            found = await super().authenticate(c)
            await world.auth.revoke_all_sessions(world.user.id)
            return found

    revoking = Revoking.__new__(Revoking)
    revoking.__dict__.update(original.__dict__)
    world.auth.passkeys = revoking
    with pytest.raises(InvalidCredentials):
        await world.auth.login_with_passkey(session, credential, address=None, user_agent=None)
    assert session.user_id is None
    assert await world.auth.count_sessions(world.user.id) == 0
