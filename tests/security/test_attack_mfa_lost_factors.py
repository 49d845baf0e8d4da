"""Attack: second factors fail open when the session store loses their data.

Whether an account needs a second factor is known only to the factor store, which lives in the
session store's backend (``Backend.factor_store``). On Redis that is a hash per user with no
copy anywhere: a Redis restarted without persistence, a failover that lost writes, a restored
snapshot or an eviction removes it, and ``SecondFactors.methods`` then answers ``[]``, so the
password alone signs in to every account that had TOTP. Sessions lost the same way only cost a
new login; a lost factor silently downgrades the login. The store is treated as disposable
elsewhere (principals are "installed again from the users database"), but nothing durable
says that the account had a second factor.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import redis.asyncio as redis

from tests.integration.test_api import login
from tests.integration.test_mfa_api import MfaServer, _enrolled, _server

pytestmark = pytest.mark.redis


@pytest.fixture
async def server(tmp_path: Path, redis_url: str, redis_prefix: str) -> AsyncIterator[MfaServer]:
    """The reference server with sessions, principals and factors on Redis."""
    async for running in _server(tmp_path, store_url=f"{redis_url}?prefix={redis_prefix}"):
        yield running


async def _lose_everything(redis_url: str, prefix: str) -> int:
    """Delete every key under ``prefix``: a Redis restarted without persistence."""
    client = redis.from_url(redis_url)
    try:
        keys = [key async for key in client.scan_iter(match=f"{prefix}*")]
        return int(await client.delete(*keys)) if keys else 0
    finally:
        await client.aclose()


async def test_a_lost_factor_store_does_not_make_the_password_enough(
    server: MfaServer, redis_url: str, redis_prefix: str
) -> None:
    """After the Redis data is lost, Ann's password alone must not sign in."""
    await _enrolled(server, "ann@example.com")
    assert await _lose_everything(redis_url, redis_prefix) >= 1
    client = server.client()
    response = await login(client, "ann@example.com")
    assert response.json().get("success") is not True, "password alone signed in"
    assert (await client.get("/me")).status_code == 401
