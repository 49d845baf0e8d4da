"""The session-store contract: one suite, every backend, each over its real server."""

from __future__ import annotations

import asyncio
import secrets
from typing import Any

import pytest

from sessionauth.principal import PrincipalChange
from sessionauth.record import RecordUpdate, SessionRecord
from sessionauth.tokens import new_token, storage_id
from tests.contract.harness import Harness
from tests.support.clock import FakeClock
from tests.support.records import sign_in

DAY = 86400.0


def make_record(
    clock: FakeClock, *, user: str | None = None, ttl: float = DAY, **data: Any
) -> SessionRecord:
    now = clock()
    return SessionRecord(
        data=dict(data),
        created=now,
        seen=now,
        issued=now,
        expires=now + ttl,
        user_id=user,
        meta={"ip": "127.0.0.1", "ua": "pytest"},
    )


def new_sid(user: str | None = None) -> str:
    # A logged-in session's id comes from a token made for its user (tokens.new_token).
    return storage_id(new_token(user))


def new_user() -> str:
    # Unique per test: stores are shared across a run, users must not collide.
    return f"user-{secrets.token_hex(6)}"


def update(
    clock: FakeClock, *, ttl: float = DAY, delete: tuple[str, ...] = (), **values: Any
) -> RecordUpdate:
    return RecordUpdate(set=values, delete=delete, seen=clock(), expires=clock() + ttl)


def change(**fields: Any) -> PrincipalChange:
    return PrincipalChange(fallback_role="user", fallback_disabled=False, **fields)


async def listed(harness: Harness, user: str) -> list[str]:
    """The handles of every live session of ``user``, newest first, across all pages."""
    handles: list[str] = []
    cursor = None
    while True:
        page = await harness.store.list_user(user, limit=2, cursor=cursor)
        handles += [handle for handle, _ in page.sessions]
        if page.next_cursor is None:
            return handles
        cursor = page.next_cursor


async def test_create_then_load_round_trips_every_field(harness: Harness, clock: FakeClock) -> None:
    """A created record loads back with its values, user, timestamps and meta intact."""
    user = new_user()
    sid = new_sid(user)
    values: dict[str, Any] = {
        "userId": 1,
        "role": "admin",
        "ratio": 0.25,
        "flag": True,
        "nothing": None,
        "cart": [1, "two", {"three": 3}],
        "nested": {"a": {"b": [True, None]}},
        "unicode ключ ✓": "значение ✓",
        'odd."$[key]': "dots, quotes and brackets in keys",
    }
    record = make_record(clock, user=user, **values)
    principal = await sign_in(harness.store, sid, record, role="admin")
    loaded = await harness.store.load(sid)
    assert loaded is not None
    assert loaded.data == values
    assert loaded.user_id == user
    assert (loaded.epoch, loaded.principal) == (principal.epoch, principal)
    assert loaded.meta == {"ip": "127.0.0.1", "ua": "pytest"}
    assert loaded.created == pytest.approx(record.created, abs=1e-3)
    assert loaded.seen == pytest.approx(record.seen, abs=1e-3)
    assert loaded.issued == pytest.approx(record.issued, abs=1e-3)
    assert loaded.expires == pytest.approx(record.expires, abs=1e-3)


async def test_anonymous_record_has_no_user(harness: Harness, clock: FakeClock) -> None:
    """A record without a user loads with user_id None and is in no user's index."""
    sid = new_sid()
    await harness.store.create(sid, make_record(clock, theme="dark"))
    loaded = await harness.store.load(sid)
    assert loaded is not None
    assert (loaded.user_id, loaded.epoch, loaded.principal) == (None, None, None)
    assert loaded.data == {"theme": "dark"}


async def test_load_of_unknown_id_is_none(harness: Harness) -> None:
    """Loading an id that was never stored returns None."""
    assert await harness.store.load(new_sid()) is None


async def test_update_merges_changed_keys_and_deletes_removed_ones(
    harness: Harness, clock: FakeClock
) -> None:
    """update writes only the given keys: others stay, deleted ones go, seen/expires move."""
    sid = new_sid()
    await harness.store.create(sid, make_record(clock, a=1, b=2, c=3))
    clock.advance(120)
    assert await harness.store.update(sid, update(clock, delete=("b",), a=10, d=[4]))
    loaded = await harness.store.load(sid)
    assert loaded is not None
    assert loaded.data == {"a": 10, "c": 3, "d": [4]}
    assert loaded.seen == pytest.approx(clock(), abs=1e-3)
    assert loaded.expires == pytest.approx(clock() + DAY, abs=1e-3)


