"""Every PostgreSQL component answers within its own timeout, and classifies outages alike."""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import signal
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import asyncpg
import httpx
import pytest

from sessionauth.backends.postgres.attempts import PostgresCounter
from sessionauth.backends.postgres.calls import unavailable
from sessionauth.backends.postgres.users import PostgresUserStore
from sessionauth.errors import StoreFull, StoreUnavailable
from tests.support.apps import running_app
from tests.support.services import PostgresServer

pytestmark = pytest.mark.postgres

TIMEOUT = 1.0
# Scheduling noise on a loaded 2-core machine; a second timeout (the old bug) is far beyond.
MARGIN = 0.5


async def elapsed_until_unavailable(call: Callable[[], Awaitable[object]]) -> float:
    """Run ``call``, assert it raises StoreUnavailable, and return how long that took."""
    started = time.monotonic()
    with pytest.raises(StoreUnavailable):
        await asyncio.wait_for(call(), 10 * TIMEOUT)
    return time.monotonic() - started


class Blackhole:
    """Freezes a private server with SIGSTOP: the postmaster and every backend process.

    PostgreSQL's backends each lead a session of their own, so stopping the postmaster's
    process group (``PostgresServer.pause``) would leave open connections answering.
    """

    def __init__(self, server: PostgresServer):
        self.server = server
        self._pids: list[int] = []

    async def freeze(self) -> None:
        admin = await asyncpg.connect(self.server.dsn)
        try:
            self._pids = [row[0] for row in await admin.fetch("SELECT pid FROM pg_stat_activity")]
        finally:
            await admin.close()
        self.server.pause()
        for pid in self._pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGSTOP)

    def thaw(self) -> None:
        for pid in self._pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)
        self._pids = []
        self.server.resume()


@pytest.fixture
def blackhole(private_postgres: PostgresServer) -> Iterator[Blackhole]:
    """A freezer for the private server, thawed at the end whatever happens."""
    freezer = Blackhole(private_postgres)
    try:
        yield freezer
    finally:
        freezer.thaw()


async def test_user_store_and_counter_give_up_after_one_timeout_on_a_frozen_server(
    blackhole: Blackhole,
) -> None:
    """Against a SIGSTOPped server, user store and counter raise after one timeout, not two."""
    dsn = blackhole.server.dsn
    users = PostgresUserStore.from_url(dsn, timeout=TIMEOUT)
    counter = PostgresCounter(dsn, timeout=TIMEOUT)
    try:
        await users.create("a@example.com", "hash")
        await counter.reserve("account:a@example.com", 60, 5)
        await blackhole.freeze()
        calls: dict[str, Callable[[], Awaitable[object]]] = {
            "users.get_by_email": lambda: users.get_by_email("a@example.com"),
            "users.list": users.list,
            "counter.reserve": lambda: counter.reserve("account:a@example.com", 60, 5),
            "counter.count": lambda: counter.count("account:a@example.com"),
        }
        took = {name: await elapsed_until_unavailable(call) for name, call in calls.items()}
        assert all(seconds < TIMEOUT + MARGIN for seconds in took.values()), took
    finally:
        blackhole.thaw()
        await users.aclose()
        await counter.aclose()


async def test_login_and_readyz_answer_503_within_the_timeout_on_a_frozen_server(
    blackhole: Blackhole, tmp_path: Path
) -> None:
    """POST /login and GET /readyz answer 503 within 2 s (the default timeout) + a margin."""
    async with running_app(tmp_path, database_url=blackhole.server.dsn) as app:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            body = {"email": "admin@localhost", "password": "wrong password"}
            assert (await client.post("/login", json=body)).status_code == 401
            assert (await client.get("/readyz")).status_code == 200
            await blackhole.freeze()
            try:
                took = {}
                for name, call in {
                    "login": lambda: client.post("/login", json=body),
                    "readyz": lambda: client.get("/readyz"),
                }.items():
                    started = time.monotonic()
                    response = await call()
                    took[name] = time.monotonic() - started
                    assert response.status_code == 503, name
                    assert response.headers["retry-after"]
            finally:
                blackhole.thaw()
    assert all(seconds < 2.0 + MARGIN for seconds in took.values()), took


async def test_a_read_only_standby_is_an_outage_for_the_user_store(postgres_dsn: str) -> None:
    """Writes on a read-only server (a standby after failover) raise StoreUnavailable: a 503."""
    table = f"users_{secrets.token_hex(6)}"
    writable = PostgresUserStore.from_url(postgres_dsn, table=table)
    await writable.ping()  # creates the table, as a primary would have before the failover
    read_only_session = {"default_transaction_read_only": "on"}
    pool = await asyncpg.create_pool(
        postgres_dsn, min_size=1, max_size=1, server_settings=read_only_session
    )
    try:
        read_only = PostgresUserStore(pool, table=table)
        with pytest.raises(StoreUnavailable, match="ReadOnlySQLTransaction"):
            await read_only.create("b@example.com", "hash")
        assert await read_only.get_by_email("b@example.com") is None  # reads still work
    finally:
        await pool.close()
        await writable._fetch(f"DROP TABLE {table}")
        await writable.aclose()


async def test_sqlstate_class_53_is_store_full(postgres_dsn: str) -> None:
    """A real class-53 error (temp_file_limit exceeded, 53400) classifies as StoreFull."""
    connection = await asyncpg.connect(
        postgres_dsn, server_settings={"work_mem": "64kB", "temp_file_limit": "64kB"}
    )
    try:
        with pytest.raises(asyncpg.PostgresError) as caught:
            await connection.fetch("SELECT g FROM generate_series(1, 200000) AS g ORDER BY g DESC")
    finally:
        await connection.close()
    assert caught.value.sqlstate == "53400"
    assert isinstance(unavailable(caught.value, "test store"), StoreFull)
    refused = asyncpg.exceptions.CannotConnectNowError("the database system is starting up")
    classified = unavailable(refused, "test store")
    assert type(classified) is StoreUnavailable
