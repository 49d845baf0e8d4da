"""What one login (``SessionStore.create``) costs as a user's sessions pile up: 1, 50, 20,000.

Issue 10: sessionauth 0.1's Redis ``CREATE`` read every field of the user's hash, so a login at
5,000 sessions blocked Redis for 18 ms, and ~96 ms at 20,000. A login's cost must not grow with
the number of sessions (target: flat within +-20 % from 1 to 20,000).

Usage::

    python benchmarks/login_cost.py redis://127.0.0.1:6379/15 [--rounds 200]
    python benchmarks/login_cost.py sqlite:////tmp/login-cost.db
    python benchmarks/login_cost.py postgresql://127.0.0.1/test

For each row a fresh user gets a principal and N live sessions; then each round times one
``create`` of a session stamped with the principal's epoch (a login, create-if-current
included). Two kinds of rows:

* under the cap (``max_sessions=20000``): N = 1, 50, 19,999; the new session is deleted again,
  untimed, so every round starts at N;
* at the cap (``max_sessions=N``): N = 50 (the default cap) and 20,000; every login ends the
  user's oldest session, as a real one at the cap does, so every round starts at N too.

Printed per row: the median and 90th percentile of the call as the client sees it and, on a
single Redis server, the server's own time per script call (``INFO commandstats``, ``usec`` of
``evalsha``, reset before each timed call; median): the time Redis is blocked. Run it against a
Redis of your own (``CONFIG RESETSTAT`` resets everyone's statistics). At the end a rotation
deletes the row's sessions; on Redis the keys go too (their own prefix, never a flush).
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import statistics
import sys
import time
from typing import Any

from sessionauth.principal import Principal, PrincipalChange, new_epoch
from sessionauth.record import SessionRecord
from sessionauth.stores import SessionStore, open_store
from sessionauth.tokens import new_token, storage_id

CAP = 20_000
ROWS = ((1, CAP), (50, CAP), (CAP - 1, CAP), (50, 50), (CAP, CAP))
"""(live sessions, max_sessions) per row."""
DAY = 86400.0


def _record(user: str, epoch: str) -> SessionRecord:
    now = time.time()
    return SessionRecord(
        data={},
        created=now,
        seen=now,
        issued=now,
        expires=now + DAY,
        user_id=user,
        meta={"ip": "127.0.0.1", "ua": "login-cost", "auth": now},
        epoch=epoch,
    )


async def _server_usec(observer: Any) -> float:
    """Microseconds Redis spent in EVALSHA since the last reset (0 if none ran)."""
    stats = await observer.info("commandstats")
    return float(stats.get("cmdstat_evalsha", {}).get("usec", 0))


async def _measure(
    store: SessionStore, observer: Any, size: int, cap: int, rounds: int
) -> dict[str, Any]:
    user = f"login-cost-{secrets.token_hex(4)}"
    principal = await store.install_principal(user, Principal(epoch=new_epoch(), role="user"))
    for _ in range(size):
        await store.create(storage_id(new_token(user)), _record(user, principal.epoch))
    client: list[float] = []
    server: list[float] = []
    for _ in range(rounds):
        sid = storage_id(new_token(user))
        record = _record(user, principal.epoch)
        if observer is not None:
            await observer.config_resetstat()
        started = time.perf_counter()
        await store.create(sid, record)
        client.append(time.perf_counter() - started)
        if observer is not None:
            server.append(await _server_usec(observer))
        if size < cap:
            await store.delete(sid)
    listed = await store.list_user(user, limit=1)
    if not listed.sessions:
        raise RuntimeError(f"{user} has no session left: the benchmark measured nothing")
    change = PrincipalChange(fallback_role="user", fallback_disabled=False, rotate=True)
    await store.change_principal(user, change)
    return {
        "size": size,
        "cap": cap,
        "median": statistics.median(client) * 1e6,
        "p90": statistics.quantiles(client, n=10)[-1] * 1e6,
        "server": statistics.median(server) if server else None,
    }


async def main(url: str, rounds: int) -> None:
    """Measure every size on ``url`` and print the table."""
    redis = url.startswith(("redis", "rediss"))
    prefix = f"login-cost-{secrets.token_hex(4)}:"
    observer = None
    if redis and "+" not in url.split("://")[0]:
        from redis.asyncio import Redis

        observer = Redis.from_url(url)
    rows = []
    try:
        for size, cap in ROWS:
            options: dict[str, Any] = {"max_sessions": cap}
            if redis:
                options["prefix"] = prefix
            async with open_store(url, timeout=30.0, **options) as store:
                rows.append(await _measure(store, observer, size, cap, rounds))
    finally:
        if observer is not None:
            keys = [key async for key in observer.scan_iter(match=f"{prefix}*", count=1000)]
            for key in keys:
                await observer.delete(key)
            await observer.aclose()
    print(f"login cost on {url.split('://')[0]} ({rounds} logins per row)")
    print("| sessions | max_sessions | median µs | p90 µs | Redis µs per create (median) |")
    print("|---:|---:|---:|---:|---:|")
    for row in rows:
        server = "-" if row["server"] is None else f"{row['server']:.0f}"
        print(
            f"| {row['size']:,} | {row['cap']:,} | {row['median']:.0f} | {row['p90']:.0f} "
            f"| {server} |"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url", help="the session store URL (redis://, sqlite:///, postgresql://)")
    parser.add_argument("--rounds", type=int, default=200, help="timed logins per size")
    arguments = parser.parse_args()
    asyncio.run(main(arguments.url, arguments.rounds))
    sys.exit(0)
