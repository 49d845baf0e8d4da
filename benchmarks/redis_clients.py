"""CPU cost of one Redis ``GET`` per request, per asyncio client, under uvloop.

The session middleware's hot path is exactly one ``GET key`` (~100 byte value)
per HTTP request, with ~32 requests in flight in one process on one core. This
script measures, for each candidate client, the CPU microseconds the *client
process* spends per GET (``time.process_time``, which counts every thread of
the process, so a client that offloads work to native threads pays for it too)
and the wall-clock throughput.

Usage::

    redis-server --port P --bind 127.0.0.1 --save '' --appendonly no &
    taskset -c 0 python benchmarks/redis_clients.py --port P --n 50000

Each candidate runs in a fresh subprocess (inheriting the CPU affinity), so a
client's import side effects or background threads cannot bill the next one.

``--outage NAME`` instead starts a private redis-server, runs GETs from 8 tasks
with ``asyncio.timeout(2)`` around each call, kills (``--signal KILL``) or
freezes (``--signal STOP``) the server after 1 s, brings it back 4 s later and
reports how each call failed and whether the client recovered.

Candidates (``--only`` takes a comma separated subset):

- ``redispy-pool``: ``redis.asyncio.Redis`` (hiredis parser), default pool.
- ``redispy-autopipe``: redis-py, one connection, GETs issued while the previous
  batch is in flight are sent together in one ``pipeline(transaction=False)``.
- ``coredis``: ``coredis.Redis`` (multiplexes commands on pooled connections).
- ``coredis-1conn``: same with ``max_connections=1`` (all commands on one socket).
- ``glide``: ``glide.GlideClient`` (valkey-glide, Rust core, one connection).
- ``ref-proto``: floor; ``asyncio.Protocol`` + ``hiredis.Reader`` on one
  connection, one ``transport.write`` per GET, replies resolved FIFO.
- ``ref-proto-coalesced``: same, writes of one loop iteration coalesced.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import gc
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from importlib import metadata
from typing import Any

import uvloop

KEY = b"sessionauth:bench:sid"
VALUE = bytes(range(100))  # stands in for a ~100 byte msgpack session record
CONCURRENCY = 32
TIMEOUT_S = 1.0  # socket / request timeout given to every client
# redis-py retries: None keeps the library default (8.x: 10 retries, exponential
# backoff 10 ms..1 s, i.e. seconds of retrying before an error surfaces);
# an int N means ``Retry(NoBackoff(), N)``. Set from ``--redispy-retries``.
REDISPY_RETRIES: int | None = None

Get = Callable[[bytes], Awaitable[Any]]


def redispy_kwargs(timeouts: bool) -> dict[str, Any]:
    kw: dict[str, Any] = {}
    if timeouts:
        kw = {"socket_timeout": TIMEOUT_S, "socket_connect_timeout": TIMEOUT_S}
    if REDISPY_RETRIES is not None:
        from redis.asyncio.retry import Retry
        from redis.backoff import NoBackoff

        kw["retry"] = Retry(NoBackoff(), REDISPY_RETRIES)
    return kw


def version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "-"


# ---------------------------------------------------------------- candidates
# Each factory is an async context manager yielding (get, description).


@contextlib.asynccontextmanager
async def redispy_pool(port: int, timeouts: bool):
    """Candidate a: redis-py asyncio, default ConnectionPool (grows to ~32 connections)."""
    import redis.asyncio as aredis

    kw = redispy_kwargs(timeouts)
    r = aredis.Redis(host="127.0.0.1", port=port, max_connections=256, **kw)
    try:
        yield r.get, f"redis {version('redis')}"
        pool = r.connection_pool
        conns = list(getattr(pool, "_available_connections", []))
        parser = type(conns[0]._parser).__name__ if conns else "?"
        print(f"    [redis-py pool: {len(conns)} connections, parser {parser}]")
    finally:
        await r.aclose()


class AutoPipeline:
    """Candidate b: batch GETs issued while a batch is in flight into one pipeline call.

    One flusher task owns the single connection. ``get`` queues a future and
    wakes the flusher; the flusher sends everything queued so far as one
    ``pipeline(transaction=False)`` and resolves the futures in order.
    """

    def __init__(self, client: Any) -> None:
        self._client = client
        self._queue: list[tuple[bytes, asyncio.Future[Any]]] = []
        self._wake = asyncio.Event()
        self._task = asyncio.get_running_loop().create_task(self._run())
        self.batches = self.commands = 0

    def get(self, key: bytes) -> asyncio.Future[Any]:
        """Queue ``GET key``; the future resolves when its batch returns."""
        fut = asyncio.get_running_loop().create_future()
        self._queue.append((key, fut))
        self._wake.set()
        return fut

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            batch, self._queue = self._queue, []
            batch = [(k, f) for k, f in batch if not f.done()]  # drop cancelled callers
            if not batch:
                continue
            self.batches += 1
            self.commands += len(batch)
            pipe = self._client.pipeline(transaction=False)
            for key, _ in batch:
                pipe.get(key)
            try:
                results = await pipe.execute(raise_on_error=False)
            except Exception as exc:  # connection-level failure fails the whole batch
                for _, fut in batch:
                    if not fut.done():
                        fut.set_exception(exc)
                continue
            for (_, fut), res in zip(batch, results, strict=True):
                if fut.done():
                    continue
                if isinstance(res, Exception):
                    fut.set_exception(res)
                else:
                    fut.set_result(res)

    async def aclose(self) -> None:
        """Stop the flusher task (pending callers are left to their timeouts)."""
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task


@contextlib.asynccontextmanager
async def redispy_autopipe(port: int, timeouts: bool):
    import redis.asyncio as aredis

    kw = redispy_kwargs(timeouts)
    r = aredis.Redis(host="127.0.0.1", port=port, max_connections=1, **kw)
    ap = AutoPipeline(r)
    try:
        yield ap.get, f"redis {version('redis')}"
        print(f"    [autopipe: {ap.commands / max(ap.batches, 1):.1f} GETs per pipeline]")
    finally:
        await ap.aclose()
        await r.aclose()


def coredis_client(max_connections: int | None):
    """Candidate c: coredis (anyio based; commands are multiplexed on pooled connections)."""

    @contextlib.asynccontextmanager
    async def factory(port: int, timeouts: bool):
        import coredis

        kw: dict[str, Any] = {"max_connections": max_connections}
        if timeouts:
            kw |= {"stream_timeout": TIMEOUT_S, "connect_timeout": TIMEOUT_S}
        async with coredis.Redis(host="127.0.0.1", port=port, **kw) as r:
            yield r.get, f"coredis {version('coredis')}"
            pool = r.connection_pool
            print(f"    [coredis: {len(pool._online_connections)} connections]")

    return factory


@contextlib.asynccontextmanager
async def glide_client(port: int, timeouts: bool):
    """Candidate d: valkey-glide (Rust core on its own threads, one multiplexed connection)."""
    from glide import (
        AdvancedGlideClientConfiguration,
        GlideClient,
        GlideClientConfiguration,
        NodeAddress,
    )

    kw: dict[str, Any] = {}
    if timeouts:
        ms = int(TIMEOUT_S * 1000)
        kw = {
            "request_timeout": ms,
            "advanced_config": AdvancedGlideClientConfiguration(connection_timeout=ms),
        }
    cfg = GlideClientConfiguration([NodeAddress("127.0.0.1", port)], **kw)
    client = await GlideClient.create(cfg)
    try:
        yield client.get, f"valkey-glide {version('valkey-glide')}"
    finally:
        await client.close()


class RespProtocol(asyncio.Protocol):
    """Candidate e: reference floor: pipelined RESP GETs on one socket, hiredis parser.

    Replies arrive in request order, so a FIFO of futures is all the
    bookkeeping there is. With ``coalesce`` the writes issued in one loop
    iteration go out in a single ``transport.write``.
    """

    def __init__(self, coalesce: bool) -> None:
        import hiredis

        self._reader = hiredis.Reader()
        self._waiters: collections.deque[asyncio.Future[Any]] = collections.deque()
        self._coalesce = coalesce
        self._out: list[bytes] = []
        self._loop = asyncio.get_running_loop()
        self.transport: asyncio.Transport | None = None
        self._lost: Exception | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Keep the transport and disable Nagle."""
        self.transport = transport  # type: ignore[assignment]  # uvloop's is no subclass
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def data_received(self, data: bytes) -> None:
        """Parse every complete reply and resolve the oldest waiter with it."""
        self._reader.feed(data)
        while (reply := self._reader.gets()) is not False:
            fut = self._waiters.popleft()
            if fut.done():  # caller gave up (timeout); reply still consumed in order
                continue
            if isinstance(reply, Exception):
                fut.set_exception(reply)
            else:
                fut.set_result(reply)

    def connection_lost(self, exc: Exception | None) -> None:
        """Fail every waiter; this reference client does not reconnect."""
        self._lost = ConnectionError(f"redis connection lost: {exc!r}")
        while self._waiters:
            fut = self._waiters.popleft()
            if not fut.done():
                fut.set_exception(self._lost)

    def _flush(self) -> None:
        out, self._out = self._out, []
        if self.transport is not None:
            self.transport.write(b"".join(out))

    def get(self, key: bytes) -> asyncio.Future[Any]:
        """Send ``GET key``; the future resolves with its reply."""
        fut = self._loop.create_future()
        if self._lost is not None or self.transport is None:
            fut.set_exception(self._lost or ConnectionError("not connected"))
            return fut
        cmd = b"*2\r\n$3\r\nGET\r\n$%d\r\n%s\r\n" % (len(key), key)
        self._waiters.append(fut)
        if self._coalesce:
            if not self._out:
                self._loop.call_soon(self._flush)
            self._out.append(cmd)
        else:
            self.transport.write(cmd)
        return fut


