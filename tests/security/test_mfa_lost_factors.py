"""A lost session store does not make the password enough: the layout the server ships.

Found by an attack review: the reference server kept second factors in the session store's
backend, so a Redis restarted without persistence (a flush, a failover that lost writes, an
eviction) dropped them and the password alone signed in to every account that had TOTP. The
server now keeps factors with the accounts (``SESSIONAUTH_DATABASE_URL``), and the library
documents that layout as the supported one (:mod:`sessionauth.stores.factors`,
:mod:`sessionauth.backends.redis.factors`): a Redis factor store next to SQL accounts is
unsupported, since nothing durable would say that an account had a second factor. So the
attack runs against the shipped layout, sessions and counters on Redis and accounts with
their factors on SQLite: it failed before the move, with factors on Redis.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import redis.asyncio as redis

from tests.integration.test_api import login
from tests.integration.test_mfa_api import _enrolled
from tests.support.mfa_server import MfaServer, serve_mfa

pytestmark = pytest.mark.redis


@pytest.fixture
async def server(tmp_path: Path, redis_url: str, redis_prefix: str) -> AsyncIterator[MfaServer]:
    """The reference server with sessions, principals and counters on Redis, users on SQLite."""
    async for running in serve_mfa(tmp_path, store_url=f"{redis_url}?prefix={redis_prefix}"):
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
    """After the Redis data is lost, Ann's password alone does not sign in; her code does."""
    _, secret, _ = await _enrolled(server, "ann@example.com")
    assert await _lose_everything(redis_url, redis_prefix) >= 1
    client = server.client()
    response = await login(client, "ann@example.com")
    assert response.json().get("success") is not True, "password alone signed in"
    assert (await client.get("/me")).status_code == 401
    # The factor is still there, not merely refused: the held login completes with a code.
    token = {"X-CSRF-Token": response.json()["csrfToken"]}
    done = await client.post("/login/mfa", json={"code": server.code(secret)}, headers=token)
    assert done.status_code == 200, done.text
