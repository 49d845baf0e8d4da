"""The real-service fixtures start what they promise, and break and recover on demand."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid

import asyncpg
import pytest
import redis as sync_redis
import redis.asyncio as aioredis
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError

from tests.support import services
from tests.support.services import PostgresServer, RedisSentinelSetup, RedisServer, redis_call
from tests.support.services.process import wait_until


def _client(url: str) -> aioredis.Redis:
    """A client that fails at once instead of retrying, so outages show immediately."""
    return aioredis.Redis.from_url(url, socket_timeout=1, retry=Retry(NoBackoff(), 0))


@pytest.mark.redis
async def test_shared_redis_uses_db_13_and_a_per_test_prefix(
    redis_url: str, redis_prefix: str, redis_run_prefix: str
) -> None:
    """The shared Redis is reached on DB 13 and keys live under this run's prefix."""
    assert redis_url.endswith("/13")
    assert redis_prefix.startswith(redis_run_prefix)
    async with _client(redis_url) as client:
        await client.set(f"{redis_prefix}k", "v", ex=60)
        assert await client.get(f"{redis_prefix}k") == b"v"


@pytest.mark.postgres
async def test_postgres_dsn_is_a_database_of_our_own(postgres_dsn: str) -> None:
    """The shared-server DSN points at a freshly created sessionauth_test_* database."""
    connection = await asyncpg.connect(postgres_dsn)
    try:
        name = await connection.fetchval("SELECT current_database()")
    finally:
        await connection.close()
    assert name.startswith("sessionauth_test_")


@pytest.mark.redis
async def test_cluster_has_three_masters_and_serves_keys(
    redis_cluster: services.RedisCluster, redis_prefix: str
) -> None:
    """The private cluster has three masters and a key written through it reads back."""
    assert redis_cluster.url.startswith("redis+cluster://127.0.0.1:")
    nodes = [ClusterNode(host, port) for host, port in redis_cluster.nodes]
    async with RedisCluster(startup_nodes=nodes, socket_timeout=2) as client:
        assert len(client.get_primaries()) == 3
        for i in range(10):  # spread over slots, so more than one master serves
            await client.set(f"{redis_prefix}{i}", i)
        assert [await client.get(f"{redis_prefix}{i}") for i in range(10)] == [
            str(i).encode() for i in range(10)
        ]


@pytest.mark.redis
async def test_sentinel_resolves_the_master(redis_sentinel: RedisSentinelSetup) -> None:
    """redis-py's Sentinel client finds the master the setup reports, and can write to it."""
    sentinel = Sentinel(redis_sentinel.sentinels, socket_timeout=1)
    try:
        address = await sentinel.discover_master(redis_sentinel.service_name)
        assert address == redis_sentinel.master_address()
        async with sentinel.master_for(redis_sentinel.service_name) as master:
            assert await master.set("satest:sentinel-smoke", "1", ex=60)
    finally:
        await sentinel.aclose()


@pytest.mark.redis
@pytest.mark.slow
async def test_sentinel_failover_moves_the_master(redis_sentinel: RedisSentinelSetup) -> None:
    """After failover() the Sentinels resolve a different, writable master."""
    sentinel = Sentinel(redis_sentinel.sentinels, socket_timeout=1)
    try:
        before = await sentinel.discover_master(redis_sentinel.service_name)
        new = await asyncio.to_thread(redis_sentinel.failover)
        after = await sentinel.discover_master(redis_sentinel.service_name)
        assert after == new != before
        async with sentinel.master_for(redis_sentinel.service_name) as master:
            assert await master.set("satest:sentinel-smoke", "2", ex=60)
    finally:
        await sentinel.aclose()


@pytest.mark.redis
@pytest.mark.slow
def test_a_master_stall_while_the_crashed_master_rejoins_keeps_acknowledged_data(
    redis_sentinel: RedisSentinelSetup,
) -> None:
    """The crashed master rejoins empty; a stall of the new master meanwhile never promotes it."""
    key = f"satest:rejoin:{uuid.uuid4().hex}"
    old_master = redis_sentinel.master_address()
    redis_call(old_master, "SET", key, "acknowledged", "EX", 600)
    assert redis_call(old_master, "WAIT", 1, 2000) == 1
    promoted = redis_sentinel.failover(rejoin=False)
    new_master = next(s for s in redis_sentinel.servers if s.address == promoted)
    watchers = [
        sync_redis.Redis(*address, decode_responses=True) for address in redis_sentinel.sentinels
    ]
    events = [watcher.pubsub(ignore_subscribe_messages=True) for watcher in watchers]
    for channel in events:
        channel.subscribe("-failover-abort-no-good-slave", "+switch-master")
    rejoining = threading.Thread(target=redis_sentinel.start)  # the crashed master, empty
    new_master.pause()  # 2 s of silence: the Sentinels fail over, if they have a candidate
    rejoining.start()
    try:
        deadline, outcome = time.monotonic() + 30, None
        while outcome is None and time.monotonic() < deadline:
            for channel in events:
                message = channel.get_message(timeout=0.05)
                outcome = outcome or (message and message["channel"])
    finally:
        new_master.resume()
        rejoining.join()
        for channel, watcher in zip(events, watchers, strict=True):
            channel.close()
            watcher.close()
    assert outcome == "-failover-abort-no-good-slave"
    assert redis_sentinel.master_address() == promoted
    assert redis_call(promoted, "GET", key) == "acknowledged"


