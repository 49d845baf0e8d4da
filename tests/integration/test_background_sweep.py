"""The background sweep of expired sessions survives every failure and says how it is doing."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from sessionauth.auth.passwords import PasswordHasher
from sessionauth.backends.locks import LOCK_FILE, NoLock
from sessionauth.backends.sqlite.sessions import SQLiteStore
from sessionauth.record import SessionRecord
from sessionauth.server.app import create_app
from sessionauth.server.metrics import Metrics
from sessionauth.server.purge import run_purger
from sessionauth.server.readiness import SWEEP, Readiness
from sessionauth.server.settings import Settings

WAIT = 10.0  # a bound that catches a dead loop; the sweeps themselves take milliseconds


class FailingSweeps(SQLiteStore):
    """A real SQLite store whose first sweeps fail as drivers and sockets do."""

    def __init__(self, failures: list[BaseException], **kwargs: Any):
        super().__init__(**kwargs)
        self.failures = failures
        self.swept = asyncio.Event()

    async def purge_expired(self, *, batch_size: int = 500) -> int:
        if self.failures:
            raise self.failures.pop(0)
        purged = await super().purge_expired(batch_size=batch_size)
        self.swept.set()
        return purged


@contextlib.asynccontextmanager
async def running(task: asyncio.Task[None]) -> AsyncIterator[asyncio.Task[None]]:
    try:
        yield task
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_the_sweep_outlives_timeouts_socket_and_driver_errors(tmp_path: Path) -> None:
    """TimeoutError, OSError, asyncpg.InterfaceError: each logged, then the next sweep works."""
    failures: list[BaseException] = [
        TimeoutError(),
        ConnectionResetError(104, "Connection reset by peer"),
        asyncpg.InterfaceError("connection is closed"),
    ]
    store = FailingSweeps(failures, path=str(tmp_path / "sessions.db"))
    now = time.time()
    expired = SessionRecord(data={"a": 1}, created=now, seen=now, issued=now, expires=now - 1)
    await store.create("gone", expired)
    readiness, metrics = Readiness(), Metrics()
    loop = run_purger(store, None, NoLock(), 0.01, readiness=readiness, metrics=metrics)
    try:
        async with running(asyncio.create_task(loop)) as task:
            await asyncio.wait_for(store.swept.wait(), WAIT)
            assert not task.done()
        assert failures == []
        assert await store.purge_expired() == 0  # the surviving sweep deleted the record
        condition = readiness.get(SWEEP)
        assert condition is not None
        assert condition.status == "ok"
        assert condition.details["last_success"] is not None
        text = metrics.render()[0].decode()
        assert "sessionauth_sweep_failures_total 3.0" in text
        assert "sessionauth_sweep_last_success_timestamp_seconds 0.0" not in text
    finally:
        await store.aclose()


async def test_readyz_shows_a_failing_sweep_as_degraded_then_its_recovery(tmp_path: Path) -> None:
    """A purge lock that cannot be opened (OSError) degrades /readyz; fixed, the sweep resumes."""
    data_dir = tmp_path / "data"
    (data_dir / LOCK_FILE).mkdir(parents=True)  # opening a directory for writing: EISDIR
    settings = Settings(
        env="development",
        database_url=f"sqlite:///{tmp_path / 'users.db'}",
        data_dir=data_dir,
        secret="s" * 40,
        purge_interval=0.02,
    )
    app = create_app(settings, hasher=PasswordHasher.for_tests())
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            sweep = await readyz_sweep_until(client, "degraded")
            assert "IsADirectoryError" in sweep["reason"]
            assert sweep["last_success"] is None
            (data_dir / LOCK_FILE).rmdir()
            sweep = await readyz_sweep_until(client, "ok")
            assert sweep["last_success"] is not None
            metrics = (await client.get("/metrics")).text
            assert "sessionauth_sweep_failures_total" in metrics


async def readyz_sweep_until(client: httpx.AsyncClient, status: str) -> dict[str, Any]:
    """Ask /readyz until the sweep's condition has ``status`` (the sweep runs every 20 ms)."""
    deadline = time.monotonic() + WAIT
    while True:
        response = await client.get("/readyz")
        assert response.status_code == 200
        sweep: dict[str, Any] = response.json()["checks"][SWEEP]
        if sweep["status"] == status and (status != "ok" or sweep["last_success"] is not None):
            return sweep
        assert time.monotonic() < deadline, f"the sweep never became {status}: {sweep}"
        await asyncio.sleep(0.01)
