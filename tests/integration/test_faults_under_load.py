"""The session store fails under a steady load: 503 in bounded time, never 500, then service.

Each test starts its own session store (a private Redis, PostgreSQL or Sentinel setup) and its
own ``sessionauth serve`` process on free loopback ports, keeps a steady loop of authenticated
requests (and logins) going, breaks the store, and checks the contract of DESIGN.md section 4:

* every request made while the store is out answers 503 with ``Retry-After`` in under
  `OUTAGE_BOUND` seconds (the store's timeout is 2 s); none answers 500, and none passes a
  protected route (200) or turns the user anonymous (401);
* once the store is back, requests succeed again within `RECOVERY_BOUND` seconds, from the same
  server process (no restart);
* no session is lost unless the store lost its data (a Redis without persistence, restarted).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from sessionauth.tokens import Keyring, storage_id
from tests.support.live_server import (
    SECRET,
    Agent,
    LiveServer,
    LiveServers,
    create_user,
    deployment_env,
    live_servers,
    new_client,
)
from tests.support.services import (
    PostgresServer,
    RedisCluster,
    RedisSentinelSetup,
    RedisServer,
    redis_call,
    require_service,
)

OUTAGE_BOUND = 2.5  # seconds: the 2 s store timeout plus scheduling slack; it is a contract
RECOVERY_BOUND = 5.0  # seconds from the store answering again to a request succeeding
OUTAGE_MIN = 3.0  # seconds an outage lasts at least (a frozen store: at least two timeouts)
SETTLE_WITHIN = 15.0  # deadline for the load to warm up, and for an outage to collect samples
WORKERS = 4  # agents looping over the protected routes
PACE = 0.01  # seconds between one worker's requests: a steady load, not a flood
MAX_REQUESTS = 20_000  # per worker: bounds every loop whatever happens
PROTECTED = ("/dashboard", "/me", "/sessions", "/admin")


@dataclass(frozen=True)
class Sample:
    """One answer (or transport failure, ``status`` None) and when it was asked and received."""

    route: str
    started: float
    ended: float
    status: int | None
    retry_after: str | None = None
    body: str = ""

    @property
    def latency(self) -> float:
        """Seconds from asking to the answer."""
        return self.ended - self.started

    def __str__(self) -> str:
        return f"{self.route} -> {self.status} in {self.latency:.2f} s {self.body[:120]}"


@dataclass
class Load:
    """A steady loop of authenticated requests and logins against one server, all recorded.

    Workers sign in as the administrator and cycle through `PROTECTED` (all 200 when healthy);
    one more worker keeps logging in as another user. A worker whose session is gone (401)
    signs in again, and the 401 stays in the record for the test to judge.
    """

    server: LiveServer
    client: httpx.AsyncClient
    admin_email: str
    login_email: str
    samples: list[Sample] = field(default_factory=list)
    agents: list[Agent] = field(default_factory=list)
    _stop: asyncio.Event = field(default_factory=asyncio.Event)

    async def _send(self, agent: Agent, method: str, path: str, json: object = None) -> Sample:
        started = time.monotonic()
        try:
            response = await agent.request(method, self.server.url + path, json=json)
        except httpx.HTTPError as exc:
            sample = Sample(f"{method} {path}", started, time.monotonic(), None, body=repr(exc))
        else:
            sample = Sample(
                f"{method} {path}",
                started,
                time.monotonic(),
                response.status_code,
                response.headers.get("retry-after"),
                response.text,
            )
        self.samples.append(sample)
        return sample

    async def _login(self, agent: Agent, email: str) -> Sample:
        agent.cookie = None  # a fresh login, no CSRF token needed
        body = {"email": email, "password": "correct horse battery staple"}
        return await self._send(agent, "POST", "/login", body)

    async def _worker(self, agent: Agent) -> None:
        for count in range(MAX_REQUESTS):
            if self._stop.is_set():
                return
            if agent.cookie is None:
                await self._login(agent, self.admin_email)
            else:
                await self._send(agent, "GET", PROTECTED[count % len(PROTECTED)])
            await asyncio.sleep(PACE)

    async def _login_worker(self) -> None:
        agent = Agent(self.client)
        for _ in range(MAX_REQUESTS):
            if self._stop.is_set():
                return
            await self._login(agent, self.login_email)
            await asyncio.sleep(PACE)

    async def sign_in(self, count: int) -> list[Agent]:
        """Sign in ``count`` more administrators' sessions (before the load starts)."""
        made = []
        for _ in range(count):
            agent = Agent(self.client)
            sample = await self._login(agent, self.admin_email)
            assert sample.status == 200, str(sample)
            made.append(agent)
        return made

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[Load]:
        """Run the workers until the block ends."""
        self.agents = await self.sign_in(WORKERS)
        tasks = [asyncio.create_task(self._worker(agent)) for agent in self.agents]
        tasks.append(asyncio.create_task(self._login_worker()))
        try:
            yield self
        finally:
            self._stop.set()
            await asyncio.wait_for(asyncio.gather(*tasks), OUTAGE_BOUND * 4)

    def since(self, moment: float) -> list[Sample]:
        """Samples asked at or after ``moment``."""
        return [s for s in self.samples if s.started >= moment]

    async def until(self, what: str, condition: Callable[[], bool], within: float) -> float:
        """Poll ``condition`` until true; return when it became true (monotonic)."""
        deadline = time.monotonic() + within
        while not condition():
            if time.monotonic() > deadline:
                raise AssertionError(f"{what}: not within {within:g} s\n{self.server.report()}")
            await asyncio.sleep(0.02)
        return time.monotonic()

    async def warm_up(self) -> None:
        """Wait until every protected route has answered 200 and a login succeeded."""
        wanted = {f"GET {path}" for path in PROTECTED} | {"POST /login"}
        await self.until(
            "every route answering 200",
            lambda: wanted <= {s.route for s in self.samples if s.status == 200},
            SETTLE_WITHIN,
        )

    async def outage_samples(self, since: float, *, at_least: float) -> None:
        """Let the outage last ``at_least`` seconds and every route answer in it twice."""
        routes = {f"GET {path}" for path in PROTECTED} | {"POST /login"}

        def enough() -> bool:
            inside = self.since(since)
            done = all(sum(s.route == r for s in inside) >= 2 for r in routes)
            return done and time.monotonic() - since >= at_least

        await self.until("requests during the outage", enough, SETTLE_WITHIN + at_least)

    async def first_success(self, since: float, *, login: bool = False) -> Sample:
        """The first 200 to a request asked after ``since``: a protected route, or a login."""

        def found() -> Sample | None:
            ok = [
                s
                for s in self.since(since)
                if s.status == 200 and (s.route == "POST /login") == login
            ]
            return min(ok, key=lambda s: s.ended) if ok else None

        what = "a login" if login else "a protected route"
        await self.until(f"{what} succeeding again", lambda: found() is not None, RECOVERY_BOUND)
        sample = found()
        assert sample is not None
        return sample


