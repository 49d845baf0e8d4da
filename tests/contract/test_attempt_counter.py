"""The attempt-counter contract: one suite, every backend, each over its real server."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from sessionauth.auth.authenticator import Authenticator
from sessionauth.auth.passwords import PasswordHasher
from sessionauth.auth.throttle import LoginThrottle
from sessionauth.backends.postgres.attempts import PostgresCounter
from sessionauth.backends.redis.attempts import RedisCounter
from sessionauth.backends.sqlite.attempts import SQLiteCounter
from sessionauth.errors import InvalidCredentials, TooManyAttempts
from sessionauth.session import Session
from sessionauth.stores.attempts import AttemptCounter
from sessionauth.stores.memory import MemoryCounter, MemoryStore
from tests.support.backends import attempt_counter, user_store
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
        async with attempt_counter(url, clock=clock, prefix=prefix) as counter:
            yield Backend(counter, purges=False)
    else:
        service = request.getfixturevalue(name)
        prefix = f"attempts:{uuid.uuid4().hex}:"
        async with RedisCounter.from_url(service.url, clock=clock, prefix=prefix) as counter:
            yield Backend(counter, purges=False)


@pytest.fixture
def counter(backend: Backend) -> AttemptCounter:
    return backend.counter


NO_LIMIT = 1_000_000


async def hit(counter: AttemptCounter, key: str, window: float) -> tuple[int, float]:
    """Reserve an attempt under a limit never reached; return ``(count, reset_at)``."""
    granted, count, reset_at = await counter.reserve(key, window, NO_LIMIT)
    assert granted
    return count, reset_at


async def test_hits_count_up_within_one_window(counter: AttemptCounter, clock: FakeClock) -> None:
    """`reserve` returns 1, 2, 3 and the same reset time: the window starts at the first failure."""
    start = clock()
    first = await hit(counter, "k", WINDOW)
    clock.advance(10)
    second = await hit(counter, "k", WINDOW)
    third = await hit(counter, "k", WINDOW)
    assert first == (1, start + WINDOW)
    assert second == (2, start + WINDOW)
    assert third == (3, start + WINDOW)
    assert await counter.count("k") == (3, start + WINDOW)


async def test_reset_time_round_trips_exactly(counter: AttemptCounter, clock: FakeClock) -> None:
    """Fractional clock times come back bit for bit from `reserve` and `count`."""
    clock.now += 0.123456789
    expected = clock() + 0.1
    assert await hit(counter, "k", 0.1) == (1, expected)
    assert await counter.count("k") == (1, expected)


async def test_count_of_unknown_key_is_zero(counter: AttemptCounter, clock: FakeClock) -> None:
    """`count` of a key never hit is ``(0, now)``."""
    assert await counter.count("never") == (0, clock())


async def test_count_holds_until_the_window_ends(counter: AttemptCounter, clock: FakeClock) -> None:
    """A count is kept until just before reset_at and is zero from reset_at on."""
    _, reset_at = await hit(counter, "k", WINDOW)
    await hit(counter, "k", WINDOW)
    clock.now = reset_at - 0.001
    assert (await counter.count("k"))[0] == 2
    clock.now = reset_at
    assert await counter.count("k") == (0, reset_at)


async def test_hit_after_the_window_starts_a_new_one(
    counter: AttemptCounter, clock: FakeClock
) -> None:
    """The first reserve after a window ended counts 1 again, with a fresh window of its own."""
    for _ in range(4):
        await hit(counter, "k", WINDOW)
    clock.advance(WINDOW + 3600)
    assert await hit(counter, "k", 60) == (1, clock() + 60)
    assert await hit(counter, "k", 60) == (2, clock() + 60)


async def test_reset_forgets_the_key(counter: AttemptCounter, clock: FakeClock) -> None:
    """`reset` clears a key's count, the next reserve starts at 1, and resetting nothing is fine."""
    await hit(counter, "k", WINDOW)
    await hit(counter, "k", WINDOW)
    await counter.reset("k")
    await counter.reset("absent")
    assert await counter.count("k") == (0, clock())
    assert (await hit(counter, "k", WINDOW))[0] == 1


async def test_keys_are_independent(counter: AttemptCounter, clock: FakeClock) -> None:
    """Reserving or resetting one key leaves another key's count and window alone."""
    start = clock()
    await hit(counter, "a:1", WINDOW)
    await hit(counter, "a:1", WINDOW)
    clock.advance(5)
    await hit(counter, "ip:1", 60)
    await counter.reset("a:1")
    assert await counter.count("a:1") == (0, clock())
    assert await counter.count("ip:1") == (1, start + 5 + 60)
    assert await counter.count("ip:2") == (0, clock())


async def test_concurrent_hits_are_all_counted(counter: AttemptCounter) -> None:
    """50 concurrent reserves on one key return 1..50, each once, and leave a count of 50."""
    results = await asyncio.gather(*(hit(counter, "race", WINDOW) for _ in range(50)))
    assert sorted(count for count, _ in results) == list(range(1, 51))
    assert len({reset_at for _, reset_at in results}) == 1
    assert (await counter.count("race"))[0] == 50


