"""Logins through Sentinel when no replica acknowledges: refused cleanly, nothing left behind."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from sessionauth.errors import StoreUnavailable
from tests.support.apps import running_app
from tests.support.records import eventually
from tests.support.services import RedisSentinelSetup, RedisServer

pytestmark = pytest.mark.redis

PASSWORD = "correct horse battery"


@pytest.fixture
def frozen_replica(redis_sentinel: RedisSentinelSetup) -> Iterator[RedisServer]:
    """The Sentinel setup's replica, to be frozen (SIGSTOP) by the test; thawed afterwards."""
    master = redis_sentinel.master_address()
    replica = next(server for server in redis_sentinel.servers if server.address != master)
    try:
        yield replica
    finally:
        if replica.running:
            replica.resume()


async def test_a_login_no_replica_acknowledges_leaves_no_session_and_degrades_readiness(
    redis_sentinel: RedisSentinelSetup,
    frozen_replica: RedisServer,
    redis_prefix: str,
    tmp_path: Path,
) -> None:
    """Replica frozen: 503 without cookie or stored session, /readyz degraded; thawed: all ok."""
    async with running_app(
        tmp_path, store_url=f"{redis_sentinel.url}?prefix={redis_prefix}"
    ) as app:
        auth = app.state.authenticator
        user = await auth.users.create("a@example.com", await auth.hasher.hash(PASSWORD))
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            body = {"email": "a@example.com", "password": PASSWORD}
            frozen_replica.pause()
            refused = [await client.post("/login", json=body) for _ in range(3)]
            assert [r.status_code for r in refused] == [503] * 3
            assert [r.headers.get("retry-after") for r in refused] == ["1"] * 3
            assert [r.headers.get_list("set-cookie") for r in refused] == [[]] * 3
            assert (await auth.sessions.list_user(str(user.id))).sessions == []
            ready = await client.get("/readyz")
            assert ready.status_code == 200
            assert ready.json()["status"] == "degraded"
            check = ready.json()["checks"]["login_acknowledgement"]
            assert check["status"] == "degraded"
            assert check["reason"].startswith("logins cannot be acknowledged: 0 of 1 replicas")

            frozen_replica.resume()

            async def logged_in() -> httpx.Response:
                response = await client.post("/login", json=body)
                if response.status_code == 503:
                    raise StoreUnavailable("not acknowledged yet")
                return response

            assert (await eventually(logged_in)).status_code == 200
            assert len((await auth.sessions.list_user(str(user.id))).sessions) == 1
            recovered = (await client.get("/readyz")).json()
            assert recovered["status"] == "ok"
            assert recovered["checks"]["login_acknowledgement"]["status"] == "ok"