@dataclass
class Outage:
    """The moments of an outage, as the test saw them (monotonic seconds)."""

    broken: float  # the store was down once this passed (stop()/pause() returned)
    restoring: float  # the store was down until this (start()/resume() called)
    restored: float  # the store answered again (start()/resume() returned)
    recovered: float = 0.0  # both a protected route and a login had answered 200 again


def listing(samples: list[Sample], load: Load) -> str:
    """The first offending samples and the server's log tail, for an assertion message."""
    return "\n".join(map(str, samples[:10])) + "\n" + load.server.report()


def assert_never_broken(load: Load, *, keeps_sessions: bool) -> None:
    """No 5xx but 503, no transport failure, no hang; no 401 if the store kept its data."""
    failures = [
        s for s in load.samples if s.status is None or (s.status >= 500 and s.status != 503)
    ]
    assert not failures, "failed answers:\n" + listing(failures, load)
    slow = [s for s in load.samples if s.latency >= OUTAGE_BOUND]
    assert not slow, f"answers slower than {OUTAGE_BOUND} s:\n" + listing(slow, load)
    if keeps_sessions:
        lost = [s for s in load.samples if s.status == 401]
        assert not lost, "sessions lost:\n" + listing(lost, load)


def judge(load: Load, outage: Outage, *, data_survives: bool) -> float:
    """Assert the outage contract on everything the load recorded.

    Returns:
        The slowest answer during the outage, in seconds.
    """
    assert_never_broken(load, keeps_sessions=data_survives)
    inside = [s for s in load.samples if s.started >= outage.broken and s.ended <= outage.restoring]
    assert inside, "no request was made during the outage"
    wrong = [s for s in inside if s.status != 503 or not s.retry_after]
    assert not wrong, "not 503 with Retry-After during the outage:\n" + listing(wrong, load)

    # A restarted Redis without persistence has forgotten every session: 401 is right then,
    # also for a request asked just before the restart and answered by the restarted server.
    # Only a 401 answered while the store was still down is an anonymous pass.
    def before_restoring(s: Sample) -> bool:
        return (s.started if data_survives else s.ended) < outage.restoring

    anonymous = [s for s in load.samples if s.status == 401 and before_restoring(s)]
    assert not anonymous, "anonymous during the outage:\n" + listing(anonymous, load)
    relapse = [s for s in load.since(outage.recovered) if s.status == 503]
    assert not relapse, "503 after recovery:\n" + listing(relapse, load)
    return max(s.latency for s in inside)