def ref_proto(coalesce: bool):
    @contextlib.asynccontextmanager
    async def factory(port: int, timeouts: bool):
        loop = asyncio.get_running_loop()
        transport, proto = await loop.create_connection(
            lambda: RespProtocol(coalesce), "127.0.0.1", port
        )
        try:
            yield proto.get, f"hiredis {version('hiredis')}"
        finally:
            transport.close()

    return factory


DISTRIBUTIONS = {"redispy": "redis", "coredis": "coredis", "glide": "valkey-glide"}
CANDIDATES: dict[str, Callable[[int, bool], Any]] = {
    "redispy-pool": redispy_pool,
    "redispy-autopipe": redispy_autopipe,
    "coredis": coredis_client(max_connections=None),
    "coredis-1conn": coredis_client(max_connections=1),
    "glide": glide_client,
    "ref-proto": ref_proto(coalesce=False),
    "ref-proto-coalesced": ref_proto(coalesce=True),
}


# ---------------------------------------------------------------- benchmark


async def drive(get: Get, n: int, concurrency: int) -> None:
    remaining = n

    async def worker() -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            if await get(KEY) != VALUE:
                raise AssertionError("wrong value from GET")

    await asyncio.gather(*(worker() for _ in range(concurrency)))


async def bench_one(name: str, port: int, n: int, timeouts: bool) -> dict[str, Any]:
    async with CANDIDATES[name](port, timeouts) as (get, ver):
        await drive(get, max(2000, n // 10), CONCURRENCY)  # warm up, open connections
        gc.collect()
        cpu0, wall0 = time.process_time(), time.perf_counter()
        await drive(get, n, CONCURRENCY)
        cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
        threads = _threads()
    return {
        "client": name,
        "version": ver,
        "cpu_us": cpu / n * 1e6,
        "ops_s": n / wall,
        "threads": threads,
    }


def _threads() -> int:
    try:
        return len(os.listdir("/proc/self/task"))
    except OSError:
        return -1


def seed(port: int) -> None:
    import redis

    redis.Redis(host="127.0.0.1", port=port).set(KEY, VALUE)


def run_all(args: argparse.Namespace) -> None:
    seed(args.port)
    names = args.only.split(",") if args.only else list(CANDIDATES)
    try:
        affinity = sorted(os.sched_getaffinity(0))
    except AttributeError:
        affinity = []
    print(
        f"python {sys.version.split()[0]}, uvloop {version('uvloop')}, n={args.n}, "
        f"concurrency={CONCURRENCY}, timeouts={'on' if args.timeouts else 'off'}, "
        f"cpus={affinity}"
    )
    print(f"{'client':22} {'version':22} {'CPU us/GET':>10} {'ops/s':>9} {'threads':>7}")
    for name in names:
        dist = DISTRIBUTIONS.get(name.split("-")[0], "")
        if dist and version(dist) == "-":
            print(f"{name:22} skipped: {dist} is not installed")
            continue
        cmd = [sys.executable, __file__, "--port", str(args.port), "--n", str(args.n)]
        cmd += ["--child", name] + ([] if args.timeouts else ["--no-timeouts"])
        if args.redispy_retries is not None:
            cmd += ["--redispy-retries", str(args.redispy_retries)]
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)  # noqa: S603
        for line in proc.stdout.splitlines():
            if line.startswith("RESULT "):
                r = json.loads(line[7:])
                print(
                    f"{r['client']:22} {r['version']:22} {r['cpu_us']:10.1f} "
                    f"{r['ops_s']:9.0f} {r['threads']:7d}"
                )
            else:
                print(line)
        if proc.returncode:
            print(f"{name:22} FAILED rc={proc.returncode}\n{proc.stderr[-2000:]}")


# ---------------------------------------------------------------- outage test


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(port: int) -> subprocess.Popen[bytes]:
    argv = ["redis-server", "--port", str(port), "--bind", "127.0.0.1"]
    argv += ["--save", "", "--appendonly", "no", "--daemonize", "no"]
    proc = subprocess.Popen(  # noqa: S603 - fixed argv, private throwaway server
        argv,
        stdout=subprocess.DEVNULL,
    )
    for _ in range(100):
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.1):
            return proc
        time.sleep(0.05)
    raise RuntimeError("redis-server did not start")


