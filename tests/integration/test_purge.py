"""Purging expired sessions: one leader at a time, the background purger, `purge-expired`."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from sessionauth.backends import open_backend
from sessionauth.backends.locks import FileLock, NoLock
from sessionauth.backends.postgres import PostgresBackend
from sessionauth.record import SessionRecord
from sessionauth.server.purge import purge_once, run_purger
from sessionauth.stores import MemoryStore, open_store
from sessionauth.stores.tokens import TokenRecord
from tests.support.cli import invoke


async def test_only_one_process_purges_at_a_time(tmp_path: Path) -> None:
    """While one holder has the purge lock, another skips its sweep; afterwards it may sweep."""
    store = open_store(f"sqlite:///{tmp_path / 's.db'}")
    now = time.time()
    await store.create("old", SessionRecord(data={}, created=0, seen=0, issued=0, expires=1))
    await store.create(
        "live", SessionRecord(data={}, created=now, seen=now, issued=now, expires=now + 60)
    )
    first, second = FileLock(tmp_path / "purge.lock"), FileLock(tmp_path / "purge.lock")
    async with first.hold() as leader:
        assert leader
        assert await purge_once(store, None, second) is None
    assert await purge_once(store, None, second) == 1
    assert await store.load("live") is not None
    await store.aclose()


async def test_purger_sweeps_every_interval_until_cancelled(tmp_path: Path) -> None:
    """run_purger keeps sweeping (a record expiring later goes in a later round)."""
    clock = [time.time()]
    store = MemoryStore(clock=lambda: clock[0])
    await store.create("a", SessionRecord(data={}, created=0, seen=0, issued=0, expires=1))
    task = asyncio.create_task(run_purger(store, None, NoLock(), interval=0.01))
    try:
        for _ in range(100):
            await asyncio.sleep(0.01)
            if not len(store):
                break
        assert len(store) == 0
        record = SessionRecord(data={}, created=0, seen=0, issued=0, expires=clock[0] + 1)
        await store.create("b", record)
        clock[0] += 2
        for _ in range(100):
            await asyncio.sleep(0.01)
            if not len(store):
                break
        assert len(store) == 0
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


@pytest.mark.postgres
async def test_postgres_purge_lock_admits_one_holder(postgres_dsn: str) -> None:
    """pg_try_advisory_xact_lock: a second holder is refused until the first commits."""
    async with PostgresBackend(postgres_dsn) as one, PostgresBackend(postgres_dsn) as two:
        first, second = one.purge_lock(Path()), two.purge_lock(Path())
        async with first.hold() as leader:
            assert leader
            async with second.hold() as follower:
                assert not follower
        async with second.hold() as later:
            assert later


def test_purge_expired(env: dict[str, str]) -> None:
    """`purge-expired` deletes expired records and says how many."""

    async def seed() -> None:
        store = open_store(env["SESSIONAUTH_DATABASE_URL"])
        await store.create("old", SessionRecord(data={}, created=0, seen=0, issued=0, expires=1))
        await store.aclose()

    asyncio.run(seed())
    result = invoke(env, "purge-expired")
    assert (result.exit_code, result.stdout.strip()) == (0, "purged 1 expired session")
    assert invoke(env, "purge-expired").stdout.strip() == "purged 0 expired sessions"


async def test_the_sweep_reclaims_expired_single_use_tokens(tmp_path: Path) -> None:
    """purge_once with a token store deletes its expired rows (a live one stays usable)."""
    backend = open_backend(f"sqlite:///{tmp_path / 's.db'}")
    store, tokens = backend.session_store(), backend.token_store()
    now = time.time()
    for key, expires in (("expired", now - 1), ("live", now + 60)):
        record = TokenRecord(user_id="1", purpose="reset-password", binding="b", expires=expires)
        await tokens.add(key, record)
    assert await purge_once(store, None, NoLock(), tokens=tokens) == 0
    assert await tokens.purge_expired() == 0  # nothing left to reclaim: the sweep did it
    assert await tokens.take("live") is not None
    await backend.aclose()
