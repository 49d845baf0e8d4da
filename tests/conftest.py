"""Fixtures handing tests real services: namespaces on the shared servers, and private servers.

Shared Redis and PostgreSQL are used only through namespaces this run creates (a Redis DB
number and key prefix, a database of its own) and cleaned up by those names alone. Private
servers are started for the tests that break them. A missing service skips the tests that
need it, except under ``CI=true`` where it fails them (see `require_service`).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest

from tests.support import services
from tests.support.asserting import checks_something
from tests.support.services import (
    PostgresServer,
    RedisCluster,
    RedisSentinelSetup,
    RedisServer,
    require_service,
)
from tests.support.services.redis_tls import RedisTLSServer


@pytest.fixture(autouse=True)
def _no_sessionauth_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Settings come from each test alone, never from the developer's shell or CI's."""
    for name in list(os.environ):
        if name.startswith("SESSIONAUTH_"):
            monkeypatch.delenv(name)


# One id per test run: every shared-Redis key this run writes starts with this prefix.
RUN_PREFIX = f"satest:{uuid.uuid4().hex[:12]}:"


@pytest.fixture(scope="session")
def redis_run_prefix() -> str:
    """The key prefix of this whole run (``satest:<run id>:``); cleaned up at session end."""
    return RUN_PREFIX


@pytest.fixture(scope="session")
def redis_url(redis_run_prefix: str) -> Iterator[str]:
    """URL of the shared Redis on DB 13; this run's keys are deleted by prefix at the end."""
    url = services.shared_redis_url()
    require_service(f"the shared Redis ({url})", lambda: services.probe_redis(url))
    yield url
    services.delete_redis_keys(url, redis_run_prefix)


@pytest.fixture
def redis_prefix(redis_run_prefix: str) -> str:
    """A key prefix unique to one test, inside this run's prefix."""
    return f"{redis_run_prefix}{uuid.uuid4().hex[:8]}:"


@pytest.fixture(scope="session")
def postgres_dsn() -> Iterator[str]:
    """DSN of a database of this run's own on the shared PostgreSQL, dropped at the end."""
    server = services.shared_postgres_dsn()
    require_service(f"the shared PostgreSQL ({server})", lambda: services.probe_postgres(server))
    with services.temporary_postgres_database(server) as dsn:
        yield dsn


@pytest.fixture(scope="session")
def redis_cluster() -> Iterator[RedisCluster]:
    """A private three-master Redis Cluster shared by the whole run."""
    cluster = require_service("a private Redis Cluster", lambda: RedisCluster().start())
    try:
        yield cluster
    finally:
        cluster.close()


@pytest.fixture(scope="session")
def shared_redis_sentinel() -> Iterator[RedisSentinelSetup]:
    """A private master, replica and three Sentinels shared by the whole run."""
    setup = require_service("a private Redis Sentinel setup", lambda: RedisSentinelSetup().start())
    try:
        yield setup
    finally:
        setup.close()


@pytest.fixture
def redis_sentinel(shared_redis_sentinel: RedisSentinelSetup) -> RedisSentinelSetup:
    """The run's Sentinel setup, settled before each test that uses it.

    Tests that fail over must ask `master_address()` afresh; `failover()` leaves the setup
    healthy (the crashed server rejoins as a replica), and a test that failed half way is
    mended here rather than failing every test after it.
    """
    shared_redis_sentinel.ensure_healthy()
    return shared_redis_sentinel


@pytest.fixture(scope="session")
def redis_tls() -> Iterator[RedisTLSServer]:
    """A private Redis reachable only over TLS (a CA of its own) as a limited ACL user."""
    server = require_service("a private redis-server with TLS", lambda: RedisTLSServer().start())
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def private_redis() -> Iterator[RedisServer]:
    """A private Redis server for one test, free to stop, restart or pause."""
    server = require_service("a private redis-server", lambda: RedisServer().start())
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def private_postgres() -> Iterator[PostgresServer]:
    """A private PostgreSQL cluster for one test, free to stop and restart."""
    server = require_service("a private PostgreSQL", lambda: PostgresServer().start())
    try:
        yield server
    finally:
        server.close()


def pytest_runtest_setup(item: pytest.Item) -> None:
    """Fail a test that cannot fail: no assertion and no expected exception in its body."""
    function = getattr(item, "function", None)
    if function is not None and not checks_something(function):
        pytest.fail(
            f"{item.nodeid} asserts nothing: give it an assert, a pytest.raises, or an"
            " assert_*/expect helper (tests/support/asserting.py)",
            pytrace=False,
        )
