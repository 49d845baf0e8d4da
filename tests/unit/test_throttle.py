"""Login throttling, counter construction and failure modes."""

from __future__ import annotations

import hashlib
import logging
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from redis import exceptions as rx

from sessionauth.auth.throttle import LoginThrottle
from sessionauth.backends.postgres.attempts import PostgresCounter
from sessionauth.backends.redis.attempts import RedisCounter
from sessionauth.backends.sqlite.attempts import SQLiteCounter
from sessionauth.errors import ConfigurationError, StoreUnavailable, TooManyAttempts
from sessionauth.stores.memory import MemoryCounter
from tests.support.backends import attempt_counter
from tests.support.clock import FakeClock
from tests.support.services import free_port

WINDOW = 15 * 60


def account_key(email: str) -> str:
    return "a:" + hashlib.sha256(email.encode()).hexdigest()


class RecordingCounter(MemoryCounter):
    """A memory counter that remembers every key it was asked about."""

    def __init__(self, clock: FakeClock):
        super().__init__(clock)
        self.keys: set[str] = set()

    async def reserve(self, key: str, window: float, limit: int) -> tuple[bool, int, float]:
        self.keys.add(key)
        return await super().reserve(key, window, limit)

    async def count(self, key: str) -> tuple[int, float]:
        self.keys.add(key)
        return await super().count(key)


class BrokenCounter(MemoryCounter):
    """A counter whose backend is down."""

    async def reserve(self, key: str, window: float, limit: int) -> tuple[bool, int, float]:
        raise StoreUnavailable("down")


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(1_000_000.0)


@pytest.fixture
def counter(clock: FakeClock) -> RecordingCounter:
    return RecordingCounter(clock)


@pytest.fixture
def throttle(counter: MemoryCounter, clock: FakeClock) -> LoginThrottle:
    return LoginThrottle(counter, clock=clock)


async def fail(throttle: LoginThrottle, times: int, account: str, address: str) -> None:
    """Make ``times`` failed attempts: a reservation neither succeeded nor released."""
    for _ in range(times):
        await throttle.reserve(account, address)


async def attempt(throttle: LoginThrottle, account: str, address: str) -> int | None:
    """Make one failed attempt; return its retry_after if refused, else None."""
    try:
        await throttle.reserve(account, address)
    except TooManyAttempts as exc:
        return exc.retry_after
    return None


async def retry_after(throttle: LoginThrottle, account: str, address: str) -> int | None:
    """Return the throttle's retry_after, or None when an attempt is allowed (then given back)."""
    try:
        reserved = await throttle.reserve(account, address)
    except TooManyAttempts as exc:
        return exc.retry_after
    await throttle.release(reserved)
    return None


# --------------------------------------------------------------------------- LoginThrottle


async def test_sixth_attempt_within_the_window_is_refused(
    throttle: LoginThrottle, clock: FakeClock
) -> None:
    """Five failures are allowed; the sixth attempt raises with the seconds left in the window."""
    await fail(throttle, 5, "bob@example.com", "192.0.2.1")
    clock.advance(100.5)
    with pytest.raises(TooManyAttempts) as caught:
        await throttle.reserve("bob@example.com", "192.0.2.1")
    assert caught.value.retry_after == 800  # ceil(900 - 100.5)


async def test_fifth_attempt_is_still_allowed(throttle: LoginThrottle) -> None:
    """Four failures leave one attempt; attempts given back do not count."""
    await fail(throttle, 4, "bob@example.com", "192.0.2.1")
    for _ in range(3):
        assert await retry_after(throttle, "bob@example.com", "192.0.2.1") is None


async def test_unknown_and_known_accounts_are_throttled_identically(clock: FakeClock) -> None:
    """The same failures give the same answers for any account string, registered or not."""

    async def scenario(account: str) -> list[int | None]:
        throttle = LoginThrottle(MemoryCounter(clock), clock=clock)
        answers = []
        for _ in range(7):
            answers.append(await attempt(throttle, account, "192.0.2.1"))
        return answers

    known = await scenario("alice@example.com")
    assert known == [None] * 5 + [WINDOW, WINDOW]
    assert await scenario("nobody-registered@example.com") == known
    assert await scenario("not an email at all") == known


