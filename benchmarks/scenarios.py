"""Scenario benchmarks of the library app: login bursts, a million stored sessions, revocation.

Usage (from the repository root)::

    .venv/bin/python benchmarks/scenarios.py [--only NAME[,NAME]] [--seconds S]

Prints one Markdown table on stdout (progress goes to stderr). Every scenario starts its own
``redis-server`` on a free loopback port (never 6379; no persistence) and, where it measures HTTP,
its own ``benchmarks/library/start.sh`` (one uvicorn process) on that Redis, and stops them all
before the next scenario. As in ``shared/bench`` (see its README), the app is pinned to core 0
with ``taskset`` and everything else (this script, wrk, Redis, the login client) to core 1, when
there are two cores; wrk runs ``-t1 -c32`` with the authenticated ``sessionId`` cookie of one
HTTP login, through a Lua script that reports p50/p99 and counts non-2xx answers.

Scenarios:

``login-burst``
    ``GET /dashboard`` latency with wrk while idle, then while an httpx client keeps 32
    ``POST /login`` (bcrypt cost 10, run in Starlette's threadpool) in flight until wrk ends.
    Reports both p50/p99, the p99 ratio (target: burst p99 within 3x idle) and logins/s.
``many-sessions``
    ``GET /dashboard`` throughput (2 s warm-up, then the measured run) with 1,000 and with
    1,000,000 stored sessions, each in its own Redis with its own app, measured alternately
    (``--rounds``, default 3, order AB BA AB; medians reported). The sessions belong to
    distinct users, one user hash each (the worst case for the key count), and are written
    as logins write them: ``install_principal`` then ``create`` through the RedisStore, a
    batch at a time. The template record is the one the app itself stored at login; a few
    filled sessions are read back through ``store.load``.
    Target: 1M rps within 5% of 1k rps. Also reports Redis ``used_memory`` growth per session.
``revoke-100``
    ``store.change_principal`` rotating a user with 100 live sessions (made with ``create``), median
    and p95 of 20 timed repetitions (after one untimed), on Redis (fresh prefix), PostgreSQL
    (``--postgres-url``, own table ``bench_sessions_<random>``, dropped afterwards) and SQLite
    (a temporary file).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from http.cookiejar import CookieJar
from pathlib import Path
from typing import Any

import httpx
import redis

from sessionauth.backends.redis.sessions import RedisStore
from sessionauth.principal import Principal, PrincipalChange, new_epoch
from sessionauth.record import SessionRecord
from sessionauth.stores.base import MAX_PAGE, SessionStore
from sessionauth.tokens import new_token, storage_id

ROOT = Path(__file__).resolve().parents[1]
APP_START = ROOT / "benchmarks" / "library" / "start.sh"
EMAIL = os.environ.get("BENCH_EMAIL", "bench@example.com")
PASSWORD = os.environ.get("BENCH_PASSWORD", "correct-horse-battery-staple-bench-password-42")
SCENARIOS = ("login-burst", "many-sessions", "revoke-100")
CONNECTIONS = 32
WARMUP_S = 2.0
FILL_BATCH = 10_000
REVOKE_SESSIONS = 100
REVOKE_REPS = 20

WRK_LUA = r"""
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args) non2xx = 0 end
function response(status, headers, body)
  if status < 200 or status > 299 then non2xx = non2xx + 1 end
end
function done(summary, latency, requests)
  local bad = 0
  for _, t in ipairs(threads) do bad = bad + t:get("non2xx") end
  local e = summary.errors
  local secs = summary.duration / 1e6
  io.write(string.format(
    'BENCH_JSON {"rps":%.1f,"p50_ms":%.3f,"p99_ms":%.3f,"max_ms":%.3f,"requests":%d,' ..
    '"non2xx":%d,"socket_errors":%d,"duration_s":%.3f}\n',
    summary.requests / secs, latency:percentile(50) / 1000, latency:percentile(99) / 1000,
    latency.max / 1000, summary.requests, bad,
    e.connect + e.read + e.write + e.timeout, secs))
