"""A PostgreSQL URL the driver or the server refuses at connect time is a 503, never a 500.

``?sslmode=verify-full`` without a root certificate is refused by asyncpg itself
(``ClientConfigurationError``) when the pool opens, on the first request; once a
``ConfigurationError`` that the edge answered 500, it is now ``StoreMisconfigured``: a
``StoreUnavailable``, so 503 with ``Retry-After``, the outage logged once.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from sessionauth.backends import open_backend
from sessionauth.errors import StoreMisconfigured
from tests.support.apps import running_app

pytestmark = pytest.mark.postgres


@pytest.fixture
def verify_full(postgres_dsn: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A URL asking to verify the server's certificate, with no root certificate to do it."""
    monkeypatch.setenv("HOME", str(tmp_path))  # asyncpg looks for ~/.postgresql/root.crt
    return f"{postgres_dsn}?sslmode=verify-full"


@pytest.fixture
async def client(tmp_path: Path, verify_full: str) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the server whose session store URL asyncpg refuses when connecting."""
    async with (
        running_app(tmp_path, store_url=verify_full) as app,
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app, raise_app_exceptions=False),
            base_url="http://testserver",
        ) as http,
    ):
        yield http


async def test_a_refused_connection_setting_is_store_misconfigured(verify_full: str) -> None:
    """The pool's connect turns asyncpg's refusal into StoreMisconfigured, naming the URL."""
    async with open_backend(verify_full, timeout=2) as backend:
        with pytest.raises(StoreMisconfigured, match="sslmode=verify-full refuses the URL"):
            await backend.session_store().ping()


async def test_readyz_is_503_when_postgresql_refuses_the_url(client: httpx.AsyncClient) -> None:
    """/readyz cannot read the store: 503, not an internal error."""
    response = await client.get("/readyz")
    assert response.status_code == 503, response.text


async def test_login_is_503_when_postgresql_refuses_the_url(client: httpx.AsyncClient) -> None:
    """A login against a store whose URL is refused fails closed with 503, not 500."""
    response = await client.post(
        "/login", json={"email": "ann@example.com", "password": "correct horse battery"}
    )
    assert response.status_code == 503, response.text
    assert "retry-after" in response.headers
