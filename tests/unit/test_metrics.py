"""The server's metrics count from the Authenticator's events, whichever route acted."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from sessionauth.auth.authenticator import Authenticator
from sessionauth.auth.passwords import PasswordHasher
from sessionauth.auth.throttle import LoginThrottle
from sessionauth.errors import InvalidCredentials, TooManyAttempts
from sessionauth.record import SessionRecord
from sessionauth.server.metrics import Metrics, TimedStore
from sessionauth.session import Session
from sessionauth.stores.memory import MemoryCounter, MemoryStore
from sessionauth.stores.users import User
from tests.support.backends import user_store
from tests.support.clock import FakeClock

PASSWORD = "correct horse battery"
ADDRESS = "198.51.100.7"


@dataclass
class Counted:
    """An Authenticator whose events a Metrics counts, over a timed memory store."""

    auth: Authenticator
    metrics: Metrics
    clock: FakeClock

    def value(self, name: str, **labels: str) -> float:
        """The current value of a sample (0 when it was never set)."""
        return self.metrics.registry.get_sample_value(name, labels) or 0.0

    async def user(self) -> User:
        """An account, made straight in the user store."""
        hashed = await self.auth.hasher.hash(PASSWORD)
        return await self.auth.users.create("alice@example.com", hashed)

    async def sessions(self, user: User, n: int) -> list[str]:
        """Store ``n`` live sessions of ``user``; return their handles."""
        now = self.clock()
        handles = [f"s{i}" for i in range(n)]
        for handle in handles:
            record = SessionRecord(
                data={}, created=now, seen=now, issued=now, expires=now + 60, user_id=str(user.id)
            )
            await self.auth.sessions.create(handle, record)
        return handles


@pytest.fixture
async def counted(tmp_path: Path) -> AsyncIterator[Counted]:
    clock = FakeClock()
    metrics = Metrics()
    async with user_store(f"sqlite:///{tmp_path / 'users.db'}", clock=clock) as users:
        auth = Authenticator(
            users=users,
            sessions=TimedStore(MemoryStore(clock=clock), metrics),
            hasher=PasswordHasher.for_tests(),
            throttle=LoginThrottle(MemoryCounter(clock), clock=clock),
            clock=clock,
        )
        metrics.subscribe(auth.events)
        yield Counted(auth, metrics, clock)


async def test_logins_are_counted_by_result(counted: Counted) -> None:
    """One good login and one bad: ok 1, failed 1."""
    await counted.user()
    accepted = await counted.auth.authenticate("alice@example.com", PASSWORD, address=ADDRESS)
    await counted.auth.login(Session(), accepted, address=ADDRESS, user_agent=None)
    with pytest.raises(InvalidCredentials):
        await counted.auth.authenticate("alice@example.com", "not it at all", address=ADDRESS)
    assert counted.value("sessionauth_logins_total", result="ok") == 1
    assert counted.value("sessionauth_logins_total", result="failed") == 1


async def test_a_throttled_login_is_counted_and_is_not_a_failure(counted: Counted) -> None:
    """Five failures then a refusal: failed 5, throttled 1."""
    await counted.user()
    for _ in range(5):
        with pytest.raises(InvalidCredentials):
            await counted.auth.authenticate("alice@example.com", "not it at all", address=ADDRESS)
    with pytest.raises(TooManyAttempts):
        await counted.auth.authenticate("alice@example.com", PASSWORD, address=ADDRESS)
    assert counted.value("sessionauth_logins_total", result="failed") == 5
    assert counted.value("sessionauth_login_throttled_total") == 1


async def test_a_wrong_current_password_is_not_counted_as_a_failed_login(
    counted: Counted,
) -> None:
    """A failed password change check leaves the login counters alone."""
    user = await counted.user()
    session = Session(handle="h", user_id=str(user.id))
    with pytest.raises(InvalidCredentials):
        await counted.auth.change_password(
            session, "not it at all", "a new passphrase", address=None
        )
    assert counted.value("sessionauth_logins_total", result="failed") == 0


async def test_revocations_are_counted_one_and_many(counted: Counted) -> None:
    """One session by handle, then the other three at once: four revoked in all."""
    user = await counted.user()
    first, *_ = await counted.sessions(user, 4)
    await counted.auth.revoke_session(user.id, first)
    assert counted.value("sessionauth_sessions_revoked_total") == 1
    assert await counted.auth.revoke_all_sessions(user.id) == 3
    assert counted.value("sessionauth_sessions_revoked_total") == 4


async def test_a_revocation_that_ends_nothing_counts_nothing(counted: Counted) -> None:
    """Signing out others with no other session: the counter stays at 0."""
    user = await counted.user()
    [mine] = await counted.sessions(user, 1)
    session = Session(handle=mine, user_id=str(user.id))
    assert await counted.auth.revoke_other_sessions(session) == 0
    assert counted.value("sessionauth_sessions_revoked_total") == 0