async def test_lockout_ends_with_the_window(throttle: LoginThrottle, clock: FakeClock) -> None:
    """After retry_after seconds the account may try again, with a fresh budget of failures."""
    await fail(throttle, 5, "bob@example.com", "192.0.2.1")
    wait = await retry_after(throttle, "bob@example.com", "192.0.2.1")
    assert wait == WINDOW
    clock.advance(wait - 0.5)
    assert await retry_after(throttle, "bob@example.com", "192.0.2.1") == 1
    clock.advance(0.5)
    await fail(throttle, 5, "bob@example.com", "192.0.2.1")
    assert await retry_after(throttle, "bob@example.com", "192.0.2.1") == WINDOW


async def test_success_resets_the_account_but_not_the_address(
    counter: MemoryCounter, clock: FakeClock
) -> None:
    """`succeeded` clears the account's count; the address keeps its failures."""
    throttle = LoginThrottle(counter, clock=clock, max_per_address=6)
    await fail(throttle, 4, "bob@example.com", "192.0.2.1")
    await throttle.succeeded(await throttle.reserve("bob@example.com", "192.0.2.1"))
    assert await counter.count(account_key("bob@example.com")) == (0, clock())
    assert (await counter.count("ip:192.0.2.1"))[0] == 4
    await fail(throttle, 2, "bob@example.com", "192.0.2.1")
    assert await retry_after(throttle, "bob@example.com", "192.0.2.1") == WINDOW


async def test_success_gives_back_only_its_own_place_on_the_address(
    counter: MemoryCounter, clock: FakeClock
) -> None:
    """A good password returns its own reservation on the address, not the earlier failures."""
    throttle = LoginThrottle(counter, clock=clock, max_per_address=3)
    await fail(throttle, 2, "a@example.com", "192.0.2.1")
    await throttle.succeeded(await throttle.reserve("b@example.com", "192.0.2.1"))
    assert (await counter.count("ip:192.0.2.1"))[0] == 2
    await fail(throttle, 1, "c@example.com", "192.0.2.1")
    assert await retry_after(throttle, "d@example.com", "192.0.2.1") == WINDOW


async def test_a_refused_key_gives_back_the_other_keys_reservation(
    counter: MemoryCounter, clock: FakeClock
) -> None:
    """When the account refuses, the address's place is returned at once, and vice versa."""
    throttle = LoginThrottle(counter, clock=clock, max_per_address=1)
    for n in range(1, 6):
        await fail(throttle, 1, "bob@example.com", f"192.0.2.{n}")
    assert await attempt(throttle, "bob@example.com", "198.51.100.9") == WINDOW
    assert (await counter.count("ip:198.51.100.9"))[0] == 0
    assert await attempt(throttle, "alice@example.com", "192.0.2.1") == WINDOW
    assert (await counter.count(account_key("alice@example.com")))[0] == 0


async def test_release_gives_back_both_places(counter: MemoryCounter, clock: FakeClock) -> None:
    """An attempt that judged no password leaves neither count changed."""
    throttle = LoginThrottle(counter, clock=clock)
    await throttle.release(await throttle.reserve("bob@example.com", "192.0.2.1"))
    assert (await counter.count(account_key("bob@example.com")))[0] == 0
    assert (await counter.count("ip:192.0.2.1"))[0] == 0


async def test_address_limit_spans_accounts(throttle: LoginThrottle) -> None:
    """50 failures from one address against 50 accounts block that address for every account."""
    for n in range(50):
        await fail(throttle, 1, f"user{n}@example.com", "198.51.100.7")
    assert await retry_after(throttle, "fresh@example.com", "198.51.100.7") == WINDOW
    assert await retry_after(throttle, "fresh@example.com", "198.51.100.8") is None