# --------------------------------------------------------------------------- fixtures


@dataclass
class Site:
    """One server on a store of the test's own, its accounts, and a client."""

    server: LiveServer
    admin_email: str
    login_email: str
    client: httpx.AsyncClient
    store_prefix: str = "sa:"

    def load(self) -> Load:
        return Load(self.server, self.client, self.admin_email, self.login_email)


@pytest.fixture
def pool() -> Iterator[LiveServers]:
    with live_servers() as servers:
        yield servers


@contextlib.asynccontextmanager
async def open_site(
    pool: LiveServers, store_url: str, directory: Path, *, store_prefix: str = "sa:"
) -> AsyncIterator[Site]:
    """Accounts in a SQLite file (so only the session store breaks), one server on the store."""
    settings = deployment_env(
        database_url=f"sqlite:///{directory / 'users.db'}",
        store_url=store_url,
        data_dir=directory / "data",
    )
    admin_email, login_email = "admin@example.com", "someone@example.com"
    create_user(settings, admin_email, role="admin")
    create_user(settings, login_email)
    server = await asyncio.to_thread(pool.start, settings)
    async with new_client() as client:
        yield Site(server, admin_email, login_email, client, store_prefix)


@pytest.fixture
async def redis_site(
    private_redis: RedisServer, pool: LiveServers, tmp_path: Path
) -> AsyncIterator[Site]:
    async with open_site(pool, private_redis.url, tmp_path) as site:
        yield site


@pytest.fixture
async def postgres_site(
    private_postgres: PostgresServer, pool: LiveServers, tmp_path: Path
) -> AsyncIterator[Site]:
    async with open_site(pool, private_postgres.dsn, tmp_path) as site:
        yield site


@pytest.fixture
async def sentinel_site(
    redis_sentinel: RedisSentinelSetup, pool: LiveServers, tmp_path: Path, redis_run_prefix: str
) -> AsyncIterator[Site]:
    # The Sentinel setup is shared by the run: this test's keys live under a prefix of its own.
    prefix = f"{redis_run_prefix}faults-{uuid.uuid4().hex[:8]}:"
    async with open_site(
        pool, f"{redis_sentinel.url}?prefix={prefix}", tmp_path, store_prefix=prefix
    ) as site:
        yield site


@pytest.fixture
def replicated_cluster() -> Iterator[RedisCluster]:
    """A private Cluster of three masters with a replica each; nodes fail after 2 s of silence."""
    cluster = require_service(
        "a private Redis Cluster with replicas",
        lambda: RedisCluster(replicas=1, node_timeout=2000).start(),
    )
    try:
        yield cluster
    finally:
        cluster.close()


@pytest.fixture
async def cluster_site(
    replicated_cluster: RedisCluster, pool: LiveServers, tmp_path: Path
) -> AsyncIterator[Site]:
    async with open_site(pool, replicated_cluster.url, tmp_path) as site:
        yield site


def user_key(agent: Agent, prefix: str) -> str:
    """The Redis key holding the agent's user's sessions."""
    assert agent.cookie is not None
    token = Keyring([SECRET]).unsign(agent.cookie)
    assert token is not None
    return f"{prefix}u:{storage_id(token).partition('.')[0]}"


