"""The authorization-state contract: principals, create-if-current, cap, pages; every backend."""

from __future__ import annotations

import asyncio
import secrets

import pytest

from sessionauth.backends.sql_sessions import encode_cursor
from sessionauth.errors import SessionExists, StaleLogin
from sessionauth.principal import Principal, PrincipalChange, new_epoch
from sessionauth.record import SessionRecord
from sessionauth.stores.base import DEFAULT_MAX_SESSIONS
from sessionauth.tokens import new_token, storage_id
from tests.contract.harness import Harness
from tests.support.clock import FakeClock

DAY = 86400.0


def new_user() -> str:
    # Unique per test: stores are shared across a run, users must not collide.
    return str(secrets.randbelow(2**62) + 1)


def new_sid(user: str | None) -> str:
    return storage_id(new_token(user))


def make_record(
    clock: FakeClock, user: str | None, epoch: str | None, **data: object
) -> SessionRecord:
    now = clock()
    return SessionRecord(
        data=dict(data),
        created=now,
        seen=now,
        issued=now,
        expires=now + DAY,
        user_id=user,
        meta={"ip": "127.0.0.1"},
        epoch=epoch,
    )


def change(**fields: object) -> PrincipalChange:
    return PrincipalChange(fallback_role="user", fallback_disabled=False, **fields)  # type: ignore[arg-type]


async def signed_in(harness: Harness, clock: FakeClock, user: str, role: str = "user") -> str:
    """Install the user's principal (if missing) and store one session under its epoch."""
    principal = await harness.store.install_principal(
        user, Principal(epoch=new_epoch(), role=role, disabled=False)
    )
    sid = new_sid(user)
    await harness.store.create(sid, make_record(clock, user, principal.epoch, cart=[1]))
    return sid


async def test_a_loaded_session_carries_its_principal(harness: Harness, clock: FakeClock) -> None:
    """load returns a user's record with the principal read alongside it."""
    user = new_user()
    sid = await signed_in(harness, clock, user, role="admin")
    loaded = await harness.store.load(sid)
    assert loaded is not None
    assert loaded.principal is not None
    assert (loaded.principal.role, loaded.principal.disabled) == ("admin", False)
    assert loaded.epoch == loaded.principal.epoch
    assert loaded.data == {"cart": [1]}


async def test_create_answers_the_principal_in_force(harness: Harness, clock: FakeClock) -> None:
    """create returns the principal it checked the epoch against; None for an anonymous record."""
    user = new_user()
    principal = await harness.store.install_principal(
        user, Principal(epoch=new_epoch(), role="admin")
    )
    answered = await harness.store.create(new_sid(user), make_record(clock, user, principal.epoch))
    assert answered == principal
    assert await harness.store.create(new_sid(None), make_record(clock, None, None, a=1)) is None


async def test_no_principal_no_session(harness: Harness, clock: FakeClock) -> None:
    """A user's record cannot be created without a principal, and nothing is written."""
    user = new_user()
    sid = new_sid(user)
    with pytest.raises(StaleLogin):
        await harness.store.create(sid, make_record(clock, user, new_epoch()))
    assert await harness.store.load(sid) is None
    assert (await harness.store.list_user(user)).sessions == []


async def test_a_stale_epoch_is_refused(harness: Harness, clock: FakeClock) -> None:
    """create under an epoch the principal no longer has raises StaleLogin and writes nothing."""
    user = new_user()
    old = await harness.store.install_principal(user, Principal(epoch=new_epoch(), role="user"))
    await harness.store.change_principal(user, change(rotate=True))
    sid = new_sid(user)
    with pytest.raises(StaleLogin):
        await harness.store.create(sid, make_record(clock, user, old.epoch))
    assert await harness.store.load(sid) is None


async def test_a_disabled_principal_takes_no_session(harness: Harness, clock: FakeClock) -> None:
    """create for a disabled principal raises StaleLogin even with its current epoch."""
    user = new_user()
    await harness.store.install_principal(user, Principal(epoch=new_epoch(), role="user"))
    principal, _ = await harness.store.change_principal(user, change(disabled=True))
    with pytest.raises(StaleLogin):
        await harness.store.create(new_sid(user), make_record(clock, user, principal.epoch))