async def test_retry_after_is_a_positive_whole_number(
    throttle: LoginThrottle, clock: FakeClock
) -> None:
    """A window ending in a fraction of a second still asks for a wait of 1 whole second."""
    await fail(throttle, 5, "bob@example.com", "192.0.2.1")
    clock.advance(WINDOW - 0.2)
    wait = await retry_after(throttle, "bob@example.com", "192.0.2.1")
    assert wait == 1
    assert type(wait) is int


async def test_retry_after_waits_for_every_exhausted_limit(clock: FakeClock) -> None:
    """When both limits are used up, retry_after is the later of the two resets."""
    throttle = LoginThrottle(MemoryCounter(clock), clock=clock, max_per_address=5)
    await fail(throttle, 5, "bob@example.com", "192.0.2.2")
    clock.advance(300)
    await fail(throttle, 5, "a@example.com", "192.0.2.1")
    # The account resets in 600 s, the address in 900 s: the later one decides.
    assert await retry_after(throttle, "bob@example.com", "192.0.2.1") == WINDOW
    assert await retry_after(throttle, "bob@example.com", "192.0.2.3") == WINDOW - 300


async def test_accounts_are_normalised_and_hashed(
    throttle: LoginThrottle, counter: RecordingCounter
) -> None:
    """Case and spacing variants share one count, and no key holds the address in clear."""
    for variant in ("Bob@Example.com", " bob@example.com", "BOB@EXAMPLE.COM "):
        await fail(throttle, 1, variant, "192.0.2.1")
    await fail(throttle, 2, "bob@example.com", "192.0.2.2")
    assert await retry_after(throttle, "bob@example.com", "203.0.113.9") == WINDOW
    assert account_key("bob@example.com") in counter.keys
    assert not any("example" in key for key in counter.keys)


async def test_ipv6_addresses_are_counted_per_64(counter: MemoryCounter, clock: FakeClock) -> None:
    """Addresses in one IPv6 /64 share a count; another /64 has its own."""
    throttle = LoginThrottle(counter, clock=clock, max_per_address=3)
    for host in ("2001:db8::1", "2001:db8::2", "2001:db8::ffff:3"):
        await fail(throttle, 1, f"{host}@example.com", host)
    assert await retry_after(throttle, "x@example.com", "2001:db8::9") == WINDOW
    assert await retry_after(throttle, "x@example.com", "2001:db8:0:1::1") is None
    exact = LoginThrottle(MemoryCounter(clock), clock=clock, max_per_address=1, ipv6_prefix=128)
    await fail(exact, 1, "y@example.com", "2001:db8::1")
    assert await retry_after(exact, "z@example.com", "2001:db8::2") is None


async def test_reaching_a_limit_is_logged_without_the_email(
    throttle: LoginThrottle, caplog: pytest.LogCaptureFixture
) -> None:
    """The security log records each limit once, when reached, and never the account's email."""
    caplog.set_level(logging.WARNING, logger="sessionauth.security")
    await fail(throttle, 5, "bob@example.com", "192.0.2.1")
    assert await attempt(throttle, "bob@example.com", "192.0.2.1") == WINDOW
    records = [r for r in caplog.records if r.name == "sessionauth.security"]
    assert len(records) == 1
    assert "account" in records[0].getMessage()
    assert "bob" not in records[0].getMessage()


async def test_throttle_fails_closed(clock: FakeClock) -> None:
    """A counter that cannot answer makes `reserve` raise StoreUnavailable, not let anyone in."""
    throttle = LoginThrottle(BrokenCounter(clock), clock=clock)
    with pytest.raises(StoreUnavailable):
        await throttle.reserve("bob@example.com", "192.0.2.1")


@pytest.mark.parametrize(
    "options",
    [
        {"max_per_account": 0},
        {"max_per_address": 0},
        {"account_window": 0},
        {"address_window": -1},
        {"ipv6_prefix": 0},
        {"ipv6_prefix": 129},
    ],
)
def test_throttle_refuses_unusable_settings(options: dict[str, Any]) -> None:
    """A limit below one, a window that is not positive or a bad IPv6 prefix is refused."""
    with pytest.raises(ConfigurationError):
        LoginThrottle(MemoryCounter(), **options)


