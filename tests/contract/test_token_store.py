"""The single-use token store contract: one suite, all seven backend setups, real servers."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from sessionauth.backends import Backend, open_backend
from sessionauth.backends.memory import MemoryBackend
from sessionauth.stores.tokens import TokenRecord, TokenStore
from tests.contract.conftest import STORE_BACKENDS
from tests.support.clock import FakeClock

HOUR = 3600.0


@dataclass
class Opened:
    """A token store under test, and a way to open another on the same data."""

    store: TokenStore
    second: Callable[[], Backend]
    """A second backend on the same database (its own connection, pool or client); for
    memory, the same backend (one process has one dict)."""
    purges: bool
    """False for Redis, whose TTLs collect expired keys: ``purge_expired`` has nothing to do."""


def _url(name: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if name == "sqlite":
        return f"sqlite:///{tmp_path}/tokens.db"
    if name == "postgres":
        dsn: str = request.getfixturevalue("postgres_dsn")
        return dsn
    prefix: str = request.getfixturevalue("redis_prefix")
    if name == "redis":
        base: str = request.getfixturevalue("redis_url")
    else:
        base = request.getfixturevalue(name).url
    separator = "&" if "?" in base else "?"
    return f"{base}{separator}prefix={prefix}"


@pytest.fixture(params=STORE_BACKENDS)
async def opened(
    request: pytest.FixtureRequest, clock: FakeClock, tmp_path: Path
) -> AsyncIterator[Opened]:
    name: str = request.param
    if name == "memory":
        memory = MemoryBackend(clock=clock)
        async with memory:
            yield Opened(memory.token_store(), lambda: memory, purges=True)
        return
    url = _url(name, request, tmp_path)
    # A table of this test's own on PostgreSQL (Redis keys live under the test's prefix).
    options = {"table": f"tokens_{secrets.token_hex(6)}"} if name == "postgres" else {}
    backends: list[Backend] = []

    def second() -> Backend:
        backends.append(open_backend(url, clock=clock))
        return backends[-1]

    first = open_backend(url, clock=clock)
    store = first.token_store(**options)
    try:
        yield Opened(store, second, purges=not name.startswith("redis"))
    finally:
        if name == "postgres":
            import asyncpg

            connection = await asyncpg.connect(url)
            try:
                await connection.execute(f'DROP TABLE IF EXISTS "{options["table"]}"')
            finally:
                await connection.close()
        elif name != "sqlite":
            from tests.contract.backend_redis import delete_keys

            await delete_keys(first.clients.client, store.prefix)  # type: ignore[attr-defined]
        for backend in [first, *backends]:
            await backend.aclose()


def _second_store(opened: Opened, store: TokenStore) -> TokenStore:
    """A token store on ``opened``'s second backend, with ``store``'s table or prefix."""
    backend = opened.second()
    if hasattr(store, "prefix"):
        return backend.token_store(prefix=store.prefix)
    table = getattr(store, "table", None)
    return backend.token_store(**({"table": table} if table else {}))


def record(clock: FakeClock, *, user: str = "7", ttl: float = HOUR, **fields: str) -> TokenRecord:
    return TokenRecord(
        user_id=user,
        purpose=fields.get("purpose", "verify-email"),
        binding=fields.get("binding", "b1"),
        expires=clock() + ttl,
        payload=fields.get("payload"),
    )


def key() -> str:
    return secrets.token_hex(32)


async def test_take_returns_the_record_once(opened: Opened, clock: FakeClock) -> None:
    """`take` returns the stored record exactly (fields, payload, float expiry); then nothing."""
    clock.now += 0.123456789
    stored = record(clock, payload="new-address@example.com ünïcode")
    k = key()
    await opened.store.add(k, stored)
    assert await opened.store.take(k) == stored
    assert await opened.store.take(k) is None


async def test_record_without_payload_round_trips(opened: Opened, clock: FakeClock) -> None:
    """A record without payload comes back with ``payload=None``, not an empty string."""
    stored = record(clock, purpose="reset-password")
    k = key()
    await opened.store.add(k, stored)
    taken = await opened.store.take(k)
    assert taken == stored
    assert taken is not None
    assert taken.payload is None


async def test_unknown_key_is_none(opened: Opened) -> None:
    """`take` of a key never added is ``None``."""
    assert await opened.store.take(key()) is None


async def test_expiry_is_decided_by_the_store_clock(opened: Opened, clock: FakeClock) -> None:
    """A record is live until just before ``expires`` and gone from ``expires`` on."""
    early, late = key(), key()
    await opened.store.add(early, record(clock, ttl=1800))
    await opened.store.add(late, record(clock, ttl=1800))
    clock.advance(1800 - 0.001)
    assert await opened.store.take(early) is not None
    clock.advance(0.001)
    assert await opened.store.take(late) is None


async def test_another_users_take_leaves_the_token(opened: Opened, clock: FakeClock) -> None:
    """`take(user_id=other)` finds nothing and leaves the record for its own user."""
    k = key()
    await opened.store.add(k, record(clock, user="7"))
    assert await opened.store.take(k, user_id="8") is None
    taken = await opened.store.take(k, user_id="7")
    assert taken is not None
    assert taken.user_id == "7"


async def test_records_are_independent(opened: Opened, clock: FakeClock) -> None:
    """Taking one key leaves the others alone."""
    a, b = key(), key()
    await opened.store.add(a, record(clock, user="1"))
    await opened.store.add(b, record(clock, user="2"))
    taken = await opened.store.take(a)
    assert taken is not None
    assert taken.user_id == "1"
    taken = await opened.store.take(b)
    assert taken is not None
    assert taken.user_id == "2"


async def test_concurrent_takes_one_wins(opened: Opened, clock: FakeClock) -> None:
    """Twenty concurrent takes of one token on one store: exactly one gets it."""
    k = key()
    await opened.store.add(k, record(clock))
    results = await asyncio.gather(*(opened.store.take(k) for _ in range(20)))
    assert sum(result is not None for result in results) == 1


async def test_concurrent_takes_on_two_connections_one_wins(
    opened: Opened, clock: FakeClock
) -> None:
    """Takes racing on two connections (pools, clients) to one database: exactly one wins."""
    other = _second_store(opened, opened.store)
    for _ in range(5):
        k = key()
        await opened.store.add(k, record(clock))
        results = await asyncio.gather(*(store.take(k) for store in [opened.store, other] * 10))
        assert sum(result is not None for result in results) == 1


async def test_purge_deletes_only_expired(opened: Opened, clock: FakeClock) -> None:
    """`purge_expired` deletes expired records (SQL, memory) and never a live one."""
    live, dead = key(), key()
    await opened.store.add(dead, record(clock, ttl=60))
    await opened.store.add(live, record(clock, ttl=HOUR))
    clock.advance(120)
    purged = await opened.store.purge_expired()
    assert purged == (1 if opened.purges else 0)
    assert await opened.store.take(live) is not None
    assert await opened.store.take(dead) is None
