"""Instructions per authenticated request on the library's hot path, counted by callgrind.

Requests/s on this shared 2-core machine move by 20 % between runs; instruction counts do not.
This drives the library benchmark's app shape (Starlette behind ``SessionMiddleware``, one
signed-in session, ``GET /dashboard``) through ASGI calls in process, on the memory store: the
network and the store's backend are left out on purpose, since how many reads share one Redis
round trip depends on timing, which callgrind would count as a change of code. What is counted
is sessionauth's own request path (cookie check, storage id, load, decode, the Session, the
response headers) plus Starlette's routing and response.

``python benchmarks/hot_path.py`` prints the measurement; ``--check`` compares it with the figure
committed in ``benchmarks/hot_path.json`` and exits 1 if it grew by more than 10 %; ``--record
REASON`` writes a new figure (do it deliberately, with the reason, when a change needs more).
``tests/integration/test_hot_path_budget.py`` runs ``--check`` in the suite.

How: two runs under ``valgrind --tool=callgrind`` that differ only in the number of requests;
the difference of their totals divided by the difference of the counts cancels interpreter
start-up and imports. ``PYTHONHASHSEED=0`` keeps dict and set layouts fixed between runs.

The compiled build (``make compiled``, run with ``PYTHONPATH=build/compiled``) has a figure of
its own, under ``compiled`` in the same file: ``--check`` and ``--record`` use the one of the
build they run on (``sessionauth.compiled``), so neither build's budget hides the other's.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

BUDGET_FILE = Path(__file__).with_name("hot_path.json")
TOLERANCE = 1.10
FEW, MANY = 100, 700


def asgi_scope(method: str, path: str, headers: list[tuple[bytes, bytes]]) -> dict[str, Any]:
    """The ASGI scope of one HTTP/1.1 request from 127.0.0.1 (no query string)."""
    return {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
        "method": method, "scheme": "http", "path": path, "raw_path": path.encode(),
        "query_string": b"", "root_path": "", "headers": headers,
        "client": ("127.0.0.1", 50000), "server": ("127.0.0.1", 8000),
    }  # fmt: skip


async def _serve(requests: int) -> None:
    """Sign in once, then send ``requests`` authenticated GETs straight into the ASGI app."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    from sessionauth import CookieConfig, Keyring, MemoryStore, SessionMiddleware, TimeoutPolicy

    async def login(request: Request) -> JSONResponse:
        request.session.set_user("1")
        return JSONResponse({"success": True})

    async def dashboard(request: Request) -> JSONResponse:
        user_id = request.session.user_id
        if user_id is None:
            return JSONResponse({"error": "Authentication required"}, status_code=401)
        return JSONResponse({"userId": int(user_id)})

    app = SessionMiddleware(
        Starlette(
            routes=[
                Route("/login", login, methods=["POST"]),
                Route("/dashboard", dashboard, methods=["GET"]),
            ]
        ),
        store=MemoryStore(),
        keyring=Keyring(["hot-path-" + "k" * 40]),
        cookie=CookieConfig(secure=False, name="sessionId"),
        policy=TimeoutPolicy(idle_timeout=86400, absolute_timeout=86400),
    )
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(asgi_scope("POST", "/login", [(b"host", b"bench")]), receive, send)
    set_cookie = next(v for k, v in sent[0]["headers"] if k == b"set-cookie")
    cookie = set_cookie.split(b";", 1)[0]
    headers = [(b"host", b"bench"), (b"cookie", cookie), (b"accept", b"*/*")]
    request = asgi_scope("GET", "/dashboard", headers)
    for _ in range(requests):
        sent.clear()
        await app(dict(request), receive, send)
        if sent[0]["status"] != 200:
            raise SystemExit(f"GET /dashboard answered {sent[0]['status']}, not 200")


def callgrind_total(script: str, requests: int, options: tuple[str, ...] = ()) -> int:
    """Instructions of one run of ``script [options] --serve requests``, per callgrind."""
    valgrind = shutil.which("valgrind")
    if valgrind is None:
        raise SystemExit("valgrind is not installed (apt-get install valgrind)")
    with tempfile.TemporaryDirectory() as directory:
        out = Path(directory) / "callgrind.out"
        env = {**os.environ, "PYTHONHASHSEED": "0", "PYTHONDONTWRITEBYTECODE": "1"}
        run = subprocess.run(  # noqa: S603 - valgrind on our own interpreter and script
            [
                valgrind, "--tool=callgrind", f"--callgrind-out-file={out}",
                sys.executable, script, *options, "--serve", str(requests),
            ],
            env=env, capture_output=True, text=True, check=False,
        )  # fmt: skip
        match = re.search(r"Collected : (\d+)", run.stderr)
        if run.returncode != 0 or match is None:
            raise SystemExit(f"callgrind failed ({run.returncode}):\n{run.stderr[-2000:]}")
        return int(match.group(1))


def measure(script: str = __file__) -> int:
    """Instructions per authenticated request of ``script`` (see the module docstring)."""
    # The two runs are independent: on two cores they take the time of the longer one, and
    # callgrind counts the same instructions whatever else the machine does.
    with ThreadPoolExecutor(max_workers=2) as pool:
        few, many = pool.map(lambda requests: callgrind_total(script, requests), (FEW, MANY))
    return round((many - few) / (MANY - FEW))


def run_cli(
    doc: str,
    serve: Callable[[int], Awaitable[None]],
    *,
    script: str,
    budget_file: Path,
    what: str,
) -> None:
    """Serve (under callgrind), measure, check against ``budget_file``, or record a figure."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--check", action="store_true", help="fail if over the budget")
    parser.add_argument("--record", metavar="REASON", help="commit a new figure, with why")
    args = parser.parse_args()
    if args.serve is not None:
        asyncio.run(serve(args.serve))
        return
    import sessionauth

    build = "compiled" if sessionauth.compiled else "pure"
    per_request = measure(script)
    print(
        f"{per_request} instructions per {what} (Python {platform.python_version()}, {build} build)"
    )
    figures = json.loads(budget_file.read_text()) if budget_file.exists() else {}
    # The pure build's figure is the file's top level; the compiled build's, its "compiled".
    figure = figures.setdefault("compiled", {}) if sessionauth.compiled else figures
    if args.record:
        figure.update(
            instructions_per_request=per_request,
            python=platform.python_version(),
            reason=args.record,
        )
        budget_file.write_text(json.dumps(figures, indent=2) + "\n")
        return
    if args.check:
        if "instructions_per_request" not in figure:
            raise SystemExit(f"no figure for the {build} build: record one with --record REASON")
        budget = figure["instructions_per_request"]
        limit = round(budget * TOLERANCE)
        print(f"budget {budget}, limit {limit} (+{round((TOLERANCE - 1) * 100)} %)")
        if per_request > limit:
            raise SystemExit(
                f"the hot path grew to {per_request} instructions per request, over {limit}:"
                " profile it, or record a new figure with --record REASON if the cost is wanted"
            )


if __name__ == "__main__":
    run_cli(
        __doc__,
        _serve,
        script=__file__,
        budget_file=BUDGET_FILE,
        what="authenticated request",
    )