end
"""


def log(message: str) -> None:
    print(f"[scenarios] {message}", file=sys.stderr, flush=True)


# --- processes -----------------------------------------------------------------------------


def _pinning() -> tuple[list[str], list[str]]:
    """Return the command prefixes that pin the server and the client side, or none."""
    if shutil.which("taskset") and {0, 1} <= os.sched_getaffinity(0):
        return ["taskset", "-c", "0"], ["taskset", "-c", "1"]
    return [], []


SERVER_PIN, CLIENT_PIN = _pinning()


def free_port() -> int:
    """Return a loopback port nobody listens on (never Redis's default 6379)."""
    for _ in range(50):
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        if port != 6379:
            return port
    raise RuntimeError("no free port")


@dataclass
class Processes:
    """The processes this script started, each in its own process group; stopped by pid."""

    workdir: Path
    started: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def spawn(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> Any:
        """Start ``argv`` in a new session, logging to ``workdir/name.log``."""
        with (self.workdir / f"{name}.log").open("ab") as out:
            proc = subprocess.Popen(  # noqa: S603 - fixed argv built here
                argv, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True
            )
        self.started.append(proc)
        return proc

    def stop(self, proc: subprocess.Popen[bytes], *, grace: float = 10.0) -> None:
        """SIGTERM the process group we created for ``proc``, SIGKILL after ``grace`` s."""
        if proc in self.started:
            self.started.remove(proc)
        if proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)

    def stop_all(self) -> None:
        """Stop every process still running, newest first."""
        for proc in reversed(list(self.started)):
            self.stop(proc)


@dataclass
class RedisServer:
    """A private redis-server on a free loopback port."""

    port: int
    proc: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        """The ``redis://`` URL of database 0."""
        return f"redis://127.0.0.1:{self.port}/0"

    def client(self) -> redis.Redis:
        """A synchronous client (for INFO, DBSIZE and the like)."""
        return redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=30)


def start_redis(procs: Processes, name: str) -> RedisServer:
    """Start redis-server (no persistence) pinned with the client side; wait until it answers."""
    port = free_port()
    argv = [
        *CLIENT_PIN,
        "redis-server",
        "--port",
        str(port),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "no",
        "--dir",
        str(procs.workdir),
        "--dbfilename",
        f"{name}.rdb",
    ]
    server = RedisServer(port, procs.spawn(name, argv))
    client = server.client()
    deadline = time.monotonic() + 15
    while True:
        try:
            client.ping()
            break
        except redis.ConnectionError:
            if server.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"redis-server {name} did not start") from None
            time.sleep(0.05)
    client.close()
    return server


@dataclass
class App:
    """A running benchmarks/library app."""

    base: str
    proc: subprocess.Popen[bytes]


async def start_app(procs: Processes, name: str, store_url: str) -> App:
    """Start benchmarks/library/start.sh on ``store_url``, pinned to core 0; wait for /dashboard."""
    port = free_port()
    env = dict(os.environ, REDIS_URL=store_url, BENCH_STORE_URL=store_url)
    env.update(BENCH_EMAIL=EMAIL, BENCH_PASSWORD=PASSWORD)
    proc = procs.spawn(name, [*SERVER_PIN, "bash", str(APP_START), str(port)], env)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    async with httpx.AsyncClient(trust_env=False, timeout=5) as client:
        while True:
            try:
                if (await client.get(f"{base}/dashboard")).status_code == 401:
                    return App(base, proc)
            except httpx.TransportError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"app {name} did not start; see {procs.workdir}/{name}.log")
            await asyncio.sleep(0.1)


async def login(base: str) -> str:
    """Log in once; return the ``sessionId`` cookie, checked against /dashboard."""
    async with httpx.AsyncClient(trust_env=False, timeout=30) as client:
        response = await client.post(f"{base}/login", json={"email": EMAIL, "password": PASSWORD})
        response.raise_for_status()
        cookie = response.cookies["sessionId"]
        check = await client.get(f"{base}/dashboard")
        if check.status_code != 200:
            raise RuntimeError(f"/dashboard with the login cookie answered {check.status_code}")
        return cookie


# --- wrk -----------------------------------------------------------------------------------


@dataclass
class WrkResult:
    """One wrk run's summary."""

    rps: float
    p50_ms: float
    p99_ms: float
    max_ms: float
    requests: int
    non2xx: int
    socket_errors: int
    duration_s: float

    @property
    def clean(self) -> bool:
        """Whether every request got a 2xx answer."""
        return self.non2xx == 0 and self.socket_errors == 0


