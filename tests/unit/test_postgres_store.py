"""PostgresStore's answer to a connection asyncpg reports broken, with a stand-in pool."""

from __future__ import annotations

from typing import Any, cast

import asyncpg
import pytest

from sessionauth.backends.postgres.sessions import PostgresStore
from sessionauth.errors import StoreUnavailable


class BrokenConnection:
    """A pooled connection that got the server's FATAL while idle (asyncpg#1069)."""

    def __init__(self) -> None:
        self.terminated = False

    async def fetchval(self, *args: object) -> bool:
        return False  # the first-use check: the tables are missing

    async def execute(self, *args: object) -> str:
        return "CREATE TABLE"  # the first-use schema script

    async def fetch(self, *args: object) -> None:
        raise asyncpg.exceptions.InternalClientError(
            "cannot switch to state 12; another operation (2) is in progress"
        )

    def terminate(self) -> None:
        self.terminated = True


class StandInPool:
    """Hands out the one connection, as asyncpg's pool would."""

    def __init__(self, connection: BrokenConnection) -> None:
        self.connection = connection

    async def acquire(self) -> BrokenConnection:
        return self.connection

    async def release(self, connection: BrokenConnection, **options: object) -> None:
        del connection, options


async def test_a_connection_in_a_broken_protocol_state_is_unavailable_and_terminated() -> None:
    """asyncpg's "cannot switch to state" is StoreUnavailable (a 503), and the connection dies."""
    connection = BrokenConnection()
    store = PostgresStore(pool=cast(Any, StandInPool(connection)))
    with pytest.raises(StoreUnavailable):
        await store.load("a-session-id")
    assert connection.terminated  # never handed out again by the pool
    await store.aclose()