async def test_update_can_store_none_and_delete_missing_keys(
    harness: Harness, clock: FakeClock
) -> None:
    """Setting a key to None keeps the key; deleting a key that is not there is harmless."""
    sid = new_sid()
    await harness.store.create(sid, make_record(clock, a=1))
    assert await harness.store.update(sid, update(clock, delete=("ghost",), a=None))
    loaded = await harness.store.load(sid)
    assert loaded is not None
    assert loaded.data == {"a": None}


async def test_update_of_missing_record_does_not_create_it(
    harness: Harness, clock: FakeClock
) -> None:
    """update on an id with no record reports False and leaves nothing behind."""
    sid = new_sid()
    assert await harness.store.update(sid, update(clock, a=1)) is False
    assert await harness.store.load(sid) is None


async def test_touch_moves_seen_and_expiry_only(harness: Harness, clock: FakeClock) -> None:
    """touch extends the record's life without changing its values."""
    sid = new_sid()
    await harness.store.create(sid, make_record(clock, ttl=100, a=1))
    clock.advance(90)
    assert await harness.store.touch(sid, seen=clock(), expires=clock() + 100)
    clock.advance(90)  # past the original expiry, within the extended one
    loaded = await harness.store.load(sid)
    assert loaded is not None
    assert loaded.data == {"a": 1}
    assert loaded.seen == pytest.approx(clock() - 90, abs=1e-3)


async def test_touch_of_missing_record_does_not_create_it(
    harness: Harness, clock: FakeClock
) -> None:
    """touch on an id with no record reports False and leaves nothing behind."""
    sid = new_sid()
    assert await harness.store.touch(sid, seen=clock(), expires=clock() + 100) is False
    assert await harness.store.load(sid) is None


async def test_delete_is_idempotent_and_leaves_the_index(
    harness: Harness, clock: FakeClock
) -> None:
    """delete removes the record and its index entry; deleting again is harmless."""
    user = new_user()
    sid = new_sid(user)
    await sign_in(harness.store, sid, make_record(clock, user=user))
    assert await harness.store.delete(sid) is True
    assert await harness.store.delete(sid) is False  # a rotation reads this: nothing was there
    assert await harness.store.load(sid) is None
    assert await listed(harness, user) == []
    anonymous = new_sid()
    await harness.store.create(anonymous, make_record(clock))
    assert await harness.store.delete(anonymous) is True
    assert await harness.store.delete(anonymous) is False


async def test_expired_record_is_no_session_anywhere(harness: Harness, clock: FakeClock) -> None:
    """Past its expiry a record is not loaded, updated, touched, listed or counted as revoked."""
    user = new_user()
    sid = new_sid(user)
    await sign_in(harness.store, sid, make_record(clock, user=user, ttl=60, a=1))
    clock.advance(60)
    assert await harness.store.load(sid) is None
    assert await harness.store.update(sid, update(clock, a=2)) is False
    assert await harness.store.touch(sid, seen=clock(), expires=clock() + DAY) is False
    assert await listed(harness, user) == []
    assert (await harness.store.change_principal(user, change(rotate=True)))[1] == 0
    assert await harness.store.load(sid) is None


async def test_list_user_returns_live_sessions_newest_first(
    harness: Harness, clock: FakeClock
) -> None:
    """list_user gives each live session of that user once, with its handle, newest first."""
    user, other = new_user(), new_user()
    sids = []
    for n in range(3):
        sid = new_sid(user)
        sids.append(sid)
        await sign_in(harness.store, sid, make_record(clock, user=user, n=n))
        clock.advance(1)
    await sign_in(harness.store, new_sid(other), make_record(clock, user=other))
    page = await harness.store.list_user(user)
    assert [handle for handle, _ in page.sessions] == sids[::-1]
    assert [record.data["n"] for _, record in page.sessions] == [2, 1, 0]
    assert all(record.user_id == user for _, record in page.sessions)
    assert all(record.principal is not None for _, record in page.sessions)
    assert page.next_cursor is None