async def wrk(workdir: Path, base: str, cookie: str, seconds: float) -> WrkResult:
    """Run ``wrk -t1 -c32`` on GET /dashboard with the session cookie (on the client core)."""
    script = workdir / "scenarios.lua"
    if not script.exists():
        script.write_text(WRK_LUA)
    argv = [
        *CLIENT_PIN,
        "wrk",
        "-t1",
        f"-c{CONNECTIONS}",
        f"-d{max(1, round(seconds))}s",
        "--timeout",
        f"{max(10, round(seconds * 3))}s",
        "-s",
        str(script),
        "-H",
        f"Cookie: sessionId={cookie}",
        f"{base}/dashboard",
    ]
    proc = await asyncio.create_subprocess_exec(
        *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), seconds + 60)
    except BaseException:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await proc.wait()
        raise
    text = out.decode(errors="replace")
    for line in text.splitlines():
        if line.startswith("BENCH_JSON "):
            return WrkResult(**json.loads(line.removeprefix("BENCH_JSON ")))
    raise RuntimeError(f"wrk gave no summary:\n{text}")


# --- output --------------------------------------------------------------------------------


@dataclass
class Table:
    """The Markdown result rows."""

    rows: list[tuple[str, str, str, str]] = field(default_factory=list)

    def add(self, scenario: str, what: str, result: str, target: str = "") -> None:
        """Add one row (and echo it to stderr as it comes)."""
        self.rows.append((scenario, what, result, target))
        log(f"{scenario}: {what}: {result} {target}".rstrip())

    def markdown(self) -> str:
        """The table as Markdown."""
        lines = ["| scenario | measurement | result | target |", "|---|---|---|---|"]
        lines += [f"| {' | '.join(row)} |" for row in self.rows]
        return "\n".join(lines)


def verdict(ok: bool) -> str:
    return "**PASS**" if ok else "**FAIL**"


def wrk_note(result: WrkResult) -> str:
    if result.clean:
        return ""
    return f" (**{result.non2xx} non-2xx, {result.socket_errors} socket errors**)"


# --- login-burst ---------------------------------------------------------------------------


class _NoCookies(CookieJar):
    """A jar that keeps nothing: every burst login arrives without a cookie, like a new user."""

    def extract_cookies(self, *args: Any) -> None:
        return None

    def set_cookie(self, *args: Any) -> None:
        return None


async def scenario_login_burst(procs: Processes, table: Table, seconds: float) -> None:
    server = start_redis(procs, "redis-burst")
    app = await start_app(procs, "app-burst", server.url)
    cookie = await login(app.base)
    await wrk(procs.workdir, app.base, cookie, WARMUP_S)
    idle = await wrk(procs.workdir, app.base, cookie, seconds)

    stop = asyncio.Event()
    done: list[tuple[float, int]] = []  # (finish time, status) of every burst login
    errors: list[str] = []
    hard_stop = time.monotonic() + seconds + 120  # bounds the loops whatever wrk does

    async def login_loop(client: httpx.AsyncClient) -> None:
        body = {"email": EMAIL, "password": PASSWORD}
        while not stop.is_set() and time.monotonic() < hard_stop:
            try:
                response = await client.post(f"{app.base}/login", json=body)
                done.append((time.monotonic(), response.status_code))
            except httpx.HTTPError as exc:
                errors.append(repr(exc))
                await asyncio.sleep(0.01)

    limits = httpx.Limits(max_connections=CONNECTIONS, max_keepalive_connections=CONNECTIONS)
    async with httpx.AsyncClient(
        trust_env=False, timeout=60, limits=limits, cookies=_NoCookies()
    ) as client:
        tasks = [asyncio.create_task(login_loop(client)) for _ in range(CONNECTIONS)]
        try:
            await asyncio.sleep(1.0)  # let all 32 reach the threadpool before measuring
            started = time.monotonic()
            burst = await wrk(procs.workdir, app.base, cookie, seconds)
            ended = time.monotonic()
        finally:
            stop.set()
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    in_window = [status for at, status in done if started <= at <= ended]
    ok = sum(1 for status in in_window if status == 200)
    failed = len(in_window) - ok + len(errors)
    ratio = burst.p99_ms / idle.p99_ms if idle.p99_ms else math.inf
    name = "login-burst"
    table.add(
        name,
        "GET /dashboard idle: p50 / p99",
        f"{idle.p50_ms:.2f} / {idle.p99_ms:.2f} ms ({idle.rps:,.0f} rps){wrk_note(idle)}",
    )
    table.add(
        name,
        f"GET /dashboard, {CONNECTIONS} logins in flight: p50 / p99",
        f"{burst.p50_ms:.2f} / {burst.p99_ms:.2f} ms ({burst.rps:,.0f} rps, "
        f"max {burst.max_ms:,.0f} ms){wrk_note(burst)}",
    )
    table.add(name, "burst p99 / idle p99", f"{ratio:.1f}x", f"<= 3x {verdict(ratio <= 3)}")
    table.add(
        name,
        "logins/s during the burst",
        f"{ok / (ended - started):.1f} ({ok} in {ended - started:.1f} s"
        + (f", **{failed} failed**" if failed else "")
        + ")",
    )
    procs.stop(app.proc)
    procs.stop(server.proc)


