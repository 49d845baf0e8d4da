"""Microseconds per authenticated ``GET /dashboard`` of each bench app, driven in process.

wrk on this shared machine moves by 20 % between runs; this measures the apps' own CPU per
request without the network, uvicorn or the load generator: ``CONCURRENCY`` requests in flight
(like wrk's 32 connections), each a fresh ASGI call into the app with the contract's cookie,
for a fixed number of requests; the process's CPU time (not wall time: the machine is
shared), best of ``--repeat`` runs. The store is the real one
(``--store redis://…``, ``sqlite:///…``, ``postgresql://…``); bare Starlette (the baseline
app of ``../shared/bench``) runs the same loop, so the ratio of the two is the in-process
counterpart of compare.sh's (uvicorn's own share, the same for every system, is left out, so
this ratio is the lower, harsher one).

    .venv/bin/python benchmarks/in_process.py [--store URL] [--requests N] [--profile OUT]

``--profile OUT`` writes a cProfile of one run of each app (read it with ``pstats``).

``--instructions`` counts instead of timing: instructions per request of each system under
``valgrind --tool=callgrind``, by the method of ``hot_path.py`` (two runs that differ only in
the number of requests), over the real store. The count is repeatable to about 0.2 % on this
noisy machine (how many reads share one Redis round trip varies a little), so the difference
between two systems, the library's structure against ``session-floor`` for one, is exact enough
to attribute a change of a few hundred instructions.

The system ``floor`` (``floor/app.py``) is the design's limit: bare Starlette behind one
``HMGET`` through the Redis store's own read pipeline (the read every authenticated request
makes), no cookie, no MAC, no decoding, no session (``--store`` must be a Redis URL for it).
The system ``session-floor`` (``session-floor/app.py``) is the next limit up: the library's
per-request work inlined, without its structure (a Redis URL too).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import uvloop

HERE = Path(__file__).resolve().parent
# The bench harness lives next to the checkout (../shared); worktrees are one level deeper.
BASELINE = Path(os.environ.get("BENCH_BASELINE_APP", "/work/shared/bench/peers/baseline/app.py"))
CONCURRENCY = 32
# --instructions: requests of the two callgrind runs, multiples of CONCURRENCY.
FEW, MANY = 1600, 4800


def _load_app(path: Path, name: str) -> Any:
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise SystemExit(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module.app


def _server_app(store_url: str) -> Any:
    """The reference server as benchmarks/server/start.sh configures it (users in SQLite)."""
    work = tempfile.mkdtemp(prefix="sessionauth-inproc.")
    os.environ.update(
        SESSIONAUTH_DATA_DIR=work,
        SESSIONAUTH_DATABASE_URL=f"sqlite:///{work}/users.db",
        SESSIONAUTH_STORE_URL=store_url,
        SESSIONAUTH_COOKIE_NAME="sessionId",
        SESSIONAUTH_ABSOLUTE_TIMEOUT="86400",
        SESSIONAUTH_SECRET="in-process-" + "s" * 48,
    )
    email = os.environ.get("BENCH_EMAIL", "bench@example.com")
    password = os.environ.get("BENCH_PASSWORD", "correct-horse-battery-staple-bench-password-42")
    subprocess.run(  # noqa: S603 - our own CLI, as benchmarks/server/start.sh runs it
        [str(Path(sys.executable).with_name("sessionauth")), "users", "create", email,
         "--role", "admin", "--password-stdin"],
        input=password.encode(), check=True, capture_output=True,
    )  # fmt: skip
    from sessionauth.auth.passwords import PasswordHasher
    from sessionauth.server.app import create_app

    return create_app(hasher=PasswordHasher.for_tests())


class Driver:
    """Sends ASGI requests into one app."""

    def __init__(self, app: Any):
        self.app = app

    async def request(
        self, method: str, path: str, headers: list[tuple[bytes, bytes]], body: bytes = b""
    ) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        """One request; returns status, headers and body."""
        scope = {
            "type": "http", "asgi": {"version": "3.0", "spec_version": "2.4"},
            "http_version": "1.1", "method": method, "scheme": "http", "path": path,
            "raw_path": path.encode(), "query_string": b"", "root_path": "",
            "headers": [(b"host", b"127.0.0.1:8000"), *headers],
            "client": ("127.0.0.1", 50000), "server": ("127.0.0.1", 8000), "state": {},
        }  # fmt: skip
        sent = False
        out: dict[str, Any] = {"body": b""}

        async def receive() -> dict[str, Any]:
            nonlocal sent
            if sent:
                await asyncio.sleep(3600)
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                out["status"], out["headers"] = message["status"], message.get("headers", [])
            elif message["type"] == "http.response.body":
                out["body"] += message.get("body", b"")

        await self.app(scope, receive, send)
        return out["status"], out["headers"], out["body"]

    async def lifespan(self) -> tuple[asyncio.Queue[Any], asyncio.Task[None]]:
        """Start the app's lifespan; returns the queue and task to shut it down."""
        inbox: asyncio.Queue[Any] = asyncio.Queue()
        outbox: asyncio.Queue[Any] = asyncio.Queue()
        await inbox.put({"type": "lifespan.startup"})
        scope = {"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}
        task = asyncio.create_task(self.app(scope, inbox.get, outbox.put))
        started = await outbox.get()
        if started["type"] != "lifespan.startup.complete":
            raise SystemExit(f"lifespan failed: {started}")
        return inbox, task

    async def login(self) -> bytes:
        """POST /login with the contract's credentials; returns the ``Cookie`` header value."""
        body = json.dumps(
            {
                "email": os.environ.get("BENCH_EMAIL", "bench@example.com"),
                "password": os.environ.get(
                    "BENCH_PASSWORD", "correct-horse-battery-staple-bench-password-42"
                ),
            }
        ).encode()
        headers = [(b"content-type", b"application/json"), (b"origin", b"http://127.0.0.1:8000")]
        status, answer, text = await self.request("POST", "/login", headers, body)
        if status != 200:
            raise SystemExit(f"login answered {status}: {text!r}")
        for name, value in answer:
            if name == b"set-cookie" and value.startswith(b"sessionId="):
                return value.split(b";", 1)[0]
        return b""

    async def run(self, cookie: bytes, requests: int) -> float:
        """Seconds for ``requests`` GET /dashboard, CONCURRENCY at a time."""
        headers = [(b"cookie", cookie)] if cookie else []
        per_worker = requests // CONCURRENCY

        async def worker() -> None:
            for _ in range(per_worker):
                status, _, _ = await self.request("GET", "/dashboard", headers)
                if status != 200:
                    raise SystemExit(f"GET /dashboard answered {status}")

        started = time.process_time()
        await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
        return (time.process_time() - started) / (per_worker * CONCURRENCY)


async def _serve(app: Any, requests: int) -> None:
    """Sign in, warm up, and send ``requests`` authenticated GETs: what callgrind counts."""
    driver = Driver(app)
    inbox, task = await driver.lifespan()
    cookie = await driver.login()
    await driver.run(cookie, 640)
    await driver.run(cookie, requests)
    await inbox.put({"type": "lifespan.shutdown"})
    await task


def _instructions(name: str, store: str, runs: tuple[int, int]) -> int:
    """Instructions per request of system ``name`` on ``store``, counted by callgrind."""
    from hot_path import callgrind_total

    options = ("--store", store, "--systems", name)
    with ThreadPoolExecutor(max_workers=2) as pool:
        few, many = pool.map(lambda n: callgrind_total(__file__, n, options), runs)
    return round((many - few) / (runs[1] - runs[0]))


def _app(name: str, store: str) -> Any:
    if name == "baseline":
        return _load_app(BASELINE, "baseline_app")
    if name == "library":
        return _load_app(HERE / "library" / "app.py", "library_app")
    if name in ("floor", "session-floor"):
        return _load_app(HERE / name / "app.py", name.replace("-", "_") + "_bench_app")
    return _server_app(store)


async def _measure(name: str, app: Any, args: argparse.Namespace) -> float:
    driver = Driver(app)
    inbox, task = await driver.lifespan()
    cookie = await driver.login()
    await driver.run(cookie, 2000)  # warm-up
    best = min([await driver.run(cookie, args.requests) for _ in range(args.repeat)])
    if args.profile:
        profiler = cProfile.Profile()
        profiler.enable()
        await driver.run(cookie, args.requests)
        profiler.disable()
        profiler.dump_stats(f"{args.profile}.{name}")
    await inbox.put({"type": "lifespan.shutdown"})
    await task
    return best * 1e6


def main() -> None:
    """Measure the baseline and the chosen systems; print µs/request and the ratios."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--store",
        default=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/15"),
        help="the store URL (redis://, sqlite:///, postgresql://; the floors need Redis); "
        "default: REDIS_URL or %(default)s",
    )
    parser.add_argument("--requests", type=int, default=16000, help="per run (%(default)s)")
    parser.add_argument("--repeat", type=int, default=5, help="runs; the best counts (%(default)s)")
    parser.add_argument(
        "--systems",
        default="baseline,floor,session-floor,library,server",
        help="comma-separated, of %(default)s (the default: all)",
    )
    parser.add_argument("--profile", metavar="OUT", help="write a cProfile per system to OUT.NAME")
    parser.add_argument(
        "--instructions",
        action="store_true",
        help="count instructions per request under callgrind instead of timing",
    )
    parser.add_argument(
        "--runs",
        default=f"{FEW},{MANY}",
        help="--instructions: requests of its two runs, multiples of 32 (%(default)s)",
    )
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)  # under callgrind
    args = parser.parse_args()
    os.environ["BENCH_STORE_URL"] = args.store
    names = args.systems.split(",")
    if args.serve is not None:
        uvloop.run(_serve(_app(names[0], args.store), args.serve))
        return
    if args.instructions:
        few, many = (int(count) for count in args.runs.split(","))
        counts = {name: _instructions(name, args.store, (few, many)) for name in names}
        for name, count in counts.items():
            ratio = f"  {count / counts['baseline']:.2f}x baseline" if "baseline" in counts else ""
            print(f"{name:13s} {count:8,d} instructions/request{ratio}")
        return
    results: dict[str, float] = {}
    for name in names:
        results[name] = uvloop.run(_measure(name, _app(name, args.store), args))
    base = results.get("baseline")
    for name, micros in results.items():
        ratio = f"  {base / micros:.2f}x baseline" if base else ""
        print(f"{name:13s} {micros:7.1f} us/request{ratio}")


if __name__ == "__main__":
    main()
