"""Ending a login's lineage: every live session of the user that began when it did.

:func:`sessionauth.lineage.end_lineage` runs when a request ending a login (a logout, another
login) finds the record it loaded already rotated away. These tests drive it over the memory
store; ``tests/contract/test_rotation_races.py`` drives the race itself over every store.
"""

from __future__ import annotations

import pytest

from sessionauth.commit_plan import Lineage
from sessionauth.lineage import end_lineage
from sessionauth.record import SessionRecord
from sessionauth.stores.base import MAX_PAGE, SessionPage, SessionStore
from sessionauth.stores.memory import MemoryStore
from sessionauth.tokens import new_token, storage_id
from tests.support.stores import InstrumentedStore

USER = "7"
BEGUN = 1_000_000.0
NOW = BEGUN + 100


def clock() -> float:
    return NOW


def record(created: float, user: str = USER) -> SessionRecord:
    return SessionRecord(
        data={}, created=created, seen=NOW, issued=NOW, expires=NOW + 3600, user_id=user, meta={}
    )


async def store_session(store: SessionStore, created: float, user: str = USER) -> str:
    sid = storage_id(new_token(user))
    await store.create(sid, record(created, user))
    return sid


async def live(store: SessionStore, user: str = USER) -> set[str]:
    return {handle for handle, _ in (await store.list_user(user)).sessions}


@pytest.fixture
def store() -> MemoryStore:
    return MemoryStore(clock=clock, max_sessions=500)


async def test_the_sessions_continuing_the_login_end_and_no_other(store: MemoryStore) -> None:
    """Same user and ``created``: ended; another login of the user, or another user: kept."""
    gone = storage_id(new_token(USER))  # the loaded record, rotated away
    successor = await store_session(store, BEGUN)
    other_login = await store_session(store, BEGUN + 1)
    other_user = await store_session(store, BEGUN, user="8")
    ended = await end_lineage(store, Lineage(gone, USER, BEGUN))
    assert ended == 1
    assert await live(store) == {other_login}
    assert await live(store, "8") == {other_user}
    assert successor not in await live(store)


async def test_a_lineage_longer_than_a_page_ends_whole(store: MemoryStore) -> None:
    """Every page of the user's sessions is looked at, not only the first."""
    for _ in range(MAX_PAGE + 5):
        await store_session(store, BEGUN)
    kept = await store_session(store, BEGUN + 1)
    assert await end_lineage(store, Lineage("gone", USER, BEGUN)) == MAX_PAGE + 5
    assert await live(store) == {kept}


class RotatesOnLookup(InstrumentedStore):
    """Rotates the lineage's session once more right after each of the first lookups."""

    def __init__(self, inner: SessionStore, rotations: int):
        super().__init__(inner)
        self.rotations = rotations

    async def list_user(
        self, user_id: str, *, limit: int = MAX_PAGE, cursor: str | None = None
    ) -> SessionPage:
        page = await super().list_user(user_id, limit=limit, cursor=cursor)
        if self.rotations:
            self.rotations -= 1
            for handle, found in page.sessions:
                await self.inner.delete(handle)
                await self.inner.create(storage_id(new_token(user_id)), found)
        return page


async def test_a_session_rotated_again_meanwhile_is_followed(store: MemoryStore) -> None:
    """A successor rotated between the lookup and its delete is found by the next lookup."""
    await store_session(store, BEGUN)
    racing = RotatesOnLookup(store, rotations=2)
    assert await end_lineage(racing, Lineage("gone", USER, BEGUN)) == 1
    assert await live(store) == set()


async def test_a_lineage_rotating_without_end_is_given_up(store: MemoryStore) -> None:
    """Bounded: a lineage rotated after every lookup is left after a few rounds, not chased."""
    await store_session(store, BEGUN)
    racing = RotatesOnLookup(store, rotations=100)
    assert await end_lineage(racing, Lineage("gone", USER, BEGUN)) == 0
    assert racing.rotations == 100 - 4