async def test_a_rotation_removes_all_sessions_of_that_user_only(
    harness: Harness, clock: FakeClock
) -> None:
    """A rotation revokes every session of the user and none of anyone else's."""
    user, other = new_user(), new_user()
    mine = [new_sid(user) for _ in range(3)]
    theirs = new_sid(other)
    for sid in mine:
        await sign_in(harness.store, sid, make_record(clock, user=user))
    await sign_in(harness.store, theirs, make_record(clock, user=other))
    assert (await harness.store.change_principal(user, change(rotate=True)))[1] == 3
    assert [await harness.store.load(sid) for sid in mine] == [None, None, None]
    assert await listed(harness, user) == []
    assert await harness.store.load(theirs) is not None


async def test_a_rotation_can_keep_the_current_session(harness: Harness, clock: FakeClock) -> None:
    """A rotation keeping one session revokes the others and leaves that one alive."""
    user = new_user()
    current, *others = [new_sid(user) for _ in range(4)]
    for sid in (current, *others):
        await sign_in(harness.store, sid, make_record(clock, user=user))
    assert (await harness.store.change_principal(user, change(rotate=True, keep=current)))[1] == 3
    assert await listed(harness, user) == [current]
    assert all([await harness.store.load(sid) is None for sid in others])


async def test_a_role_change_reaches_every_live_session(harness: Harness, clock: FakeClock) -> None:
    """A role change applies to all of the user's sessions at once, others' untouched."""
    user, other = new_user(), new_user()
    mine = [new_sid(user) for _ in range(3)]
    theirs = new_sid(other)
    for sid in mine:
        await sign_in(harness.store, sid, make_record(clock, user=user, keep="me"))
    await sign_in(harness.store, theirs, make_record(clock, user=other))
    assert await harness.store.change_principal(user, change(role="admin")) == (
        await harness.store.principal(user),
        0,
    )
    for sid in mine:
        loaded = await harness.store.load(sid)
        assert loaded is not None
        assert loaded.principal is not None
        assert (loaded.principal.role, loaded.data) == ("admin", {"keep": "me"})
    theirs_loaded = await harness.store.load(theirs)
    assert theirs_loaded is not None
    assert theirs_loaded.principal is not None
    assert theirs_loaded.principal.role == "user"


async def test_a_principal_change_does_not_revive_deleted_sessions(
    harness: Harness, clock: FakeClock
) -> None:
    """Changing the principal after a session's deletion leaves that session deleted."""
    user = new_user()
    sid = new_sid(user)
    await sign_in(harness.store, sid, make_record(clock, user=user))
    await harness.store.delete(sid)
    assert (await harness.store.change_principal(user, change(role="admin")))[1] == 0
    assert (await harness.store.change_principal(user, change(rotate=True)))[1] == 0
    assert await harness.store.load(sid) is None


async def test_purge_expired_removes_only_dead_records(harness: Harness, clock: FakeClock) -> None:
    """purge_expired deletes expired records (in batches) and never a live one."""
    user = new_user()
    dead = [new_sid(user) for _ in range(7)]
    alive = new_sid(user)
    for sid in dead:
        await sign_in(harness.store, sid, make_record(clock, user=user, ttl=30))
    await sign_in(harness.store, alive, make_record(clock, user=user, ttl=DAY))
    clock.advance(31)
    purged = await harness.store.purge_expired(batch_size=3)
    if harness.expires_by_itself:
        assert purged == 0  # the backend's TTL does this work
    else:
        assert purged >= len(dead)  # other tests' leftovers in a shared table may go too
    assert await listed(harness, user) == [alive]
    assert await harness.store.load(alive) is not None


async def test_undecodable_record_is_no_session(byte_harness: Harness, clock: FakeClock) -> None:
    """Bytes that no codec accepts make load return None, never raise."""
    sid = new_sid()
    await byte_harness.store.create(sid, make_record(clock, a=1))
    assert byte_harness.corrupt is not None
    await byte_harness.corrupt(sid)
    assert await byte_harness.store.load(sid) is None