def where_is(
    agent: Agent, prefix: str, setup: RedisSentinelSetup, promoted: tuple[str, int]
) -> str:
    """Which servers hold an agent's session record, and which one the server reads from.

    For each Redis server: whether it holds the record, its role and replication link, and
    its client connections (the sessionauth server's read pipeline among them), so that a
    lost session says whether it was lost by Redis or read from a server that lacked it.
    """
    if agent.cookie is None:
        return "the agent holds no cookie"
    token = Keyring([SECRET]).unsign(agent.cookie)
    if token is None:
        return "the agent's cookie does not verify"
    group, _, digest = storage_id(token).partition(".")
    found = []
    for server in setup.servers:
        try:
            held = redis_call(server.address, "HEXISTS", f"{prefix}u:{group}", digest)
            info = redis_call(server.address, "INFO", "replication")
            clients = str(redis_call(server.address, "CLIENT", "LIST")).splitlines()
        except redis.RedisError as exc:
            found.append(f"{server.address} unreachable ({exc!r})")
            continue
        wanted = ("addr", "flags", "cmd", "age")
        connections = [
            " ".join(w for w in line.split() if w.partition("=")[0] in wanted) for line in clients
        ]
        found.append(
            f"{server.address} {'holds it' if held else 'lacks it'}, role {info.get('role')}, "
            f"link {info.get('master_link_status', '-')}, "
            f"syncing {info.get('master_sync_in_progress', '-')}, clients {connections}"
        )
    return f"promoted {promoted}, master now {setup.master_address()}; " + "; ".join(found)


# --------------------------------------------------------------------------- the tests


async def break_and_restore(
    load: Load,
    breaks: Callable[[], Any],
    restores: Callable[[], Any],
    *,
    at_least: float = OUTAGE_MIN,
) -> Outage:
    """Break the store under load, keep it broken a while, restore it; return the moments."""
    await load.warm_up()
    await asyncio.to_thread(breaks)
    broken = time.monotonic()
    await load.outage_samples(broken, at_least=at_least)
    restoring = time.monotonic()
    await asyncio.to_thread(restores)
    return Outage(broken, restoring, time.monotonic())


async def outage_under_load(
    site: Site,
    breaks: Callable[[], Any],
    restores: Callable[[], Any],
    *,
    data_survives: bool,
    at_least: float = OUTAGE_MIN,
) -> tuple[float, float]:
    """Run the whole scenario; return the worst outage latency and the recovery time."""
    pid = site.server.pid
    load = site.load()
    async with load.running():
        outage = await break_and_restore(load, breaks, restores, at_least=at_least)
        recovered = await load.first_success(outage.restored)
        logged_in = await load.first_success(outage.restored, login=True)
        outage.recovered = max(recovered.ended, logged_in.ended)
        # Keep going a little: recovered means it stays recovered.
        await load.until(
            "steady load after the recovery",
            lambda: len(load.since(outage.recovered)) >= 10 * WORKERS,
            SETTLE_WITHIN,
        )
    assert site.server.pid == pid, "the server process was restarted"
    worst = judge(load, outage, data_survives=data_survives)
    recovery = outage.recovered - outage.restored
    print(
        f"worst 503 latency {worst:.3f} s, recovery {recovery:.3f} s, {len(load.samples)} requests"
    )
    return worst, recovery


@pytest.mark.redis
async def test_a_stopped_redis_gives_503_then_service_again(
    redis_site: Site, private_redis: RedisServer
) -> None:
    """Redis stopped: 503 within the bound, no 500; restarted (empty): logins work again."""
    worst, recovery = await outage_under_load(
        redis_site, private_redis.stop, private_redis.start, data_survives=False
    )
    assert worst < OUTAGE_BOUND
    assert recovery < RECOVERY_BOUND


@pytest.mark.redis
async def test_a_frozen_redis_gives_503_then_service_again(
    redis_site: Site, private_redis: RedisServer
) -> None:
    """Redis frozen (SIGSTOP): 503 after the store timeout, no hang; resumed: same sessions."""
    worst, recovery = await outage_under_load(
        redis_site, private_redis.pause, private_redis.resume, data_survives=True, at_least=5.0
    )
    assert worst < OUTAGE_BOUND
    assert recovery < RECOVERY_BOUND