async def test_a_live_id_is_never_overwritten(harness: Harness, clock: FakeClock) -> None:
    """create on the id of a live session raises SessionExists and leaves it as it was."""
    user = new_user()
    sid = await signed_in(harness, clock, user)
    loaded = await harness.store.load(sid)
    assert loaded is not None
    with pytest.raises(SessionExists):
        await harness.store.create(sid, make_record(clock, user, loaded.epoch, cart=[2]))
    anonymous = new_sid(None)
    await harness.store.create(anonymous, make_record(clock, None, None, a=1))
    with pytest.raises(SessionExists):
        await harness.store.create(anonymous, make_record(clock, None, None, a=2))
    again = await harness.store.load(sid)
    assert again is not None
    assert again.data == {"cart": [1]}
    other = await harness.store.load(anonymous)
    assert other is not None
    assert other.data == {"a": 1}


async def test_install_keeps_the_principal_in_force(harness: Harness) -> None:
    """install_principal stores only when none exists and returns the one in force."""
    user = new_user()
    first = Principal(epoch=new_epoch(), role="admin")
    assert await harness.store.install_principal(user, first) == first
    second = Principal(epoch=new_epoch(), role="user")
    assert await harness.store.install_principal(user, second) == first
    assert await harness.store.principal(user) == first
    assert await harness.store.principal(new_user()) is None


async def test_a_role_change_keeps_sessions_and_applies_at_once(
    harness: Harness, clock: FakeClock
) -> None:
    """A change without rotation keeps every session, which loads with the new role."""
    user = new_user()
    sid = await signed_in(harness, clock, user, role="admin")
    principal, deleted = await harness.store.change_principal(user, change(role="user"))
    assert deleted == 0
    assert principal.role == "user"
    loaded = await harness.store.load(sid)
    assert loaded is not None
    assert loaded.principal == principal


async def test_a_rotation_ends_every_session(harness: Harness, clock: FakeClock) -> None:
    """A rotation deletes the user's sessions, counts them, and gives a new epoch."""
    user = new_user()
    sids = [await signed_in(harness, clock, user) for _ in range(3)]
    before = await harness.store.principal(user)
    principal, deleted = await harness.store.change_principal(user, change(rotate=True))
    assert deleted == 3
    assert before is not None
    assert principal.epoch != before.epoch
    assert [await harness.store.load(sid) for sid in sids] == [None, None, None]
    assert (await harness.store.list_user(user)).sessions == []


async def test_a_rotation_restamps_the_kept_session(harness: Harness, clock: FakeClock) -> None:
    """The session a rotation keeps takes the new epoch and stays; the others go."""
    user = new_user()
    kept, other = await signed_in(harness, clock, user), await signed_in(harness, clock, user)
    principal, deleted = await harness.store.change_principal(user, change(rotate=True, keep=kept))
    assert deleted == 1
    loaded = await harness.store.load(kept)
    assert loaded is not None
    assert loaded.epoch == principal.epoch
    assert loaded.principal == principal
    assert loaded.data == {"cart": [1]}
    assert await harness.store.load(other) is None


async def test_disabling_serves_no_session(harness: Harness, clock: FakeClock) -> None:
    """A disabled principal's sessions load as None even before any rotation."""
    user = new_user()
    sid = await signed_in(harness, clock, user)
    await harness.store.change_principal(user, change(disabled=True))
    assert await harness.store.load(sid) is None


async def test_a_change_without_principal_starts_from_the_fallback(harness: Harness) -> None:
    """change_principal on a user without one installs the fallback with the change applied."""
    user = new_user()
    principal, deleted = await harness.store.change_principal(
        user, PrincipalChange(fallback_role="admin", fallback_disabled=False, disabled=True)
    )
    assert deleted == 0
    assert (principal.role, principal.disabled) == ("admin", True)
    assert await harness.store.principal(user) == principal


async def test_the_oldest_sessions_go_beyond_the_cap(harness: Harness, clock: FakeClock) -> None:
    """A login beyond max_sessions ends the user's oldest session, by creation."""
    user = new_user()
    sids = []
    for _ in range(DEFAULT_MAX_SESSIONS + 2):
        sids.append(await signed_in(harness, clock, user))
        clock.advance(1)
    assert await harness.store.load(sids[0]) is None
    assert await harness.store.load(sids[1]) is None
    assert await harness.store.load(sids[2]) is not None
    assert await harness.store.load(sids[-1]) is not None
    page = await harness.store.list_user(user, limit=100)
    assert len(page.sessions) == DEFAULT_MAX_SESSIONS


