"""What each part of the library's request path costs in place: one part replaced at a time.

``steps.py`` times each step alone, in a tight loop; in a server the same steps cost two to three
times as much (other requests run between a request's steps, and its objects are cold again).
This drives the library's bench app in process as ``in_process.py`` does (32 requests in flight,
real Redis, CPU time, best of ``--repeat``), once as it is and once per variant, each in a fresh
interpreter, alternating ``--rounds`` times:

* ``library``: as it is;
* ``cookie cached``: ``Keyring.unsign`` answered from a dict (no MAC check; an experiment only);
* ``load inlined``: ``RedisStore.load`` replaced by the read, decode and checks written inline
  (the same ``HMGET``, record bytes and checks, without the key layout, codec or binding modules);
* ``bare wrapper``: ``SessionMiddleware`` replaced by a wrapper that calls the same
  ``Keyring.unsign``, ``storage_id``, ``store.load`` and ``Session`` and marks the response
  private, without the rest (full cookie parse, pre-session cookie, remember-me expiry, commit
  plan, header merge, outage log).

The difference of a variant from ``library`` is what the replaced part costs in place; the
variants answer every request as the library does (they are checked to return 200). Nothing
here is a product path. ``benchmarks/README.md`` ("the floor of a session layer") has a run.

    .venv/bin/python benchmarks/parts.py [--store redis://…] [--rounds 2] [--requests N]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
VARIANTS = ("library", "cookie cached", "load inlined", "bare wrapper")


class _CachedKeyring:
    """The middleware's keyring, with ``unsign`` answered from a dict after the first time."""

    def __init__(self, keyring: Any):
        self._keyring = keyring
        self._verified: dict[str, str | None] = {}

    def unsign(self, value: str) -> str | None:
        if value not in self._verified:
            self._verified[value] = self._keyring.unsign(value)
        return self._verified[value]

    def __getattr__(self, name: str) -> Any:
        return getattr(self._keyring, name)


def _load_inlined(store: Any) -> None:
    import msgspec

    from sessionauth.principal import Principal
    from sessionauth.record import FORMAT_VERSION, SessionRecord

    unpack = msgspec.msgpack.Decoder(list[Any]).decode
    principals_seen: dict[bytes, dict[str, Principal]] = {}
    reads = store._reads  # the store's own read pipeline

    async def load(sid: str) -> SessionRecord | None:
        group, _, digest = sid.partition(".")
        blob, principals = await reads.hmget(b"sa:u:" + group.encode(), digest[:11].encode(), b"p")
        if blob is None or principals is None:
            return None
        version, created, expires, seen, issued, user, _, _, bound, epoch, _ = unpack(blob)
        if (
            version != FORMAT_VERSION
            or bound != digest[11:]
            or created + expires <= time.time() * 1e3
        ):
            return None
        known = principals_seen.get(principals)
        if known is None:
            known = principals_seen[principals] = {
                user_id: Principal(epoch=e, role=r, disabled=d)
                for user_id, (e, r, d) in msgspec.msgpack.decode(principals).items()
            }
        principal = known.get(user)
        if principal is None or principal.epoch != epoch or principal.disabled:
            return None
        return SessionRecord(
            data={},
            created=created / 1e3,
            seen=(created + seen) / 1e3,
            issued=(created + issued) / 1e3,
            expires=(created + expires) / 1e3,
            user_id=user,
            epoch=epoch,
            principal=principal,
        )

    store.load = load


def _bare_wrapper(middleware: Any, store: Any) -> Any:
    from sessionauth.session import Session
    from sessionauth.tokens import storage_id

    inner, keyring, policy = middleware.app, middleware.keyring, middleware.policy
    prefix = b"sessionId="
    private = ((b"cache-control", b"no-store"), (b"vary", b"Cookie"))

    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["path"] == "/login":
            await middleware(scope, receive, send)  # the login as the library does it
            return
        session = None
        for name, raw in scope["headers"]:
            if name == b"cookie" and raw.startswith(prefix):
                token = keyring.unsign(raw[len(prefix) :].decode("latin-1"))
                record = None if token is None else await store.load(storage_id(token))
                if record is not None:
                    session = Session(
                        record.data, token=token, handle=storage_id(token),
                        user_id=record.user_id, created=record.created, seen=record.seen,
                        issued=record.issued, meta=record.meta, epoch=record.epoch,
                        principal=record.principal, policy=policy,
                    )  # fmt: skip
        scope["session"] = session if session is not None else Session(policy=policy)

        async def marked(message: Any) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), *private]
            await send(message)

        await inner(scope, receive, marked)

    return app


def _serve(variant: str, requests: int, repeat: int) -> None:
    """Measure one variant in this interpreter; print its µs per request."""
    import uvloop

    sys.path.insert(0, str(HERE))
    from in_process import Driver, _load_app

    app = _load_app(HERE / "library" / "app.py", "library_app")
    store = sys.modules["library_app"].store
    if variant == "cookie cached":
        app.keyring = _CachedKeyring(app.keyring)
    elif variant == "load inlined":
        _load_inlined(store)
    elif variant == "bare wrapper":
        app = _bare_wrapper(app, store)

    async def measure() -> float:
        driver = Driver(app)
        inbox, task = await driver.lifespan()
        cookie = await driver.login()
        await driver.run(cookie, 2000)  # warm-up; run() exits unless every answer is 200
        best = min([await driver.run(cookie, requests) for _ in range(repeat)])
        await inbox.put({"type": "lifespan.shutdown"})
        await task
        return best * 1e6

    print(f"{uvloop.run(measure()):.1f}")


def main() -> None:
    """Alternate the variants ``--rounds`` times; print each one's µs per request."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--store",
        default=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/15"),
        help="a Redis URL (the variants replace Redis store parts); default: REDIS_URL or "
        "%(default)s",
    )
    parser.add_argument("--rounds", type=int, default=2, help="alternations (%(default)s)")
    parser.add_argument("--requests", type=int, default=16000, help="per run (%(default)s)")
    parser.add_argument("--repeat", type=int, default=5, help="runs; the best counts (%(default)s)")
    parser.add_argument("--serve", help=argparse.SUPPRESS)
    args = parser.parse_args()
    os.environ["BENCH_STORE_URL"] = args.store
    if args.serve:
        _serve(args.serve, args.requests, args.repeat)
        return
    results: dict[str, list[str]] = {variant: [] for variant in VARIANTS}
    for _ in range(args.rounds):
        for variant in VARIANTS:
            run = subprocess.run(  # noqa: S603 - this script, in our own interpreter
                [sys.executable, __file__, "--serve", variant, "--store", args.store,
                 "--requests", str(args.requests), "--repeat", str(args.repeat)],
                capture_output=True, text=True, check=False,
            )  # fmt: skip
            if run.returncode != 0:
                raise SystemExit(f"{variant} failed:\n{run.stderr[-2000:]}")
            results[variant].append(run.stdout.strip())
    for variant, micros in results.items():
        print(f"{variant:14s} {' / '.join(micros)} us/request")


if __name__ == "__main__":
    main()