# --- many-sessions -------------------------------------------------------------------------


async def fill_sessions(store: RedisStore, template: SessionRecord, count: int) -> list[str]:
    """Store ``count`` sessions of users 2, 3, ... as logins do, FILL_BATCH at a time.

    Each user gets a principal (``install_principal``) and one session stamped with its epoch
    (``create``): the store's own scripts write the hash, its index and its expiry, so what is
    measured is what a real deployment holds. Returns a few of the storage ids.
    """
    samples: list[str] = []
    began = time.monotonic()

    async def one(uid: int) -> str:
        user = str(uid)
        principal = await store.install_principal(
            user, Principal(epoch=new_epoch(), role="user", disabled=False)
        )
        sid = storage_id(new_token(user))
        record = SessionRecord(
            data=template.data,
            created=template.created,
            seen=template.seen,
            issued=template.issued,
            expires=template.expires,
            user_id=user,
            meta=template.meta,
            epoch=principal.epoch,
        )
        await store.create(sid, record)
        return sid

    for start in range(2, 2 + count, FILL_BATCH):
        batch = range(start, min(start + FILL_BATCH, 2 + count))
        sids = await asyncio.gather(*(one(uid) for uid in batch))
        samples.append(sids[-1])
    log(f"filled {count:,} sessions in {time.monotonic() - began:.1f} s")
    return samples[-3:]


@dataclass
class ManySetup:
    """One Redis + app with ``total`` stored sessions."""

    total: int
    server: RedisServer
    app: App
    cookie: str
    bytes_per_session: float
    runs: list[WrkResult] = field(default_factory=list)


async def _many_setup(procs: Processes, total: int) -> ManySetup:
    tag = f"{total}"
    server = start_redis(procs, f"redis-many-{tag}")
    app = await start_app(procs, f"app-many-{tag}", server.url)
    cookie = await login(app.base)  # session 1 of `total`: the one wrk presents
    store = RedisStore.from_url(server.url)
    try:
        ((_, template),) = (await store.list_user("1")).sessions
        client = server.client()
        before = int(client.info("memory")["used_memory"])
        samples = await fill_sessions(store, template, total - 1)
        for sid in samples:  # written exactly as the store writes: it reads them back
            record = await store.load(sid)
            if record is None or record.user_id is None:
                raise RuntimeError(f"filled session {sid} does not load")
        keys = int(client.dbsize())
        if keys != total:
            raise RuntimeError(f"expected {total} user hashes, found {keys}")
        after = int(client.info("memory")["used_memory"])
        client.close()
    finally:
        await store.aclose()
    return ManySetup(total, server, app, cookie, (after - before) / max(1, total - 1))