async def test_pages_run_newest_first_to_the_end(harness: Harness, clock: FakeClock) -> None:
    """list_user pages through every live session, newest first, then gives no cursor."""
    user = new_user()
    sids = []
    for _ in range(5):
        sids.append(await signed_in(harness, clock, user))
        clock.advance(1)
    first = await harness.store.list_user(user, limit=2)
    assert [sid for sid, _ in first.sessions] == [sids[4], sids[3]]
    assert first.next_cursor is not None
    second = await harness.store.list_user(user, limit=2, cursor=first.next_cursor)
    assert [sid for sid, _ in second.sessions] == [sids[2], sids[1]]
    assert second.next_cursor is not None
    last = await harness.store.list_user(user, limit=2, cursor=second.next_cursor)
    assert [sid for sid, _ in last.sessions] == [sids[0]]
    assert last.next_cursor is None


async def test_a_bad_cursor_gives_an_empty_last_page(harness: Harness, clock: FakeClock) -> None:
    """A malformed or foreign cursor is an empty last page, never an error."""
    user = new_user()
    await signed_in(harness, clock, user)
    forged = encode_cursor(clock(), "a\x00b")  # a well-formed SQL cursor naming a NUL id
    for cursor in ("", "garbage", "-1", "9" * 40, "\x00", "1:2:3", "\u00b2", "\u0661", forged):
        page = await harness.store.list_user(user, limit=5, cursor=cursor)
        assert (page.sessions, page.next_cursor) == ([], None), cursor


async def test_a_deleted_session_leaves_the_pages(harness: Harness, clock: FakeClock) -> None:
    """A logged-out session is neither listed nor counted against the cap."""
    user = new_user()
    gone = await signed_in(harness, clock, user)
    clock.advance(1)
    stays = await signed_in(harness, clock, user)
    await harness.store.delete(gone)
    page = await harness.store.list_user(user)
    assert [sid for sid, _ in page.sessions] == [stays]


async def test_anonymous_sessions_ignore_principals(harness: Harness, clock: FakeClock) -> None:
    """An anonymous record needs no principal and loads without one."""
    sid = new_sid(None)
    await harness.store.create(sid, make_record(clock, None, None, cart=[3]))
    loaded = await harness.store.load(sid)
    assert loaded is not None
    assert loaded.principal is None
    assert loaded.data == {"cart": [3]}


async def test_no_login_outlives_a_racing_rotation(harness: Harness, clock: FakeClock) -> None:
    """A create racing a rotation is either refused or not served: never a live stale session."""
    user = new_user()
    principal = await harness.store.install_principal(
        user, Principal(epoch=new_epoch(), role="user")
    )
    for _ in range(20):
        sid = new_sid(user)
        create = harness.store.create(sid, make_record(clock, user, principal.epoch))
        rotation = harness.store.change_principal(user, change(rotate=True))
        results = await asyncio.gather(create, rotation, return_exceptions=True)
        assert isinstance(results[0], Principal | StaleLogin)
        assert not isinstance(results[1], BaseException)
        principal = results[1][0]
        assert await harness.store.load(sid) is None


async def test_a_session_without_epoch_is_served_without_principal(
    harness: Harness, clock: FakeClock
) -> None:
    """A user's record with no epoch (set_user without the Authenticator) loads, with no rights."""
    user = new_user()
    sid = new_sid(user)
    assert await harness.store.create(sid, make_record(clock, user, None, cart=[4])) is None
    loaded = await harness.store.load(sid)
    assert loaded is not None
    assert loaded.user_id == user
    assert loaded.principal is None
    page = await harness.store.list_user(user)
    assert [listed for listed, _ in page.sessions] == [sid]
    _, ended = await harness.store.change_principal(user, change(rotate=True))
    assert ended == 1
    assert await harness.store.load(sid) is None


async def test_only_a_rotation_ends_sessions_without_epoch(
    harness: Harness, clock: FakeClock
) -> None:
    """A first principal set by a role change keeps set_user() sessions; a rotation ends them."""
    user = new_user()
    sid = new_sid(user)
    await harness.store.create(sid, make_record(clock, user, None, cart=[5]))
    principal, deleted = await harness.store.change_principal(user, change(role="admin"))
    assert deleted == 0
    assert principal.role == "admin"
    kept = await harness.store.load(sid)
    assert kept is not None
    assert kept.principal is None
    assert kept.data == {"cart": [5]}
    _, deleted = await harness.store.change_principal(user, change(rotate=True))
    assert deleted == 1
    assert await harness.store.load(sid) is None
