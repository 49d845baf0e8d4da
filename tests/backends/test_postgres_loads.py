"""The PostgreSQL store batches the loads of one event-loop iteration into one query."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator

import asyncpg
import pytest

from sessionauth.backends.postgres.sessions import PostgresStore
from tests.support.records import new_sid, record

pytestmark = pytest.mark.postgres


@pytest.fixture
async def counted(postgres_dsn: str) -> AsyncIterator[tuple[PostgresStore, list[str]]]:
    """A store on a pool whose connections log every query they run into the yielded list."""
    table = f"sessions_{secrets.token_hex(6)}"
    queries: list[str] = []

    async def log_queries(connection: asyncpg.Connection) -> None:
        connection.add_query_logger(lambda query: queries.append(query.query))

    pool = await asyncpg.create_pool(postgres_dsn, min_size=1, max_size=4, init=log_queries)
    store = PostgresStore(pool=pool, table=table)
    try:
        yield store, queries
    finally:
        await store.aclose()
        await pool.execute(f"DROP TABLE IF EXISTS {table}, {table}_principals")
        await pool.close()


def loads_in(queries: list[str]) -> list[str]:
    """The store's load queries among everything the pool ran (it also runs reset queries)."""
    return [query for query in queries if "= ANY($1" in query]


async def test_concurrent_loads_share_one_query_and_each_gets_its_own_record(
    counted: tuple[PostgresStore, list[str]],
) -> None:
    """30 loads at once (two of them for one id, one for an unknown id): one SELECT answers all."""
    store, queries = counted
    sids = [new_sid(str(user)) for user in range(1, 29)]
    for user, sid in enumerate(sids, start=1):
        await store.create(sid, record(str(user)))
    unknown = new_sid("99")
    queries.clear()
    loaded = await asyncio.gather(*(store.load(sid) for sid in [*sids, sids[0], unknown]))
    assert len(loads_in(queries)) == 1
    owners = [None if found is None else found.user_id for found in loaded]
    assert owners == [*(str(user) for user in range(1, 29)), "1", None]
    assert loaded[0] is not loaded[28]  # each caller owns its copy


async def test_loads_issued_while_a_batch_is_in_flight_go_in_the_next_batch(
    counted: tuple[PostgresStore, list[str]],
) -> None:
    """A load issued after the first batch left is answered by a second query, not dropped."""
    store, queries = counted
    first, second = new_sid("1"), new_sid("2")
    await store.create(first, record("1"))
    await store.create(second, record("2"))
    queries.clear()
    early = asyncio.ensure_future(store.load(first))
    # Two loop iterations (asyncio runs ready callbacks in order): the first lets the task
    # queue its load, the second runs the batch's send. Yields, not waits for time.
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    late = await store.load(second)
    assert (await early) is not None
    assert late is not None
    assert late.user_id == "2"
    assert len(loads_in(queries)) == 2
