"""A held login of the old password is refused after a reset, with the principal lost too.

``Authenticator.login`` retries a login refused as stale only for a principal that went
missing, and only "if the account still has the password hash just verified"
(``principal_after_stale``). ``TwoStepLogin.complete_login`` builds its ``Login`` with the
password hash read *at the code step*, not the one the password step verified: after a
password reset and a lost principal (a Redis key expired or lost in a failover, which the
store documents as "installed again by the next login"), the comparison is of the new hash
with itself and the held login of the old password signs in.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pyotp
import pytest
import redis.asyncio as redis

from tests.integration.test_api import INVALID
from tests.integration.test_mfa_api import _enrolled, _held
from tests.support.mfa_server import STEP, MfaServer, serve_mfa

pytestmark = pytest.mark.redis


@pytest.fixture
async def server(tmp_path: Path, redis_url: str, redis_prefix: str) -> AsyncIterator[MfaServer]:
    """The reference server with sessions, principals and factors on Redis."""
    async for running in serve_mfa(tmp_path, store_url=f"{redis_url}?prefix={redis_prefix}"):
        yield running


async def _lose_principals(redis_url: str, prefix: str) -> int:
    """Delete the user hashes (the principals) under ``prefix``, as an expiry or failover does."""
    client = redis.from_url(redis_url)
    try:
        lost = 0
        async for key in client.scan_iter(match=f"{prefix}*"):
            if await client.type(key) == b"hash" and await client.hexists(key, "p"):
                lost += await client.delete(key)
        return lost
    finally:
        await client.aclose()


async def test_a_held_login_of_the_old_password_is_refused_after_a_reset(
    server: MfaServer, redis_url: str, redis_prefix: str
) -> None:
    """Password step with the old password; reset; principal lost; the code must not sign in."""
    user, secret, _ = await _enrolled(server, "ann@example.com")
    attacker, token = await _held(server, "ann@example.com")
    auth = server.app.state.authenticator
    await auth.set_password(user.id, "a brand new password")
    assert await _lose_principals(redis_url, redis_prefix) >= 1
    server.clock.advance(STEP)
    code = pyotp.TOTP(secret).at(server.clock.now)
    response = await attacker.post("/login/mfa", json={"code": code}, headers=token)
    assert (response.status_code, response.json()) == (401, INVALID)
    assert (await attacker.get("/me")).status_code == 401
