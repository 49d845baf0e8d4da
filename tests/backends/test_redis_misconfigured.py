"""A Redis URL the server cannot use (a database index past the last) is a 503, never a 500.

``redis://host/16`` on a Redis with the default 16 databases connects, then ``SELECT 16`` is
refused with ``ERR DB index is out of range``: a deployment the store cannot serve, like
WRONGTYPE or NOPERM, which the store answers 503 with ``Retry-After``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from tests.support.apps import running_app

pytestmark = pytest.mark.redis


def _past_the_last_database(redis_url: str, prefix: str) -> str:
    import redis

    with redis.Redis.from_url(redis_url) as client:
        databases = int(client.config_get("databases")["databases"])
    base = redis_url.split("?", 1)[0].rsplit("/", 1)[0]
    return f"{base}/{databases}?prefix={prefix}"


@pytest.fixture
async def client(
    tmp_path: Path, redis_url: str, redis_prefix: str
) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the server whose session store URL names a database Redis does not have."""
    store_url = _past_the_last_database(redis_url, redis_prefix)
    async with (
        running_app(tmp_path, store_url=store_url) as app,
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app, raise_app_exceptions=False),
            base_url="http://testserver",
        ) as http,
    ):
        yield http


async def test_readyz_is_503_when_the_redis_database_does_not_exist(
    client: httpx.AsyncClient,
) -> None:
    """/readyz cannot read the store: 503, not an internal error."""
    response = await client.get("/readyz")
    assert response.status_code == 503, response.text


async def test_login_is_503_when_the_redis_database_does_not_exist(
    client: httpx.AsyncClient,
) -> None:
    """A login against an unusable store fails closed with 503 and Retry-After, not 500."""
    response = await client.post(
        "/login", json={"email": "ann@example.com", "password": "correct horse battery"}
    )
    assert response.status_code == 503, response.text
    assert "retry-after" in response.headers


async def test_the_server_starts_with_its_redis_cluster_down(tmp_path: Path) -> None:
    """An unreachable Cluster at start-up is a warning and 503s, like plain Redis: no crash."""
    from tests.support.services.ports import free_port

    async with (
        running_app(tmp_path, store_url=f"redis+cluster://127.0.0.1:{free_port()}") as app,
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app, raise_app_exceptions=False),
            base_url="http://testserver",
        ) as http,
    ):
        assert (await http.get("/readyz")).status_code == 503
