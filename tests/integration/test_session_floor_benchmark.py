"""benchmarks/session-floor is a floor only if it checks what the library checks.

The app inlines the library's per-request work to measure what its structure costs; an app that
skipped a check would be cheaper for the wrong reason, and the comparison a lie. Each check is
attacked here against a real (private) Redis: a forged MAC or separator, a doubled cookie, a
record of another id, expired, idle, past the absolute or remember-me's shorter timeout, of
another format or corrupt, a principal with another epoch, disabled or missing.
"""

from __future__ import annotations

import importlib.util
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import msgspec
import pytest
import redis.asyncio

from sessionauth.record import FORMAT_VERSION
from tests.support.services import RedisServer

PASSWORD = "correct-horse-battery-staple-bench-password-42"
APP = Path(__file__).resolve().parents[2] / "benchmarks" / "session-floor" / "app.py"


@pytest.fixture
async def floor(
    private_redis: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[ModuleType]:
    """The app, loaded afresh on the private Redis (it reads the URL when imported)."""
    monkeypatch.setenv("BENCH_STORE_URL", private_redis.url)
    spec = importlib.util.spec_from_file_location("session_floor_under_test", APP)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, module)
    spec.loader.exec_module(module)
    yield module
    await module.reads.aclose()
    await module.store.aclose()


@pytest.fixture
async def raw(private_redis: RedisServer) -> AsyncIterator[redis.asyncio.Redis]:
    """A plain client of the private Redis, to edit what the app stored."""
    client = redis.asyncio.Redis.from_url(private_redis.url)
    yield client
    await client.aclose()


@pytest.fixture
async def signed_in(floor: ModuleType) -> AsyncIterator[tuple[httpx.AsyncClient, str]]:
    """A client of the app, signed in once, and its session cookie's value."""
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=floor.app), base_url="http://bench"
    ) as client:
        yield client, await _signed_in(client)


async def _signed_in(client: httpx.AsyncClient) -> str:
    login = await client.post(
        "/login",
        json={
            "email": "bench@example.com",
            "password": "correct-horse-battery-staple-bench-password-42",
        },
    )
    assert login.status_code == 200
    return str(login.cookies["sessionId"])


def _decoded(blob: bytes | str | None) -> Any:
    assert isinstance(blob, bytes)
    return msgspec.msgpack.decode(blob)


async def _status(client: httpx.AsyncClient, cookie: str) -> int:
    client.cookies.clear()
    return (await client.get("/dashboard", headers={"cookie": f"sessionId={cookie}"})).status_code


async def test_a_live_session_is_served_privately_and_no_cookie_is_not(
    signed_in: tuple[httpx.AsyncClient, str],
) -> None:
    """The login's cookie reads the session (200, never cached); no cookie is a 401."""
    client, cookie = signed_in
    answer = await client.get("/dashboard", headers={"cookie": f"sessionId={cookie}"})
    assert answer.status_code == 200
    assert answer.headers["cache-control"] == "no-store"
    assert answer.headers["vary"] == "Cookie"
    client.cookies.clear()
    assert (await client.get("/dashboard")).status_code == 401


async def test_a_forged_or_reshaped_cookie_is_refused(
    signed_in: tuple[httpx.AsyncClient, str],
) -> None:
    """A MAC that does not fit the token, or a cookie of another length, reads nothing."""
    client, cookie = signed_in
    token, mac = cookie.split(".")
    flipped = token[:-1] + ("A" if token[-1] != "A" else "B")
    assert await _status(client, f"{flipped}.{mac}") == 401  # token changed, MAC kept
    assert await _status(client, f"{token}.{mac[:-1]}{'A' if mac[-1] != 'A' else 'B'}") == 401
    assert await _status(client, cookie + "A") == 401
    assert await _status(client, f"{token}X{mac}") == 401  # no separator
    assert await _status(client, cookie) == 200
    client.cookies.clear()
    twice = [("cookie", f"sessionId={cookie}"), ("cookie", f"sessionId={cookie}")]
    assert (await client.get("/dashboard", headers=twice)).status_code == 401


async def test_a_record_of_another_id_expired_or_of_an_old_epoch_is_refused(
    signed_in: tuple[httpx.AsyncClient, str], raw: redis.asyncio.Redis
) -> None:
    """The stored record, edited in Redis, stops being served; put back, it is again."""
    client, cookie = signed_in
    [key] = await raw.keys("sa:u:*")
    field = next(name for name in await raw.hkeys(key) if len(name) == 11)
    original = await raw.hget(key, field)
    record = _decoded(original)

    bound_elsewhere = [*record[:8], "x" * 11, *record[9:]]
    await raw.hset(key, field, msgspec.msgpack.encode(bound_elsewhere))
    assert await _status(client, cookie) == 401

    expired = [record[0], record[1], round(time.time() * 1000) - record[1] - 1, *record[3:]]
    await raw.hset(key, field, msgspec.msgpack.encode(expired))
    assert await _status(client, cookie) == 401

    idle = [*record[:3], round(time.time() * 1000) - record[1] - 86_400_001, *record[4:]]
    await raw.hset(key, field, msgspec.msgpack.encode(idle))
    assert await _status(client, cookie) == 401

    now = round(time.time() * 1000)
    old_login = [record[0], now - 25 * 3_600_000, 26 * 3_600_000, 25 * 3_600_000 - 60_000]
    await raw.hset(key, field, msgspec.msgpack.encode([*old_login, *record[4:]]))
    assert await _status(client, cookie) == 401  # seen a minute ago, but logged in 25 h ago

    not_remembered = [*record[:6], '{"remember":false}', *record[7:]]
    await raw.hset(key, field, msgspec.msgpack.encode(not_remembered))
    assert await _status(client, cookie) == 200  # created just now
    short = [record[0], now - 13 * 3_600_000, 26 * 3_600_000, 13 * 3_600_000 - 60_000]
    await raw.hset(key, field, msgspec.msgpack.encode([*short, *not_remembered[4:]]))
    assert await _status(client, cookie) == 401  # past the short absolute timeout

    await raw.hset(key, field, msgspec.msgpack.encode([FORMAT_VERSION + 1, *record[1:]]))
    assert await _status(client, cookie) == 401
    await raw.hset(key, field, b"\x93\x01\x02\x03")
    assert await _status(client, cookie) == 401  # corrupt: no session, no 500

    await raw.hset(key, field, original)
    assert await _status(client, cookie) == 200
    principals = _decoded(await raw.hget(key, "p"))
    principals["1"][0] = "another-epoch"
    await raw.hset(key, "p", msgspec.msgpack.encode(principals))
    assert await _status(client, cookie) == 401


async def test_a_disabled_or_missing_principal_is_refused(
    signed_in: tuple[httpx.AsyncClient, str], raw: redis.asyncio.Redis
) -> None:
    """A principal disabled in, or missing from, the user's hash ends the session."""
    client, cookie = signed_in
    [key] = await raw.keys("sa:u:*")
    principals = _decoded(await raw.hget(key, "p"))
    principals["1"][2] = True
    await raw.hset(key, "p", msgspec.msgpack.encode(principals))
    assert await _status(client, cookie) == 401
    await raw.hset(key, "p", msgspec.msgpack.encode({"2": principals["1"]}))
    assert await _status(client, cookie) == 401  # no principal for the user