@pytest.mark.parametrize("owner", ["user", None], ids=["logged-in", "anonymous"])
async def test_a_record_of_version_1_is_no_session(
    byte_harness: Harness, clock: FakeClock, owner: str | None
) -> None:
    """A record as sessionauth 0.1 wrote it (no version, no epoch) loads as None, quietly.

    Its user must sign in again; nothing raises, and the record is neither listed nor served
    even when the user has a principal.
    """
    assert byte_harness.write_v1 is not None
    user = new_user() if owner else None
    sid = new_sid(user)
    if user is not None:
        await sign_in(byte_harness.store, new_sid(user), make_record(clock, user=user))
    await byte_harness.write_v1(sid, make_record(clock, user=user, role="admin"))
    assert await byte_harness.store.load(sid) is None
    if user is not None:
        assert sid not in await listed(byte_harness, user)


@pytest.mark.parametrize("owner", ["user", None], ids=["logged-in", "anonymous"])
async def test_a_record_moved_under_another_id_is_no_session(
    byte_harness: Harness, clock: FakeClock, owner: str | None, caplog: pytest.LogCaptureFixture
) -> None:
    """One session's stored bytes under another's id load as nothing and list nowhere.

    A record is bound to the id it was stored under; the mismatch is logged with the id.
    """
    store, transplant = byte_harness.store, byte_harness.transplant
    assert transplant is not None
    mine_user = new_user() if owner else None
    theirs_user = new_user() if owner else None
    mine, theirs = new_sid(mine_user), new_sid(theirs_user)
    for sid, user, role in ((mine, mine_user, "admin"), (theirs, theirs_user, "user")):
        if user is None:
            await store.create(sid, make_record(clock, role=role))
        else:
            await sign_in(store, sid, make_record(clock, user=user, role=role))
    await transplant(mine, theirs)
    with caplog.at_level("ERROR", logger="sessionauth.stores"):
        assert await store.load(theirs) is None
    assert [record.getMessage() for record in caplog.records if theirs in record.getMessage()]
    loaded = await store.load(mine)
    assert loaded is not None
    assert loaded.data == {"role": "admin"}
    if mine_user is not None and theirs_user is not None:
        assert await listed(byte_harness, mine_user) == [mine]
        assert await listed(byte_harness, theirs_user) == []


async def test_fifty_concurrent_writers_of_different_keys_all_persist(
    harness: Harness, clock: FakeClock
) -> None:
    """50 concurrent updates, each setting its own key of one session, leave all 50 keys."""
    sid = new_sid()
    await harness.store.create(sid, make_record(clock, base=0))
    results = await asyncio.gather(
        *(harness.store.update(sid, update(clock, **{f"k{n}": n})) for n in range(50))
    )
    assert all(results)
    loaded = await harness.store.load(sid)
    assert loaded is not None
    assert loaded.data == {"base": 0, **{f"k{n}": n for n in range(50)}}


async def test_writes_racing_a_delete_never_revive_the_session(
    harness: Harness, clock: FakeClock
) -> None:
    """Updates and touches racing a delete, repeated 100 times, never bring the record back."""
    user = new_user()
    for _ in range(100):
        sid = new_sid(user)
        await sign_in(harness.store, sid, make_record(clock, user=user, a=0))
        await asyncio.gather(
            harness.store.update(sid, update(clock, a=1)),
            harness.store.delete(sid),
            harness.store.touch(sid, seen=clock(), expires=clock() + DAY),
            harness.store.update(sid, update(clock, b=2)),
        )
        assert await harness.store.load(sid) is None
    assert await listed(harness, user) == []


async def test_revocation_racing_writes_never_revives_sessions(
    harness: Harness, clock: FakeClock
) -> None:
    """A rotation racing per-session writes leaves the user with no session."""
    user = new_user()
    sids = [new_sid(user) for _ in range(10)]
    for sid in sids:
        await sign_in(harness.store, sid, make_record(clock, user=user, a=0))
    await asyncio.gather(
        harness.store.change_principal(user, change(rotate=True)),
        *(harness.store.update(sid, update(clock, a=1)) for sid in sids),
        *(harness.store.touch(sid, seen=clock(), expires=clock() + DAY) for sid in sids),
    )
    assert [await harness.store.load(sid) for sid in sids] == [None] * 10
    assert await listed(harness, user) == []


async def test_ping_answers_when_the_backend_is_up(harness: Harness) -> None:
    """ping returns quietly against a live backend, also when asked several times at once."""
    assert await asyncio.gather(*(harness.store.ping() for _ in range(3))) == [None] * 3
