"""The attempt-counter contract: one suite, every backend, each over its real server."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from sessionauth.auth.throttle import AttemptCounter, MemoryCounter, open_counter
from sessionauth.auth.throttle_redis import RedisCounter
from sessionauth.auth.throttle_sql import PostgresCounter, SQLiteCounter
from tests.support.clock import FakeClock

WINDOW = 900.0

BACKENDS = [
    "memory",
    "sqlite",
    pytest.param("postgres", marks=pytest.mark.postgres),
    pytest.param("redis", marks=pytest.mark.redis),
    pytest.param("redis_cluster", marks=pytest.mark.redis),
    pytest.param("redis_sentinel", marks=pytest.mark.redis),
]


@dataclass
class Backend:
    """A counter under test, and what its backend does by itself."""

    counter: AttemptCounter
    purges: bool
    """False for Redis, whose TTLs collect old keys: ``purge`` has nothing to do."""


async def _drop_table(dsn: str, table: str) -> None:
    import asyncpg

    connection = await asyncpg.connect(dsn)
    try:
        await connection.execute(f'DROP TABLE IF EXISTS "{table}"')
    finally:
        await connection.close()


@pytest.fixture(params=BACKENDS)
async def backend(
    request: pytest.FixtureRequest, clock: FakeClock, tmp_path: Path
) -> AsyncIterator[Backend]:
    name = request.param
    if name == "memory":
        yield Backend(MemoryCounter(clock), purges=True)
    elif name == "sqlite":
        async with SQLiteCounter(tmp_path / "db" / "attempts.db", clock=clock) as counter:
            yield Backend(counter, purges=True)
    elif name == "postgres":
        dsn = request.getfixturevalue("postgres_dsn")
        table = f"attempts_{uuid.uuid4().hex[:12]}"
        try:
            async with PostgresCounter(dsn, clock=clock, table=table) as counter:
                yield Backend(counter, purges=True)
        finally:
            await _drop_table(dsn, table)
    elif name == "redis":
        url, prefix = request.getfixturevalue("redis_url"), request.getfixturevalue("redis_prefix")
        # Keys live under this test's prefix, deleted with the run's prefix at session end.
        async with open_counter(url, clock=clock, prefix=prefix) as counter:
            yield Backend(counter, purges=False)
    else:
        service = request.getfixturevalue(name)
        prefix = f"attempts:{uuid.uuid4().hex}:"
        async with RedisCounter.from_url(service.url, clock=clock, prefix=prefix) as counter:
            yield Backend(counter, purges=False)


@pytest.fixture
def counter(backend: Backend) -> AttemptCounter:
    return backend.counter


async def test_hits_count_up_within_one_window(counter: AttemptCounter, clock: FakeClock) -> None:
    """`hit` returns 1, 2, 3 and the same reset time: the window starts at the first failure."""
    start = clock()
    first = await counter.hit("k", WINDOW)
    clock.advance(10)
    second = await counter.hit("k", WINDOW)
    third = await counter.hit("k", WINDOW)
    assert first == (1, start + WINDOW)
    assert second == (2, start + WINDOW)
    assert third == (3, start + WINDOW)
    assert await counter.count("k") == (3, start + WINDOW)


async def test_reset_time_round_trips_exactly(counter: AttemptCounter, clock: FakeClock) -> None:
    """Fractional clock times come back bit for bit from `hit` and `count`."""
    clock.now += 0.123456789
    expected = clock() + 0.1
    assert await counter.hit("k", 0.1) == (1, expected)
    assert await counter.count("k") == (1, expected)


async def test_count_of_unknown_key_is_zero(counter: AttemptCounter, clock: FakeClock) -> None:
    """`count` of a key never hit is ``(0, now)``."""
    assert await counter.count("never") == (0, clock())


async def test_count_holds_until_the_window_ends(counter: AttemptCounter, clock: FakeClock) -> None:
    """A count is kept until just before reset_at and is zero from reset_at on."""
    _, reset_at = await counter.hit("k", WINDOW)
    await counter.hit("k", WINDOW)
    clock.now = reset_at - 0.001
    assert (await counter.count("k"))[0] == 2
    clock.now = reset_at
    assert await counter.count("k") == (0, reset_at)


async def test_hit_after_the_window_starts_a_new_one(
    counter: AttemptCounter, clock: FakeClock
) -> None:
    """The first hit after a window ended counts 1 again, with a fresh window of its own."""
    for _ in range(4):
        await counter.hit("k", WINDOW)
    clock.advance(WINDOW + 3600)
    assert await counter.hit("k", 60) == (1, clock() + 60)
    assert await counter.hit("k", 60) == (2, clock() + 60)


async def test_reset_forgets_the_key(counter: AttemptCounter, clock: FakeClock) -> None:
    """`reset` clears a key's count, the next hit starts at 1, and resetting nothing is fine."""
    await counter.hit("k", WINDOW)
    await counter.hit("k", WINDOW)
    await counter.reset("k")
    await counter.reset("absent")
    assert await counter.count("k") == (0, clock())
    assert (await counter.hit("k", WINDOW))[0] == 1


async def test_keys_are_independent(counter: AttemptCounter, clock: FakeClock) -> None:
    """Hitting or resetting one key leaves another key's count and window alone."""
    start = clock()
    await counter.hit("a:1", WINDOW)
    await counter.hit("a:1", WINDOW)
    clock.advance(5)
    await counter.hit("ip:1", 60)
    await counter.reset("a:1")
    assert await counter.count("a:1") == (0, clock())
    assert await counter.count("ip:1") == (1, start + 5 + 60)
    assert await counter.count("ip:2") == (0, clock())


async def test_concurrent_hits_are_all_counted(counter: AttemptCounter) -> None:
    """50 concurrent hits on one key return 1..50, each once, and leave a count of 50."""
    results = await asyncio.gather(*(counter.hit("race", WINDOW) for _ in range(50)))
    assert sorted(count for count, _ in results) == list(range(1, 51))
    assert len({reset_at for _, reset_at in results}) == 1
    assert (await counter.count("race"))[0] == 50


async def test_purge_removes_only_ended_windows(backend: Backend, clock: FakeClock) -> None:
    """`purge` deletes keys whose window ended (where the backend needs it) and keeps live ones."""
    counter = backend.counter
    await counter.hit("old", 10)
    await counter.hit("live", WINDOW)
    clock.advance(10)
    assert await counter.purge() == (1 if backend.purges else 0)
    assert await counter.purge() == 0
    assert (await counter.count("live"))[0] == 1
    assert (await counter.count("old"))[0] == 0
    assert (await counter.hit("old", 10))[0] == 1
