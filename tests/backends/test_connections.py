"""One connection or pool per database per worker: sessions, counters and users share it.

Counted from the operating system, not from the code under test: the descriptors this process
holds on the SQLite file, and its TCP connections to the PostgreSQL or Redis port.
"""

from __future__ import annotations

import os
from pathlib import Path

import httpx
import pytest

from sessionauth.stores.users import User
from tests.support.apps import running_app
from tests.support.services import RedisServer

PASSWORD = "correct horse battery staple"


def files_open_on(path: Path) -> int:
    """How many descriptors of this process are open on ``path`` (one per SQLite connection)."""
    target = os.path.realpath(path)
    found = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            if os.readlink(f"/proc/self/fd/{fd}") == target:
                found += 1
        except OSError:  # closed since listed
            continue
    return found


def connections_to(port: int) -> int:
    """How many established TCP connections this process has to ``port`` (IPv4 and IPv6)."""
    mine = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            link = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if link.startswith("socket:["):
            mine.add(link[len("socket:[") : -1])
    found = 0
    for table in ("/proc/self/net/tcp", "/proc/self/net/tcp6"):
        with open(table) as lines:
            next(lines)
            for line in lines:
                fields = line.split()
                remote, state, inode = fields[2], fields[3], fields[9]
                if state == "01" and int(remote.rpartition(":")[2], 16) == port and inode in mine:
                    found += 1
    return found


async def sign_in_and_out(app: object) -> None:
    """Use every view once: the counter and the users (login), the sessions (load, delete)."""
    auth = app.state.authenticator  # type: ignore[attr-defined]
    user: User = await auth.users.create("count@example.com", await auth.hasher.hash(PASSWORD))
    transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        body = {"email": user.email, "password": PASSWORD}
        assert (await client.post("/login", json=body)).status_code == 200
        assert (await client.get("/dashboard")).json() == {"userId": user.id}
        token = (await client.get("/csrf-token")).json()["csrfToken"]
        assert (await client.post("/logout", headers={"X-CSRF-Token": token})).status_code == 200


async def test_users_and_sessions_in_one_sqlite_file_share_one_connection(tmp_path: Path) -> None:
    """One connection to the SQLite file for every view, plus the session store's reader."""
    database = tmp_path / "sessionauth.db"
    async with running_app(tmp_path, database_url=f"sqlite:///{database}") as app:
        await sign_in_and_out(app)
        # Sessions, counters and users share one connection (a connection per view would
        # hold three); the session store reads on a second one of its own, on purpose: every
        # request's load runs there, on the event loop (SQLiteDatabase.read_now).
        assert files_open_on(database) == 2
    assert files_open_on(database) == 0


@pytest.mark.postgres
async def test_users_and_sessions_on_one_postgres_url_share_one_pool(
    tmp_path: Path, postgres_dsn: str
) -> None:
    """One asyncpg pool per URL: two connections, the most any moment needs, not one per view."""
    port = int(postgres_dsn.rpartition("@")[2].partition("/")[0].rpartition(":")[2])
    before = connections_to(port)
    async with running_app(tmp_path, database_url=postgres_dsn) as app:
        await sign_in_and_out(app)
        # A login reserves its account and address attempts at once (two connections of the
        # pool); everything else reuses them. A pool per view would hold at least four: the
        # counter's two, the session store's and the user store's.
        assert connections_to(port) - before == 2
    assert connections_to(port) == before


@pytest.mark.redis
async def test_sessions_on_redis_share_one_client_with_the_counters(
    tmp_path: Path, private_redis: RedisServer
) -> None:
    """Redis: one client for store and counter (two pooled connections), plus the read pipeline."""
    database = tmp_path / "users.db"
    async with running_app(
        tmp_path, database_url=f"sqlite:///{database}", store_url=private_redis.url
    ) as app:
        await sign_in_and_out(app)
        # The login's two concurrent counter reserves open the client's two pooled connections,
        # which the session store's writes reuse (a client per view would add a third). The
        # read pipeline keeps a connection of its own on purpose: every request's load is
        # pipelined on it (sessionauth.backends.redis.reads).
        assert connections_to(private_redis.port) == 3
        assert files_open_on(database) == 1
    assert connections_to(private_redis.port) == 0