async def test_purge_removes_only_ended_windows(backend: Backend, clock: FakeClock) -> None:
    """`purge` deletes keys whose window ended (where the backend needs it) and keeps live ones."""
    counter = backend.counter
    await hit(counter, "old", 10)
    await hit(counter, "live", WINDOW)
    clock.advance(10)
    assert await counter.purge() == (1 if backend.purges else 0)
    assert await counter.purge() == 0
    assert (await counter.count("live"))[0] == 1
    assert (await counter.count("old"))[0] == 0
    assert (await hit(counter, "old", 10))[0] == 1


async def test_reserve_refuses_at_the_limit_and_changes_nothing(
    counter: AttemptCounter, clock: FakeClock
) -> None:
    """At the limit `reserve` answers not granted, with the count and window, and counts nothing."""
    start = clock()
    answers = [await counter.reserve("k", WINDOW, 3) for _ in range(5)]
    assert answers == [
        (True, 1, start + WINDOW),
        (True, 2, start + WINDOW),
        (True, 3, start + WINDOW),
        (False, 3, start + WINDOW),
        (False, 3, start + WINDOW),
    ]
    assert await counter.count("k") == (3, start + WINDOW)
    clock.now = start + WINDOW
    assert await counter.reserve("k", 60, 3) == (True, 1, clock() + 60)


async def test_concurrent_reserves_never_exceed_the_limit(counter: AttemptCounter) -> None:
    """50 concurrent reserves under a limit of 5 grant exactly 5 (counts 1..5) and refuse 45."""
    results = await asyncio.gather(*(counter.reserve("race", WINDOW, 5) for _ in range(50)))
    granted = sorted(count for ok, count, _ in results if ok)
    assert granted == [1, 2, 3, 4, 5]
    assert sum(not ok for ok, _, _ in results) == 45
    assert (await counter.count("race"))[0] == 5


async def test_release_gives_back_one_attempt_of_its_own_window(
    counter: AttemptCounter, clock: FakeClock
) -> None:
    """`release` takes one off the count it was reserved in, never below zero or in a new window."""
    _, _, reset_at = await counter.reserve("k", WINDOW, 2)
    await counter.reserve("k", WINDOW, 2)
    assert (await counter.reserve("k", WINDOW, 2))[0] is False
    await counter.release("k", reset_at)
    assert await counter.reserve("k", WINDOW, 2) == (True, 2, reset_at)
    for _ in range(3):
        await counter.release("k", reset_at)
    assert (await counter.count("k"))[0] == 0
    await counter.release("absent", reset_at)
    clock.now = reset_at
    _, _, new_reset = await counter.reserve("k", WINDOW, 2)
    await counter.release("k", reset_at)  # the old window's attempt: nothing to give back
    assert await counter.count("k") == (1, new_reset)


# -- the throttle over each backend ------------------------------------------------------------


@pytest.mark.parametrize("flow", ["login", "password change"])
async def test_concurrent_wrong_passwords_verify_at_most_the_limit(
    counter: AttemptCounter, clock: FakeClock, tmp_path: Path, flow: str
) -> None:
    """40 concurrent wrong passwords against one account verify 5 passwords; 35 are 429s."""
    users = user_store(f"sqlite:///{tmp_path / 'users.db'}", clock=clock)
    hasher = PasswordHasher.for_tests()
    alice = await users.create("alice@example.com", await hasher.hash("correct horse battery"))
    verified: Counter[str] = Counter()
    for name in ("verify", "dummy_verify"):
        original = getattr(hasher, name)

        async def counted(*args: Any, _name: str = name, _original: Any = original) -> Any:
            verified[_name] += 1
            return await _original(*args)

        setattr(hasher, name, counted)
    auth = Authenticator(
        users=users,
        sessions=MemoryStore(clock=clock),
        hasher=hasher,
        throttle=LoginThrottle(counter, clock=clock),
        clock=clock,
    )

    async def guess(n: int) -> str:
        try:
            if flow == "login":
                await auth.authenticate("alice@example.com", f"guess {n}", address="192.0.2.1")
            else:
                session = Session(user_id=str(alice.id))
                await auth.change_password(session, f"guess {n}", "a new passphrase", address=None)
        except (InvalidCredentials, TooManyAttempts) as exc:
            return type(exc).__name__
        return "accepted"

    try:
        outcomes = Counter(await asyncio.gather(*(guess(n) for n in range(40))))
    finally:
        await users.aclose()
    assert sum(verified.values()) <= 5, verified
    assert outcomes == {"InvalidCredentials": 5, "TooManyAttempts": 35}


async def test_concurrent_code_guesses_take_at_most_the_limit(
    counter: AttemptCounter, clock: FakeClock
) -> None:
    """40 concurrent code attempts on one account take 5 places; a right password frees none."""
    throttle = LoginThrottle(counter, clock=clock)
    outcomes = await asyncio.gather(
        *(throttle.reserve_code("7", "192.0.2.1") for _ in range(40)), return_exceptions=True
    )
    assert Counter(type(outcome).__name__ for outcome in outcomes) == {
        "Attempt": 5,
        "TooManyAttempts": 35,
    }
    # The password step settles the account's password counter, never its code counter.
    await throttle.succeeded(await throttle.reserve("alice@example.com", "192.0.2.1"))
    with pytest.raises(TooManyAttempts):
        await throttle.reserve_code("7", "192.0.2.1")
