"""A real store outage under load leaves a few readable log lines, not a traceback per request."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import httpx
import pytest

from tests.support.apps import running_app
from tests.support.services import RedisServer

PASSWORD = "correct horse battery"
REQUESTS = 300


async def test_a_redis_outage_under_load_logs_its_start_and_end_only(
    private_redis: RedisServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """300 requests failing on a stopped Redis, then one served: 2 log lines, no traceback."""
    async with running_app(tmp_path, store_url=private_redis.url) as app:
        auth = app.state.authenticator
        await auth.users.create("a@example.com", await auth.hasher.hash(PASSWORD))
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            body = {"email": "a@example.com", "password": PASSWORD}
            assert (await client.post("/login", json=body)).status_code == 200
            await asyncio.to_thread(private_redis.stop)
            with caplog.at_level(logging.INFO, logger="sessionauth"):
                answers = await asyncio.gather(*(client.get("/dashboard") for _ in range(REQUESTS)))
                assert {response.status_code for response in answers} == {503}
                await asyncio.to_thread(private_redis.start)
                # Redis kept nothing (no persistence): the session is gone, but the store answered.
                assert (await client.get("/dashboard")).status_code == 401
    lines = [
        record
        for record in caplog.records
        if record.name.startswith("sessionauth") and record.levelno >= logging.INFO
    ]
    messages = [record.getMessage() for record in lines]
    assert len(lines) <= 20, messages
    assert all(record.exc_info is None for record in lines), messages
    assert messages[0].startswith("session store unavailable: ")
    assert messages[-1].startswith("session store available again after ")
    assert f"{REQUESTS} requests failed" in messages[-1]
