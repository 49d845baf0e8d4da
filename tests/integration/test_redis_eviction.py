"""A Redis store that may evict keys is reported by `check` and refused at production start-up.

Sessions and login attempt counters carry TTLs: under ``allkeys-lru`` a flood of writes evicts
an account's counter and resets its throttling. Every test runs private servers (the shared
Redis's configuration is never touched) and sets their policy with ``CONFIG SET``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from sessionauth.auth.passwords import PasswordHasher
from sessionauth.cli import app as cli
from sessionauth.errors import ConfigurationError
from sessionauth.server.app import create_app
from sessionauth.server.redis_eviction import eviction_findings
from sessionauth.server.settings import Settings
from tests.support.services import (
    RedisCluster,
    RedisSentinelSetup,
    RedisServer,
    redis_call,
    require_service,
)

pytestmark = pytest.mark.redis

LIMITED_PASSWORD = "limited-password-0123456789"


def _policy(address: tuple[str, int], policy: str) -> None:
    assert redis_call(address, "CONFIG", "SET", "maxmemory-policy", policy) == "OK"


def _settings(tmp_path: Path, store_url: str, env: str = "production") -> Settings:
    return Settings(
        env=env,
        secret="k" * 48,
        database_url=f"sqlite:///{tmp_path / 'users.db'}",
        data_dir=tmp_path / "data",
        store_url=store_url,
    )


async def _check(tmp_path: Path, store_url: str, env: str = "development") -> tuple[int, str]:
    # In a thread: the command runs its own event loop (asyncio.run), as from a shell.
    result = await asyncio.to_thread(
        CliRunner().invoke,
        cli,
        ["check"],
        env={
            "SESSIONAUTH_ENV": env,
            "SESSIONAUTH_SECRET": "k" * 48,
            "SESSIONAUTH_DATABASE_URL": f"sqlite:///{tmp_path / 'users.db'}",
            "SESSIONAUTH_DATA_DIR": str(tmp_path / "data"),
            "SESSIONAUTH_STORE_URL": store_url,
        },
    )
    return result.exit_code, result.output


async def _start(settings: Settings) -> None:
    app = create_app(settings, hasher=PasswordHasher.for_tests())
    async with app.router.lifespan_context(app):
        pass


async def test_allkeys_lru_is_refused_in_production_and_reported_by_check(
    private_redis: RedisServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """allkeys-lru: check exits 1 naming it; production does not start; development warns."""
    _policy(private_redis.address, "allkeys-lru")
    url = f"{private_redis.url}?prefix=evict:"
    code, output = await _check(tmp_path, url)
    assert code == 1
    assert "maxmemory-policy allkeys-lru" in output
    with pytest.raises(ConfigurationError, match="maxmemory-policy allkeys-lru"):
        await _start(_settings(tmp_path, url))
    with caplog.at_level(logging.WARNING, logger="sessionauth.server"):
        await _start(_settings(tmp_path, url, env="development"))
    assert any("allkeys-lru" in record.getMessage() for record in caplog.records)


@pytest.mark.parametrize("policy", ["volatile-ttl", "volatile-lru", "allkeys-random"])
async def test_every_evicting_policy_is_a_problem(private_redis: RedisServer, policy: str) -> None:
    """Not only LRU: any policy but noeviction can drop sessions and counters."""
    _policy(private_redis.address, policy)
    report = await eviction_findings(private_redis.url)
    assert len(report.problems) == 1
    assert policy in report.problems[0]
    assert report.warnings == []


async def test_noeviction_starts_in_production_without_findings(
    private_redis: RedisServer, tmp_path: Path
) -> None:
    """noeviction: no finding from check, and production starts."""
    _policy(private_redis.address, "noeviction")
    assert await _check(tmp_path, private_redis.url, env="production") == (0, "no findings\n")
    await _start(_settings(tmp_path, private_redis.url))


def test_serve_refuses_an_evicting_store_in_production(
    private_redis: RedisServer, tmp_path: Path
) -> None:
    """`sessionauth serve` exits 1 with the reason before uvicorn starts."""
    _policy(private_redis.address, "allkeys-lru")
    result = CliRunner().invoke(
        cli,
        ["serve", "--port", "1"],
        env={
            "SESSIONAUTH_ENV": "production",
            "SESSIONAUTH_SECRET": "k" * 48,
            "SESSIONAUTH_DATABASE_URL": f"sqlite:///{tmp_path / 'users.db'}",
            "SESSIONAUTH_DATA_DIR": str(tmp_path / "data"),
            "SESSIONAUTH_STORE_URL": private_redis.url,
        },
    )
    assert result.exit_code == 1
    assert "maxmemory-policy allkeys-lru" in result.stderr


async def test_an_unreadable_policy_is_only_a_warning(
    private_redis: RedisServer, tmp_path: Path
) -> None:
    """A user denied INFO and CONFIG (a managed Redis) gets a warning; production still starts."""
    _policy(private_redis.address, "allkeys-lru")  # hidden from the limited user
    redis_call(
        private_redis.address,
        "ACL", "SETUSER", "limited", "on", f">{LIMITED_PASSWORD}", "~*", "&*", "+@all",
        "-info", "-config",
    )  # fmt: skip
    host, port = private_redis.address
    url = f"redis://limited:{LIMITED_PASSWORD}@{host}:{port}/0"
    report = await eviction_findings(url)
    assert report.problems == []
    assert len(report.warnings) == 1
    assert "make sure it is noeviction" in report.warnings[0]
    assert LIMITED_PASSWORD not in report.warnings[0]
    code, output = await _check(tmp_path, url, env="production")
    assert code == 0
    assert "- warning:" in output
    await _start(_settings(tmp_path, url))


async def test_an_unreachable_redis_is_a_warning_not_a_hang(tmp_path: Path) -> None:
    """No server on the port: the check warns within its timeout."""
    with RedisServer() as server:
        url = server.url
    report = await eviction_findings(url, socket_timeout=0.5)
    assert report.problems == []
    assert len(report.warnings) == 1
    assert "could not read" in report.warnings[0]


@pytest.fixture
def private_cluster() -> Iterator[RedisCluster]:
    """A private three-master cluster, free to reconfigure."""
    cluster = require_service("a private Redis Cluster", lambda: RedisCluster().start())
    try:
        yield cluster
    finally:
        cluster.close()


async def test_every_cluster_master_is_read(private_cluster: RedisCluster) -> None:
    """One evicting master out of three is found, named by its address."""
    evicting = private_cluster.nodes[2]
    _policy(evicting, "allkeys-lru")
    report = await eviction_findings(private_cluster.url)
    assert report.warnings == []
    assert len(report.problems) == 1
    assert f"{evicting[0]}:{evicting[1]}" in report.problems[0]
    for node in private_cluster.nodes[:2]:
        assert f"{node[0]}:{node[1]}" not in report.problems[0]


@pytest.fixture
def private_sentinel() -> Iterator[RedisSentinelSetup]:
    """A private master, replica and Sentinels, free to reconfigure."""
    setup = require_service("a private Redis Sentinel setup", lambda: RedisSentinelSetup().start())
    try:
        yield setup
    finally:
        setup.close()


async def test_the_sentinel_master_is_read(private_sentinel: RedisSentinelSetup) -> None:
    """Through Sentinel, the policy of the current master is the one judged."""
    report = await eviction_findings(private_sentinel.url)
    assert (report.problems, report.warnings) == ([], [])
    _policy(private_sentinel.master_address(), "allkeys-lru")
    report = await eviction_findings(private_sentinel.url)
    assert len(report.problems) == 1
    assert "allkeys-lru" in report.problems[0]
