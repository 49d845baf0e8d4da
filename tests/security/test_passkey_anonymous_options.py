"""Attack 2: cookieless clients fill the session store through ``POST /passkeys/login/options``.

DESIGN.md section 3.1: a request with no valid cookie stores nothing unless something is
written, so anonymous traffic makes no store rows. ``Passkeys.authentication_options`` writes
the sign-in challenge into the (anonymous) session, so each cookieless call of the sign-in
options creates a stored session row. Nothing limits the calls: with no cookie and no
``Origin`` the CSRF layer lets the post through (the cookieless-login rule), no throttle is
consulted, and each row lives the session's idle timeout (24 h by default) although the
challenge in it is good for 5 minutes. A script looping on this one request grows the store
without bound; on Redis with ``maxmemory`` it ends in ``StoreFull``, where every login fails
closed. The fix: keep the sign-in challenge out of the session store (a signed, expiring
pre-session value, or the challenge alone under its hash in the attempt counter with the
5-minute TTL), or at the very least store such a session no longer than the challenge.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import redis.asyncio as redis

from sessionauth.auth.passkeys import CHALLENGE_TTL
from sessionauth.stores.memory import MemoryStore
from tests.support.mfa_server import MfaServer, serve_mfa

CALLS = 20


async def _call_options(server: MfaServer) -> None:
    """One cookieless client per call, as a script would send them."""
    for _ in range(CALLS):
        response = await server.client().post("/passkeys/login/options")
        assert response.status_code == 200, response.text


@pytest.fixture
async def memory_server(tmp_path: Path) -> AsyncIterator[MfaServer]:
    """The server with its sessions in memory."""
    async for running in serve_mfa(tmp_path, store_url="memory://"):
        yield running


async def test_memory_store_rows_outlive_the_challenge(memory_server: MfaServer) -> None:
    """In-memory sessions: no row a cookieless caller made outlives the challenge in it."""
    server = memory_server
    store = server.app.state.authenticator.sessions
    while not isinstance(store, MemoryStore):
        store = store.inner
    await _call_options(server)
    now = server.clock.now
    kept = [r.expires - now for r in store._records.values() if r.expires > now + CHALLENGE_TTL]
    assert kept == [], f"{len(kept)} anonymous rows kept {max(kept):.0f} s each"


@pytest.fixture
async def redis_server(
    tmp_path: Path, redis_url: str, redis_prefix: str
) -> AsyncIterator[MfaServer]:
    """The server with its sessions on Redis."""
    async for running in serve_mfa(tmp_path, store_url=f"{redis_url}?prefix={redis_prefix}"):
        yield running


@pytest.mark.redis
async def test_redis_keys_outlive_the_challenge(
    redis_server: MfaServer, redis_url: str, redis_prefix: str
) -> None:
    """Redis sessions: no key a cookieless caller made lives longer than the challenge."""
    client = redis.from_url(redis_url)
    try:
        before = {key async for key in client.scan_iter(match=redis_prefix + "*")}
        await _call_options(redis_server)
        made = [key async for key in client.scan_iter(match=redis_prefix + "*")]
        ttls = [await client.ttl(key) for key in made if key not in before]
    finally:
        await client.aclose()
    long_lived = [ttl for ttl in ttls if ttl == -1 or ttl > CHALLENGE_TTL]
    assert long_lived == [], (
        f"{len(long_lived)} keys from {CALLS} cookieless calls, TTLs {set(long_lived)}"
    )