def test_sql_counters_refuse_bad_settings(tmp_path: Path) -> None:
    """An unsafe table name, a non-positive timeout or both DSN and pool are refused."""
    with pytest.raises(ConfigurationError):
        SQLiteCounter(tmp_path / "a.db", table="x; DROP TABLE users")
    with pytest.raises(ConfigurationError):
        SQLiteCounter(tmp_path / "a.db", timeout=0)
    with pytest.raises(ConfigurationError):
        PostgresCounter()
    with pytest.raises(ConfigurationError):
        PostgresCounter("postgresql://x/y", table='a"b')


async def test_unreachable_redis_is_unavailable(clock: FakeClock) -> None:
    """Every operation on a Redis nobody listens on raises StoreUnavailable."""
    async with attempt_counter(f"redis://127.0.0.1:{free_port()}/0", timeout=0.5) as counter:
        with pytest.raises(StoreUnavailable):
            await counter.reserve("k", WINDOW, 5)
        with pytest.raises(StoreUnavailable):
            await counter.release("k", 1.0)
        with pytest.raises(StoreUnavailable):
            await counter.count("k")
        with pytest.raises(StoreUnavailable):
            await counter.reset("k")


async def test_unreachable_postgres_is_unavailable() -> None:
    """A PostgreSQL nobody listens on makes the first operation raise StoreUnavailable."""
    dsn = f"postgresql://postgres@127.0.0.1:{free_port()}/none"
    async with PostgresCounter(dsn, timeout=0.5) as counter:
        with pytest.raises(StoreUnavailable):
            await counter.count("k")


async def test_unusable_sqlite_file_is_unavailable(tmp_path: Path) -> None:
    """A database path that is a directory, or a closed counter, raises StoreUnavailable."""
    async with SQLiteCounter(tmp_path) as counter:
        with pytest.raises(StoreUnavailable):
            await counter.reserve("k", WINDOW, 5)
    counter = SQLiteCounter(tmp_path / "a.db")
    assert (await counter.reserve("k", WINDOW, 5))[:2] == (True, 1)
    await counter.aclose()
    with pytest.raises(StoreUnavailable):
        await counter.count("k")


async def test_sqlite_counter_keeps_counts_across_reopening(
    tmp_path: Path, clock: FakeClock
) -> None:
    """Counts are in the file: a second counter on it (another worker) sees and adds to them."""
    async with SQLiteCounter(tmp_path / "a.db", clock=clock) as first:
        await first.reserve("k", WINDOW, 5)
        async with SQLiteCounter(tmp_path / "a.db", clock=clock) as second:
            assert (await second.reserve("k", WINDOW, 5))[1] == 2
    with sqlite3.connect(tmp_path / "a.db") as db:
        assert db.execute("SELECT count FROM sessionauth_attempts").fetchall() == [(2,)]


class _FakeRedis:
    """Just enough of a redis.asyncio client to make it answer with a chosen error."""

    def __init__(self, error: Exception):
        self.error = error

    def register_script(self, script: str) -> Any:
        return None

    async def hmget(self, *args: Any) -> Any:
        raise self.error


async def test_redis_busy_reply_is_unavailable_but_a_bug_is_not() -> None:
    """BUSY (not now) and WRONGTYPE (the deployment's) mean unavailable; a script error is a bug."""
    for reply in ("BUSY Redis is busy running a script", "WRONGTYPE Operation against a key"):
        unavailable = RedisCounter(_FakeRedis(rx.ResponseError(reply)))  # type: ignore[arg-type]
        with pytest.raises(StoreUnavailable):
            await unavailable.count("k")
    bug = RedisCounter(_FakeRedis(rx.ResponseError("ERR user_script:1: Script attempted to")))  # type: ignore[arg-type]
    with pytest.raises(rx.ResponseError):
        await bug.count("k")
