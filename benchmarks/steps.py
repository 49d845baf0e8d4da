"""Microseconds of each step sessionauth adds to an authenticated request, timed in process.

The rows of the "per step" table in ``benchmarks/README.md``: each step of the library's hot
path (``SessionMiddleware`` on the Redis store, the bench app's session: user ``"1"`` with a
principal, no values) timed alone with :mod:`timeit`, best of 7, plus the whole middleware
around a do-nothing app on the memory store (the plumbing: frames, the ``send`` wrapper, the
headers). Python objects only: no network, no event-loop wake-up, no syscall.

    .venv/bin/python benchmarks/steps.py [--number N]
"""

from __future__ import annotations

import argparse
import asyncio
import timeit
from collections.abc import Callable
from typing import Any

import msgspec

from sessionauth import CookieConfig, Keyring, MemoryStore, SessionMiddleware, TimeoutPolicy
from sessionauth.backends.redis.codec import decode_principal, decode_record, encode_record, to_ms
from sessionauth.backends.redis.keys import SessionKeys
from sessionauth.middleware import _private_headers
from sessionauth.principal import Principal, new_epoch
from sessionauth.record import SessionRecord
from sessionauth.session import Session
from sessionauth.tokens import new_token, storage_id

NUMBER = 20000


def _best(step: Callable[[], Any], number: int) -> float:
    """Microseconds per call, best of 7 runs of ``number`` calls."""
    return min(timeit.repeat(step, number=number, repeat=7)) / number * 1e6


def main(number: int = NUMBER) -> None:
    """Print one line per step, each the best of 7 runs of ``number`` calls."""
    keyring = Keyring(["steps-" + "k" * 40])
    policy = TimeoutPolicy(idle_timeout=86400, absolute_timeout=86400)
    cookie = CookieConfig(secure=False, name="sessionId")
    token = new_token("1")
    sid = storage_id(token)
    value = keyring.sign(token)
    epoch = new_epoch()
    now = 1_800_000_000.0
    record = SessionRecord(
        data={}, created=now, seen=now, issued=now, expires=now + 86400, user_id="1", epoch=epoch
    )
    blob = encode_record(record, sid)
    principals = msgspec.msgpack.encode({"1": [epoch, "admin", False]})
    principal = Principal(epoch=epoch, role="admin")
    headers = [(b"host", b"bench"), (b"cookie", b"sessionId=" + value.encode())]
    scope = {"type": "http", "headers": headers}

    async def nothing(scope: Any, receive: Any, send: Any) -> None:
        del scope, receive
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    middleware = SessionMiddleware(
        nothing, store=MemoryStore(), keyring=keyring, cookie=cookie, policy=policy
    )
    keys = SessionKeys("sa:")
    session = Session(
        {}, token=token, handle=sid, user_id="1", created=now, seen=now, issued=now,
        epoch=epoch, principal=principal, policy=policy,
    )  # fmt: skip
    steps: dict[str, Callable[[], Any]] = {
        "find the cookie": lambda: middleware._cookie_value(scope),
        "check its MAC (HMAC-SHA256)": lambda: keyring.unsign(value),
        "storage id (SHA-256)": lambda: storage_id(token),
        "key and field of the read": lambda: keys.locate(sid),
        "decode the record": lambda: decode_record(blob, to_ms(now), sid),
        "its principal (cached)": lambda: decode_principal(principals, "1"),
        "the Session object": lambda: Session(
            record.data,
            token=token,
            handle=sid,
            user_id="1",
            created=now,
            seen=now,
            issued=now,
            meta=record.meta,
            epoch=epoch,
            principal=principal,
            policy=policy,
        ),
        "commit plan (nothing to write)": lambda: session.commit_plan(
            policy, now, stale_cookie=False
        ),
        "response headers (private)": lambda: _private_headers(
            [(b"content-length", b"12"), (b"content-type", b"application/json")], []
        ),
    }
    total = 0.0
    for name, step in steps.items():
        micros = _best(step, number)
        total += micros
        print(f"{name:34s} {micros:6.2f} us")
    print(f"{'sum of the steps':34s} {total:6.2f} us")
    asyncio.run(_plumbing(middleware, nothing, value, number))


async def _plumbing(middleware: Any, bare: Any, value: str, number: int) -> None:
    """The whole middleware around a do-nothing app (memory store) against the app alone."""
    sent: list[Any] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Any) -> None:
        sent.append(message)

    # A real login, so that the memory store holds the session the cookie names.
    token = new_token("1")
    store = middleware.store
    now = middleware.clock()
    epoch = new_epoch()
    await store.install_principal("1", Principal(epoch=epoch, role="admin"))
    record = SessionRecord(
        data={}, created=now, seen=now, issued=now, expires=now + 86400, user_id="1", epoch=epoch
    )
    await store.create(storage_id(token), record)
    headers = [
        (b"host", b"bench"),
        (b"cookie", f"sessionId={middleware.keyring.sign(token)}".encode()),
    ]

    async def run(app: Any, number: int) -> float:
        loop = asyncio.get_running_loop()
        started = loop.time()
        for _ in range(number):
            sent.clear()
            await app({"type": "http", "headers": headers}, receive, send)
        return (loop.time() - started) / number * 1e6

    bare_us = min([await run(bare, number) for _ in range(7)])
    wrapped_us = min([await run(middleware, number) for _ in range(7)])
    print(f"{'whole middleware, memory store':34s} {wrapped_us - bare_us:6.2f} us")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--number", type=int, default=NUMBER, help="calls per timed run")
    main(parser.parse_args().number)