async def outage(name: str, sig: str, timeouts: bool) -> None:
    port = free_port()
    server = start_server(port)
    seed(port)
    t0 = time.perf_counter()
    events: list[tuple[float, float, str]] = []  # (start, duration, outcome)
    stop = False

    async with CANDIDATES[name](port, timeouts) as (get, ver):

        async def worker() -> None:
            while not stop:
                start = time.perf_counter()
                try:
                    async with asyncio.timeout(2) as cm:
                        await get(KEY)
                    outcome = "ok"
                except Exception as exc:
                    if isinstance(exc, TimeoutError) and cm.expired():
                        outcome = "HUNG (asyncio.timeout 2s fired)"
                    else:
                        outcome = f"{type(exc).__module__}.{type(exc).__qualname__}: {exc}"[:150]
                end = time.perf_counter()
                events.append((start - t0, end - start, outcome))
                if outcome != "ok":
                    await asyncio.sleep(0.05)

        tasks = [asyncio.create_task(worker()) for _ in range(8)]
        await asyncio.sleep(1)
        t_down = time.perf_counter() - t0
        server.send_signal(getattr(signal, f"SIG{sig}"))
        await asyncio.sleep(4)
        t_up = time.perf_counter() - t0
        if sig == "STOP":
            server.send_signal(signal.SIGCONT)
        else:
            server.wait()
            server = start_server(port)
            seed(port)
        await asyncio.sleep(4)
        stop = True
        await asyncio.gather(*tasks, return_exceptions=True)
    server.kill()
    server.wait()

    print(
        f"== {name} ({ver}) SIG{sig}, client timeouts {'on' if timeouts else 'off'}:"
        f" down at {t_down:.2f}s, back at {t_up:.2f}s"
    )
    failures = [e for e in events if e[2] != "ok"]
    by_kind: dict[str, list[float]] = collections.defaultdict(list)
    for _, dur, outcome in failures:
        by_kind[outcome].append(dur)
    for outcome, durs in sorted(by_kind.items(), key=lambda kv: -len(kv[1])):
        print(f"   {len(durs):5d} x  max {max(durs):5.2f}s  {outcome}")
    first_fail = min((s + d for s, d, o in events if o != "ok"), default=None)
    if first_fail is not None:
        print(f"   first failure surfaced {first_fail - t_down:.2f}s after the outage began")
    ok_after = [s + d for s, d, o in events if o == "ok" and s >= t_up]
    recovered = f"yes, {min(ok_after) - t_up:.2f}s after restore" if ok_after else "NO"
    print(f"   recovered: {recovered} ({len(ok_after)} ok calls after restore)")


