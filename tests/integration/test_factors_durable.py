"""Second factors outlive the session store: sessions on Redis, accounts and factors on SQLite.

A Redis restart without persistence, a flush or a failover to a replica that missed writes
loses the session store's keys. The factors must not go with them: an account with TOTP
would then log in with its password alone, and a used recovery code would come back.
"""

from __future__ import annotations

import asyncio

import pytest

from tests.integration.test_api import login
from tests.integration.test_mfa_api import INVALID_CODE, _enrolled, _held
from tests.integration.test_passkey_api import INVALID_PASSKEY, passkey_login, with_passkey
from tests.support.mfa_server import MfaServer
from tests.support.services import delete_redis_keys

pytestmark = pytest.mark.redis


async def _lose_the_session_store(redis_url: str, redis_prefix: str) -> None:
    """Delete every key of this test's prefix, as a Redis restart without persistence would."""
    deleted = await asyncio.to_thread(delete_redis_keys, redis_url, redis_prefix)
    assert deleted > 0  # the test's sessions were there: the loss is real


async def test_totp_still_asked_after_the_session_store_is_lost(
    redis_server: MfaServer, redis_url: str, redis_prefix: str
) -> None:
    """After the Redis keys are gone, the password alone still only holds the login."""
    await _enrolled(redis_server, "ann@example.com")
    await _lose_the_session_store(redis_url, redis_prefix)
    client = redis_server.client()
    response = await login(client, "ann@example.com")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["mfaRequired"] is True
    assert "totp" in body["methods"]
    assert (await client.get("/me")).status_code == 401


async def test_a_used_recovery_code_stays_used_after_the_session_store_is_lost(
    redis_server: MfaServer, redis_url: str, redis_prefix: str
) -> None:
    """A recovery code used before the loss is refused after it; an unused one still works."""
    _, _, codes = await _enrolled(redis_server, "ann@example.com")
    client, token = await _held(redis_server, "ann@example.com")
    used = await client.post("/login/mfa", json={"recoveryCode": codes[0]}, headers=token)
    assert used.status_code == 200, used.text
    await _lose_the_session_store(redis_url, redis_prefix)
    again, token = await _held(redis_server, "ann@example.com")
    reused = await again.post("/login/mfa", json={"recoveryCode": codes[0]}, headers=token)
    assert (reused.status_code, reused.json()) == (401, INVALID_CODE)
    fresh = await again.post("/login/mfa", json={"recoveryCode": codes[1]}, headers=token)
    assert fresh.status_code == 200, fresh.text


async def test_a_passkey_and_its_counter_outlive_the_session_store(
    redis_server: MfaServer, redis_url: str, redis_prefix: str
) -> None:
    """After the loss the passkey still signs in, and a clone's stale counter is still refused."""
    _, key = await with_passkey(redis_server, "ann@example.com")
    assert (await passkey_login(redis_server.client(), key)).status_code == 200
    await _lose_the_session_store(redis_url, redis_prefix)
    clone_counter = key.counter  # a clone made now signs with the count already used
    assert (await passkey_login(redis_server.client(), key)).status_code == 200
    key.counter = clone_counter - 1
    cloned = await passkey_login(redis_server.client(), key)
    assert (cloned.status_code, cloned.json()) == (401, INVALID_PASSKEY)
