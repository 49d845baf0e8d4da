"""µs per session read on SQLite: one statement per load, against one per batch of loads.

The SQLite store answers the loads of one event-loop iteration with one statement
(``sessionauth.backends.load_batches``). This times the store's own load statements on a
file of signed-in sessions, on a reader connection like the store's (autocommit, no busy
timeout), for batches of 1 to 32 ids: each id read by its own statement (as before the
batching) and all of them by one. Each autocommit statement opens and closes a read
transaction (the WAL read lock's two ``fcntl`` calls and the pager's shared lock), which is
what a batch shares. Prints one line per batch size; the best of ``--repeat`` runs counts.

    .venv/bin/python benchmarks/sqlite_batches.py
"""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
import tempfile
import time
from pathlib import Path

from sessionauth.backends.sqlite.session_sql import LOAD_BATCH, load_many
from sessionauth.backends.sqlite.sessions import DEFAULT_TABLE, SQLiteStore
from sessionauth.principal import Principal, new_epoch
from sessionauth.record import SessionRecord
from sessionauth.tokens import new_token, storage_id

SIZES = (1, 2, 4, 8, 16, 32)


async def _sign_in(path: Path, users: int) -> list[str]:
    """Store one signed-in session for each of ``users`` users; return their ids."""
    sids = []
    async with SQLiteStore.from_url(f"sqlite:///{path}") as store:
        now = time.time()
        for user in map(str, range(users)):
            principal = await store.install_principal(
                user, Principal(epoch=new_epoch(), role="user")
            )
            sid = storage_id(new_token(user))
            record = SessionRecord(
                data={}, created=now, seen=now, issued=now, expires=now + 86400, user_id=user
            )
            record.epoch = principal.epoch
            await store.create(sid, record)
            sids.append(sid)
    return sids


def _per_read(reader: sqlite3.Connection, sids: list[str], batched: bool, reads: int) -> float:
    """µs per session read over about ``reads`` reads of ``sids``."""
    now = time.time()
    one, many = load_many(DEFAULT_TABLE, 1), load_many(DEFAULT_TABLE, len(sids))
    # Timing reads that find nothing would flatter both: every id must find its row.
    if len(reader.execute(many, (*sids, now)).fetchall()) != len(sids):
        raise SystemExit("the batched statement did not find every session")
    rounds = max(reads // len(sids), 1)
    started = time.perf_counter()
    for _ in range(rounds):
        if batched:
            reader.execute(many, (*sids, now)).fetchall()
        else:
            for sid in sids:
                reader.execute(one, (sid, now)).fetchall()
    return (time.perf_counter() - started) / (rounds * len(sids)) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--reads", type=int, default=20_000, help="per measurement (20000)")
    parser.add_argument("--repeat", type=int, default=3, help="runs; the best counts (3)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "sessions.db"
        sids = asyncio.run(_sign_in(path, LOAD_BATCH))
        reader = sqlite3.connect(path, timeout=0, isolation_level=None)
        try:
            for size in SIZES:
                batch = sids[:size]
                alone = min(_per_read(reader, batch, False, args.reads) for _ in range(args.repeat))
                shared = min(_per_read(reader, batch, True, args.reads) for _ in range(args.repeat))
                print(
                    f"batch of {size:2d}: {alone:5.2f} us a read by its own statement, "
                    f"{shared:5.2f} us in one statement ({alone / shared:.1f}x)"
                )
        finally:
            reader.close()


if __name__ == "__main__":
    main()