# ---------------------------------------------------------------- main


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--port", type=int, default=0, help="port of an existing redis-server")
    p.add_argument("--n", type=int, default=50_000, help="GETs per client (after warm-up)")
    p.add_argument("--only", default="", help="comma separated candidate names")
    p.add_argument(
        "--no-timeouts",
        dest="timeouts",
        action="store_false",
        help="do not configure client socket/request timeouts",
    )
    p.add_argument("--outage", default="", help="run the server-outage test for these clients")
    p.add_argument("--signal", default="KILL", choices=["KILL", "STOP", "TERM"])
    p.add_argument(
        "--redispy-retries",
        type=int,
        default=None,
        help="redis-py: Retry(NoBackoff(), N) instead of the library default",
    )
    p.add_argument("--child", default="", help=argparse.SUPPRESS)
    args = p.parse_args()
    global REDISPY_RETRIES  # a benchmark knob, set once
    REDISPY_RETRIES = args.redispy_retries

    if args.outage:
        for name in args.outage.split(","):
            uvloop.run(outage(name, args.signal, args.timeouts))
    elif args.child:
        result = uvloop.run(bench_one(args.child, args.port, args.n, args.timeouts))
        print("RESULT " + json.dumps(result), flush=True)
    elif args.port:
        run_all(args)
    else:
        p.error("--port (of a running redis-server) or --outage is required")


if __name__ == "__main__":
    main()