@pytest.mark.redis
@pytest.mark.slow
def test_a_failover_that_promotes_nobody_says_why_and_leaves_the_setup_serving() -> None:
    """No promotable replica: failover() raises with the Sentinels' log, the master is back."""
    with RedisSentinelSetup() as setup:
        old_master = setup.master_address()
        replica = next(s for s in setup.servers if s.address != old_master)
        redis_call(replica.address, "CONFIG", "SET", "replica-priority", "0")

        def every_sentinel_knows() -> bool:
            seen = [
                dict(zip(r[::2], r[1::2], strict=True)) if isinstance(r, list) else r
                for sentinel in setup.sentinels
                for r in redis_call(sentinel, "SENTINEL", "REPLICAS", setup.service_name)
            ]
            return bool(seen) and all(r["slave-priority"] == "0" for r in seen)

        wait_until(every_sentinel_knows, what="Sentinels to read the priority")
        with pytest.raises(services.ServiceUnavailable) as failed:
            setup.failover(timeout=8, patience=4)
        assert "-failover-abort-no-good-slave" in str(failed.value)
        assert "slave-priority=0" in str(failed.value)
        assert "forcing refused by every Sentinel" in str(failed.value)
        setup.ensure_healthy()
        assert setup.master_address() == old_master
        redis_call(old_master, "SET", "satest:after", "1")
        assert redis_call(old_master, "WAIT", 1, 2000) == 1


@pytest.mark.redis
@pytest.mark.slow
def test_a_failover_the_sentinels_do_not_start_is_forced() -> None:
    """Sentinels that never agree the master is down (quorum 4 of 3): failover() forces it."""
    with RedisSentinelSetup(quorum=4) as setup:
        old_master = setup.master_address()
        promoted = setup.failover(patience=3, rejoin=False)
        assert promoted != old_master
        assert setup.master_address() == promoted
        assert redis_call(promoted, "SET", "satest:forced", "1") is True
        logs = [sentinel.log_path.read_text() for sentinel in setup.sentinel_servers]
        assert not any("+odown" in log for log in logs)  # no Sentinel failed over by itself
        assert any("+promoted-slave" in log for log in logs)


@pytest.mark.redis
async def test_private_redis_stops_and_starts_on_the_same_port(
    private_redis: RedisServer,
) -> None:
    """A stopped private Redis refuses connections, then comes back empty on the same port."""
    port = private_redis.port
    async with _client(private_redis.url) as client:
        await client.set("k", "v")
        private_redis.stop()
        with pytest.raises(RedisConnectionError):
            await client.ping()
        private_redis.start()
        assert private_redis.port == port
        assert await client.get("k") is None  # nothing is persisted


@pytest.mark.redis
async def test_paused_redis_accepts_but_never_answers(private_redis: RedisServer) -> None:
    """A paused Redis hangs a command until the caller's deadline; resumed, it answers."""
    async with _client(private_redis.url) as client:
        private_redis.pause()
        try:
            with pytest.raises(TimeoutError):
                async with asyncio.timeout(0.3):
                    await client.ping()
        finally:
            private_redis.resume()
        assert await client.ping()


@pytest.mark.postgres
async def test_private_postgres_stops_and_starts(private_postgres: PostgresServer) -> None:
    """A private PostgreSQL serves, refuses while stopped, and serves again on the same port."""
    connection = await asyncpg.connect(private_postgres.dsn)
    try:
        await connection.execute("CREATE TABLE t (x int); INSERT INTO t VALUES (1)")
    finally:
        await connection.close()
    private_postgres.stop()
    with pytest.raises(OSError, match=r"Connect call failed|refused"):
        await asyncpg.connect(private_postgres.dsn, timeout=2)
    private_postgres.start()
    connection = await asyncpg.connect(private_postgres.dsn)
    try:
        assert await connection.fetchval("SELECT x FROM t") == 1
    finally:
        await connection.close()


def test_require_service_fails_under_ci_and_skips_otherwise(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A missing service fails the test under CI=true and skips it elsewhere."""

    def missing() -> None:
        raise services.ServiceUnavailable("nothing listens")

    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="nothing listens"):
        services.require_service("a service", missing)
    monkeypatch.delenv("CI")
    with pytest.raises(pytest.skip.Exception, match="nothing listens"):
        services.require_service("a service", missing)
