"""A login that meets a frozen Redis fails after one store timeout, not three.

CI caught ``POST /login -> 503 in 6.03 s`` with a 2 s store timeout
(tests/integration/test_faults_under_load.py): Redis froze after the login's reservation,
the principal read waited out its timeout, and then giving the attempt back waited out the
timeout again for each of its two keys, one after the other. Now, after an outage, the
places are given back in the background (``LoginThrottle.release(..., after=)``), both keys
at once, and the request fails as soon as the error is known.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from sessionauth.auth import Authenticator, LoginThrottle, PasswordHasher
from sessionauth.auth.throttle import Attempt
from sessionauth.backends import open_backend
from sessionauth.backends.base import Backend
from sessionauth.errors import InvalidCredentials, StoreUnavailable
from tests.support.services import RedisServer

TIMEOUT = 0.5  # the store's timeout in this test
PASSWORD = "correct horse battery"
ADDRESS = "192.0.2.7"


@pytest.fixture
async def redis(private_redis: RedisServer) -> AsyncIterator[Backend]:
    backend = open_backend(private_redis.url, timeout=TIMEOUT)
    try:
        yield backend
    finally:
        private_redis.resume()  # a failed test must not leave it frozen for the teardown
        await backend.aclose()


async def test_a_store_frozen_after_the_reservation_costs_one_timeout(
    redis: Backend, private_redis: RedisServer, tmp_path: Path
) -> None:
    """The login raises StoreUnavailable with its give-backs still pending; they land later."""
    counter = redis.attempt_counter()
    release = counter.release
    releases: list[str] = []

    async def recorded_release(key: str, reset_at: float) -> None:
        releases.append("started")
        await release(key, reset_at)
        releases.append("done")

    counter.release = recorded_release  # type: ignore[method-assign]
    throttle = LoginThrottle(counter, max_per_account=2)
    reserve = throttle.reserve

    async def reserve_then_freeze(account: str, address: str) -> Attempt:
        attempt = await reserve(account, address)
        private_redis.pause()  # frozen: connections stay open, nothing answers
        return attempt

    users = open_backend(f"sqlite:///{tmp_path / 'users.db'}")
    auth: Authenticator[int] = Authenticator(
        users=users.user_store(),
        sessions=redis.session_store(),
        hasher=PasswordHasher.for_tests(),
        throttle=throttle,
    )
    try:
        await auth.user_store().create("ann@example.com", await auth.hasher.hash(PASSWORD))
        throttle.reserve = reserve_then_freeze  # type: ignore[method-assign]
        with pytest.raises(StoreUnavailable):
            await auth.authenticate("ann@example.com", PASSWORD, address=ADDRESS)
        # It raised without waiting on any give-back (it used to wait out both, one after the
        # other, on the frozen store: ["started", "started"] by now, neither done).
        assert releases == []

        private_redis.resume()
        await throttle.given_back()
        assert releases == ["started", "started", "done", "done"]
        # Both places came back: the budget of two is whole again (else the second is 429).
        throttle.reserve = reserve  # type: ignore[method-assign]
        for _ in range(2):
            with pytest.raises(InvalidCredentials):
                await auth.authenticate("ann@example.com", "a wrong password", address=ADDRESS)
    finally:
        await users.aclose()