async def scenario_many_sessions(
    procs: Processes, table: Table, seconds: float, rounds: int
) -> None:
    small = await _many_setup(procs, 1_000)
    large = await _many_setup(procs, 1_000_000)
    await asyncio.sleep(1.0)  # let Redis finish rehashing its million-key dict
    for round_ in range(rounds):
        order = (small, large) if round_ % 2 == 0 else (large, small)
        for setup in order:
            await wrk(procs.workdir, setup.app.base, setup.cookie, WARMUP_S)
            setup.runs.append(await wrk(procs.workdir, setup.app.base, setup.cookie, seconds))
            log(f"{setup.total:,} sessions: {setup.runs[-1].rps:,.0f} rps")
    name = "many-sessions"
    rps = {}
    for setup in (small, large):
        rps[setup.total] = statistics.median(run.rps for run in setup.runs)
        p99 = statistics.median(run.p99_ms for run in setup.runs)
        spread = (
            f", min {min(r.rps for r in setup.runs):,.0f} max {max(r.rps for r in setup.runs):,.0f}"
            if rounds > 1
            else ""
        )
        notes = "".join(wrk_note(run) for run in setup.runs)
        table.add(
            name,
            f"GET /dashboard, {setup.total:,} sessions stored",
            f"{rps[setup.total]:,.0f} rps (p99 {p99:.2f} ms{spread}){notes}",
        )
    ratio = rps[large.total] / rps[small.total]
    table.add(name, "rps ratio 1M / 1k", f"{ratio:.3f}", f">= 0.95 {verdict(ratio >= 0.95)}")
    table.add(
        name,
        "Redis used_memory per session",
        f"{large.bytes_per_session:,.0f} B at 1M ({small.bytes_per_session:,.0f} B at 1k)",
    )
    for setup in (small, large):
        procs.stop(setup.app.proc)
        procs.stop(setup.server.proc)


# --- revoke-100 ----------------------------------------------------------------------------


def _record(user: str, now: float, epoch: str) -> SessionRecord:
    return SessionRecord(
        data={},
        created=now,
        seen=now,
        issued=now,
        expires=now + 86400,
        user_id=user,
        meta={"ip": "127.0.0.1", "ua": "scenarios.py", "auth": now},
        epoch=epoch,
    )


async def time_revoke(store: SessionStore) -> list[float]:
    """Seconds each rotation ending 100 live sessions took (first repetition untimed)."""
    user = f"revoke-{secrets.token_hex(4)}"
    rotate = PrincipalChange(fallback_role="user", fallback_disabled=False, rotate=True)
    times = []
    for rep in range(REVOKE_REPS + 1):
        now = time.time()
        principal = await store.install_principal(
            user, Principal(epoch=new_epoch(), role="user", disabled=False)
        )
        for _ in range(REVOKE_SESSIONS):
            await store.create(storage_id(new_token(user)), _record(user, now, principal.epoch))
        listed = len((await store.list_user(user, limit=MAX_PAGE)).sessions)
        if listed != REVOKE_SESSIONS:
            raise RuntimeError(f"{type(store).__name__}: {listed} sessions before the revoke")
        began = time.perf_counter()
        _, gone = await store.change_principal(user, rotate)
        elapsed = time.perf_counter() - began
        if gone != REVOKE_SESSIONS:
            raise RuntimeError(f"{type(store).__name__}: the rotation ended {gone}")
        if rep:
            times.append(elapsed)
    if (await store.list_user(user)).sessions:
        raise RuntimeError(f"{type(store).__name__}: sessions left after the revoke")
    return times


def _p95(samples: list[float]) -> float:
    ordered = sorted(samples)
    return ordered[math.ceil(0.95 * len(ordered)) - 1]