@pytest.mark.postgres
async def test_a_stopped_postgres_gives_503_then_service_again(
    postgres_site: Site, private_postgres: PostgresServer
) -> None:
    """PostgreSQL stopped: 503 within the bound, no 500; restarted: the same sessions work."""
    worst, recovery = await outage_under_load(
        postgres_site, private_postgres.stop, private_postgres.start, data_survives=True
    )
    assert worst < OUTAGE_BOUND
    assert recovery < RECOVERY_BOUND


@pytest.mark.redis
async def test_a_sentinel_failover_keeps_sessions_and_resumes_by_itself(
    sentinel_site: Site, redis_sentinel: RedisSentinelSetup
) -> None:
    """Master crashed and replaced: earlier sessions survive (WAIT), 503 not 500 meanwhile."""
    load = sentinel_site.load()
    pid = sentinel_site.server.pid
    async with load.running():
        await load.warm_up()
        earlier = await load.sign_in(10)  # acknowledged by the replica just before the crash
        crashed = time.monotonic()
        # Promoted, and the old master rejoined.
        promoted = await asyncio.to_thread(redis_sentinel.failover)
        switched = time.monotonic()
        await load.first_success(switched)
        await load.first_success(switched, login=True)
        # Every session made before the crash, by the workers or just now, still works.
        named = [(f"worker {i}", a) for i, a in enumerate(load.agents)]
        named += [(f"signed in before the crash {i}", a) for i, a in enumerate(earlier)]
        for name, agent in named:
            check = await load._send(agent, "GET", "/dashboard")
            if check.status != 200:
                where = await asyncio.to_thread(
                    where_is, agent, sentinel_site.store_prefix, redis_sentinel, promoted
                )
                raise AssertionError(f"{name}: {check}; {where}\n{sentinel_site.server.report()}")
    assert sentinel_site.server.pid == pid, "the server process was restarted"
    assert_never_broken(load, keeps_sessions=True)
    unavailable = [s for s in load.since(crashed) if s.status == 503]
    assert unavailable, "the crash went unnoticed: was the failover real?"
    for route in {s.route for s in unavailable}:
        during = [s for s in unavailable if s.route == route]
        first, last = min(s.started for s in during), max(s.ended for s in during)
        print(
            f"{route}: {len(during)} answers 503 from {first - crashed:.2f} s to "
            f"{last - crashed:.2f} s after the crash, "
            f"slowest {max(s.latency for s in during):.3f} s"
        )
    print(f"failover (promotion and rejoin) took {switched - crashed:.1f} s")


@pytest.mark.redis
async def test_a_cluster_master_killed_fails_over_to_its_replica_keeping_sessions(
    cluster_site: Site, replicated_cluster: RedisCluster
) -> None:
    """A Cluster master crashed: its replica takes over, 503 meanwhile (under 10 s), no loss."""
    load = cluster_site.load()
    pid = cluster_site.server.pid
    async with load.running():
        await load.warm_up()
        earlier = await load.sign_in(10)
        key = user_key(earlier[0], cluster_site.store_prefix)
        # Cluster replication is asynchronous: wait until these sessions reached the replica.
        await asyncio.to_thread(replicated_cluster.wait_replicated, key)
        crashed = time.monotonic()
        await asyncio.to_thread(replicated_cluster.fail_over, key)
        switched = time.monotonic()
        await load.first_success(switched)
        await load.first_success(switched, login=True)
        named = [(f"worker {i}", a) for i, a in enumerate(load.agents)]
        named += [(f"signed in before the crash {i}", a) for i, a in enumerate(earlier)]
        for name, agent in named:
            check = await load._send(agent, "GET", "/dashboard")
            assert check.status == 200, f"{name}: {check}\n{cluster_site.server.report()}"
    assert cluster_site.server.pid == pid, "the server process was restarted"
    assert_never_broken(load, keeps_sessions=True)
    unavailable = [s for s in load.since(crashed) if s.status == 503]
    assert unavailable, "the crash went unnoticed: was the master killed?"
    window = max(s.ended for s in unavailable) - crashed
    print(
        f"{len(unavailable)} answers 503 in the {window:.2f} s after the crash; "
        f"promotion took {switched - crashed:.1f} s"
    )
    assert window < 10.0
