"""A renewal's forward: where it lives, what it holds, and how long it leads anywhere.

:mod:`sessionauth.forwards` is driven here over the memory store; the races it exists for
(second tabs, parallel fetches, a write or a logout with the old cookie) run over every store
in ``tests/contract/test_rotation_races.py``.
"""

from __future__ import annotations

import msgspec

from sessionauth.commit_plan import Lineage
from sessionauth.forwards import (
    Forward,
    forward_id,
    forward_record,
    forward_update,
    successor_of,
)
from sessionauth.lineage import marker_id
from sessionauth.record import SessionRecord
from sessionauth.stores.memory import MemoryStore
from sessionauth.tokens import new_token, storage_id

NOW = 1_000_000.0
GRACE = 30.0


def clock() -> float:
    return NOW


def test_a_forward_id_is_shaped_as_an_anonymous_id_and_names_no_cookie() -> None:
    """22 characters like an anonymous session's id, distinct per record and from markers."""
    sid = storage_id(new_token("7"))
    anonymous = storage_id(new_token(None))
    assert len(forward_id(sid)) == len(anonymous)
    assert "." not in forward_id(sid)  # no user's group: no listing shows it
    assert forward_id(sid) != sid
    assert forward_id(sid) != forward_id(storage_id(new_token("7")))
    assert forward_id(sid) == forward_id(sid)
    assert forward_id(sid) != marker_id("7", NOW)


async def test_a_forward_leads_to_its_successor_within_the_grace_only() -> None:
    """Until ``now + grace`` by the caller's clock, whatever the store's says."""
    store = MemoryStore(clock=clock)
    await store.create(forward_id("old"), forward_record("new", NOW, GRACE))
    assert await successor_of(store, "old", NOW) == Forward("new", None)
    assert await successor_of(store, "old", NOW + GRACE - 0.001) == Forward("new", None)
    # The middleware's clock decides too: a store whose clock lags cannot stretch the grace.
    assert await successor_of(store, "old", NOW + GRACE) is None
    assert await successor_of(store, "other", NOW) is None


async def test_a_forward_is_not_a_session_of_anyone() -> None:
    """Anonymous, kept for the grace only, and not listed among any user's sessions."""
    forward = forward_record("new", NOW, GRACE)
    assert forward.user_id is None
    assert forward.expires == NOW + GRACE
    store = MemoryStore(clock=clock)
    await store.create(forward_id("old"), forward)
    assert (await store.list_user("7")).sessions == []


async def test_a_repointed_forward_leads_to_the_new_successor() -> None:
    """The update a renewal that won the race writes over the loser's forward."""
    store = MemoryStore(clock=clock)
    await store.create(forward_id("old"), forward_record("lost", NOW, GRACE))
    assert await store.update(forward_id("old"), forward_update("won", NOW, GRACE))
    assert await successor_of(store, "old", NOW) == Forward("won", None)


async def test_a_record_that_is_not_a_forward_leads_nowhere() -> None:
    """A login's record, or one without a successor, under a forward's id leads nowhere."""
    store = MemoryStore(clock=clock)
    login = SessionRecord(
        data={"to": "new"}, created=NOW, seen=NOW, issued=NOW, expires=NOW + 60, user_id="7"
    )
    await store.create(forward_id("a"), login)
    await store.create(
        forward_id("b"), msgspec.structs.replace(forward_record("new", NOW, GRACE), data={})
    )
    assert await successor_of(store, "a", NOW) is None
    assert await successor_of(store, "b", NOW) is None


async def test_a_login_s_forward_names_its_lineage() -> None:
    """A renewed login's forward carries its user and start, for a logout that finds no record."""
    store = MemoryStore(clock=clock)
    renewed = SessionRecord(
        data={}, created=NOW - 500.25, seen=NOW, issued=NOW, expires=NOW + 60, user_id="7"
    )
    await store.create(forward_id("old"), forward_record("new", NOW, GRACE, renewed))
    assert await successor_of(store, "old", NOW) == Forward(
        "new", Lineage("new", "7", NOW - 500.25)
    )