async def scenario_revoke(
    procs: Processes, table: Table, postgres_url: str, *, skip_postgres: bool
) -> None:
    from sessionauth.backends.sqlite.sessions import SQLiteStore

    name = "revoke-100"
    backends: list[tuple[str, Callable[[], Awaitable[SessionStore]], Callable[[], Any]]] = []

    server = start_redis(procs, "redis-revoke")

    async def make_redis() -> SessionStore:
        return RedisStore.from_url(
            server.url, prefix=f"bench{secrets.token_hex(4)}:", max_sessions=REVOKE_SESSIONS
        )

    backends.append(("redis", make_redis, lambda: None))

    table_name = f"bench_sessions_{secrets.token_hex(4)}"

    async def make_postgres() -> SessionStore:
        from sessionauth.backends.postgres.sessions import PostgresStore

        return PostgresStore.from_url(postgres_url, table=table_name, max_sessions=REVOKE_SESSIONS)

    async def drop_postgres() -> None:
        import asyncpg

        connection = await asyncpg.connect(postgres_url, timeout=10)
        try:
            # The store's two tables: its sessions and its principals.
            await connection.execute(f"DROP TABLE IF EXISTS {table_name}, {table_name}_principals")
        finally:
            await connection.close()

    if not skip_postgres:
        backends.append(("postgresql", make_postgres, drop_postgres))

    async def make_sqlite() -> SessionStore:
        return SQLiteStore.from_url(
            f"sqlite:///{procs.workdir}/revoke.db", max_sessions=REVOKE_SESSIONS
        )

    backends.append(("sqlite", make_sqlite, lambda: None))

    for backend, make, cleanup in backends:
        store = await make()
        try:
            times = await time_revoke(store)
            table.add(
                name,
                f"{backend}: rotation, {REVOKE_SESSIONS} sessions (n={len(times)})",
                f"median {statistics.median(times) * 1000:.2f} ms, p95 {_p95(times) * 1000:.2f} ms",
            )
        except Exception as exc:
            table.add(name, f"{backend}: rotation", f"**failed: {exc!r}**"[:200])
        finally:
            await store.aclose()
            result = cleanup()
            if asyncio.iscoroutine(result):
                try:
                    await result
                except Exception as exc:
                    log(f"could not drop {table_name}: {exc!r}")
    procs.stop(server.proc)


# --- main ----------------------------------------------------------------------------------


def _loadavg() -> str:
    """The 1-minute load average (other work on the machine skews every number here)."""
    try:
        return Path("/proc/loadavg").read_text().split()[0]
    except OSError:
        return "?"


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", help=f"comma-separated subset of {', '.join(SCENARIOS)}")
    parser.add_argument("--seconds", type=float, default=5.0, help="each measured wrk run")
    parser.add_argument(
        "--rounds", type=int, default=3, help="many-sessions: alternated rounds (median)"
    )
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get("BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"),
    )
    parser.add_argument("--no-postgres", action="store_true", help="revoke-100: skip PostgreSQL")
    args = parser.parse_args()
    chosen = SCENARIOS if not args.only else tuple(args.only.split(","))
    unknown = set(chosen) - set(SCENARIOS)
    if unknown:
        parser.error(f"unknown scenario(s) {', '.join(sorted(unknown))}; pick from {SCENARIOS}")
    if args.seconds < 1 or args.rounds < 1:
        parser.error("--seconds and --rounds must be at least 1")
    for tool in ("redis-server", "redis-cli", "wrk"):
        if not shutil.which(tool):
            parser.error(f"{tool} is not on PATH")
    if CLIENT_PIN:
        os.sched_setaffinity(0, {1})  # this script and its clients stay off the app's core

    # SIGTERM unwinds like Ctrl-C, so the finally below stops every process we started.
    signal.signal(signal.SIGTERM, _interrupt)
    table = Table()
    workdir = Path(tempfile.mkdtemp(prefix="sessionauth-scenarios-"))
    procs = Processes(workdir)
    began = time.monotonic()
    load_before = _loadavg()
    try:
        for scenario in SCENARIOS:
            if scenario not in chosen:
                continue
            log(f"--- {scenario}")
            if scenario == "login-burst":
                asyncio.run(scenario_login_burst(procs, table, args.seconds))
            elif scenario == "many-sessions":
                asyncio.run(scenario_many_sessions(procs, table, args.seconds, args.rounds))
            else:
                asyncio.run(
                    scenario_revoke(procs, table, args.postgres_url, skip_postgres=args.no_postgres)
                )
    except BaseException:
        log(f"failed; logs kept in {workdir}")
        raise
    finally:
        procs.stop_all()
    shutil.rmtree(workdir, ignore_errors=True)
    pin = "app on core 0, clients + Redis on core 1" if SERVER_PIN else "no CPU pinning"
    print(
        f"sessionauth scenarios: library app (benchmarks/library), wrk -t1 -c{CONNECTIONS} "
        f"{args.seconds:g} s after {WARMUP_S:g} s warm-up, {pin}, {os.cpu_count()} CPUs, "
        f"{time.monotonic() - began:.0f} s total, load average {load_before} -> {_loadavg()}\n"
    )
    print(table.markdown())
    return 0


if __name__ == "__main__":
    sys.exit(main())
