"""Ending a login's lineage: a marker, then every live session of the user that began with it.

:func:`sessionauth.lineage.end_lineage` runs when a request ending a login (a logout, another
login) finds the record it loaded already rotated away. These tests drive it over the memory
store; ``tests/contract/test_rotation_races.py`` drives the race itself over every store.
"""

from __future__ import annotations

import pytest

from sessionauth.commit_plan import Lineage
from sessionauth.lineage import MARKER_LIFETIME, end_lineage, lineage_ended, marker_id
from sessionauth.record import SessionRecord
from sessionauth.stores.base import MAX_PAGE, SessionStore
from sessionauth.stores.memory import MemoryStore
from sessionauth.tokens import group_of, new_token, storage_id

USER = "7"
LIFETIME = 86400.0  # the policy's absolute timeout
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
    ended = await end_lineage(store, Lineage(gone, USER, BEGUN), NOW, LIFETIME)
    assert ended == 1
    assert await live(store) == {other_login}
    assert await live(store, "8") == {other_user}
    assert successor not in await live(store)


async def test_a_lineage_longer_than_a_page_ends_whole(store: MemoryStore) -> None:
    """Every page of the user's sessions is looked at, not only the first."""
    for _ in range(MAX_PAGE + 5):
        await store_session(store, BEGUN)
    kept = await store_session(store, BEGUN + 1)
    assert await end_lineage(store, Lineage("gone", USER, BEGUN), NOW, LIFETIME) == MAX_PAGE + 5
    assert await live(store) == {kept}


async def test_the_marker_is_stored_first_and_found_by_its_lineage_only(
    store: MemoryStore,
) -> None:
    """After an ending, a rotation of that lineage finds the marker; other lineages do not."""
    assert not await lineage_ended(store, USER, BEGUN)
    await end_lineage(store, Lineage("gone", USER, BEGUN), NOW, LIFETIME)
    assert await lineage_ended(store, USER, BEGUN)
    assert not await lineage_ended(store, USER, BEGUN + 1)
    assert not await lineage_ended(store, "8", BEGUN)
    assert await live(store) == set(), "the marker is listed as a session of the user"


async def test_a_lineage_ended_twice_keeps_one_marker(store: MemoryStore) -> None:
    """Two requests ending one lineage (two tabs logging out): no error, still ended."""
    await end_lineage(store, Lineage("gone", USER, BEGUN), NOW, LIFETIME)
    await end_lineage(store, Lineage("gone", USER, BEGUN), NOW, LIFETIME)
    assert await lineage_ended(store, USER, BEGUN)


@pytest.mark.parametrize(
    ("ended_at", "until"),
    [(NOW, BEGUN + LIFETIME), (BEGUN + LIFETIME - 60, BEGUN + LIFETIME - 60 + MARKER_LIFETIME)],
    ids=["as long as the lineage could live", "at least MARKER_LIFETIME"],
)
async def test_the_marker_lasts_as_long_as_the_lineage_could(ended_at: float, until: float) -> None:
    """Kept until the login's absolute timeout, never less than the floor.

    So a failed listing still ends the lineage at its next rotation, and minutes of clock skew
    between workers and the store change nothing.
    """
    now = [ended_at]
    store = MemoryStore(clock=lambda: now[0])
    await end_lineage(store, Lineage("gone", USER, BEGUN), ended_at, LIFETIME)
    now[0] = until - 1
    assert await lineage_ended(store, USER, BEGUN)
    now[0] = until
    assert not await lineage_ended(store, USER, BEGUN)


def test_a_marker_id_names_no_token_and_no_user() -> None:
    """Shaped as an anonymous id (no group), distinct per user and per ``created``."""
    marker = marker_id(USER, BEGUN)
    assert len(marker) == 22
    assert group_of(marker) is None
    assert len({marker, marker_id(USER, BEGUN + 0.001), marker_id("8", BEGUN)}) == 3
    assert marker == marker_id(USER, BEGUN)
