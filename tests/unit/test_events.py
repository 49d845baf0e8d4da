"""The Authenticator's typed events: one per action, with its fields, to its subscribers and log."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from sessionauth.auth.authenticator import Authenticator
from sessionauth.auth.event_hub import LOG_FIELD_NAMES, EventHub, log_fields
from sessionauth.auth.events import (
    AccountDisabled,
    AccountEnabled,
    AccountEvent,
    AuthEvent,
    LoggedOut,
    LoginFailed,
    LoginSucceeded,
    LoginThrottled,
    PasswordChanged,
    PasswordChangeFailed,
    PasswordReset,
    RoleChanged,
    SessionRevoked,
    SessionsRevoked,
    UserCreated,
    UserDeleted,
)
from sessionauth.auth.passwords import PasswordHasher
from sessionauth.auth.throttle import LoginThrottle
from sessionauth.commit_plan import Lineage
from sessionauth.errors import (
    AdminLockout,
    InvalidCredentials,
    SessionNotFound,
    TooManyAttempts,
)
from sessionauth.lineage import end_lineage, marker_id
from sessionauth.record import SessionRecord
from sessionauth.server.log_format import EVENT_FIELDS
from sessionauth.session import Session
from sessionauth.stores.memory import MemoryCounter, MemoryStore
from sessionauth.stores.users import User
from tests.support.backends import user_store
from tests.support.clock import FakeClock

PASSWORD = "correct horse battery"
NEW_PASSWORD = "another fine passphrase"
ADDRESS = "198.51.100.7"
ALL_EVENTS = (
    LoginSucceeded,
    LoginFailed,
    LoginThrottled,
    LoggedOut,
    PasswordChanged,
    PasswordChangeFailed,
    SessionRevoked,
    SessionsRevoked,
    UserCreated,
    RoleChanged,
    PasswordReset,
    AccountDisabled,
    AccountEnabled,
    UserDeleted,
)


@dataclass
class World:
    """An Authenticator over SQLite users and a memory store, and every event it published."""

    auth: Authenticator
    memory: MemoryStore
    clock: FakeClock
    events: list[AuthEvent]

    async def user(self, email: str, role: str = "user") -> User:
        """Create an account without publishing anything (straight into the user store)."""
        return await self.auth.users.create(email, await self.auth.hasher.hash(PASSWORD), role)

    async def session_of(self, user: User, n: int = 1) -> list[str]:
        """Store ``n`` live sessions of ``user``; return their handles."""
        now = self.clock()
        handles = [f"{user.id}-{len(self.memory)}-{i}" for i in range(n)]
        for handle in handles:
            record = SessionRecord(
                data={"role": user.role},
                created=now,
                seen=now,
                issued=now,
                expires=now + 3600,
                user_id=str(user.id),
            )
            await self.memory.create(handle, record)
        return handles

    def published(self) -> list[AuthEvent]:
        """The events published since the last call."""
        out = list(self.events)
        self.events.clear()
        return out


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    clock = FakeClock()
    events: list[AuthEvent] = []
    memory = MemoryStore(clock=clock)
    async with user_store(f"sqlite:///{tmp_path / 'users.db'}", clock=clock) as users:
        auth = Authenticator(
            users=users,
            sessions=memory,
            hasher=PasswordHasher.for_tests(),
            throttle=LoginThrottle(MemoryCounter(clock), clock=clock),
            clock=clock,
            hooks=[events.append],
        )
        yield World(auth, memory, clock, events)


# -- logins ---------------------------------------------------------------------------------


async def test_a_login_publishes_login_succeeded_once(world: World) -> None:
    """authenticate + login: one LoginSucceeded with the user and the address."""
    alice = await world.user("alice@example.com")
    user = await world.auth.authenticate("alice@example.com", PASSWORD, address=ADDRESS)
    await world.auth.login(Session(), user, address=ADDRESS, user_agent="ua")
    assert world.published() == [LoginSucceeded(user_id=alice.id, address=ADDRESS)]


async def test_a_wrong_password_publishes_login_failed_with_its_reason(world: World) -> None:
    """A wrong password: one LoginFailed, reason password, and nothing else."""
    alice = await world.user("alice@example.com")
    with pytest.raises(InvalidCredentials):
        await world.auth.authenticate("alice@example.com", "wrong password", address=ADDRESS)
    assert world.published() == [LoginFailed(user_id=alice.id, address=ADDRESS, reason="password")]


async def test_a_throttled_login_publishes_login_throttled_with_the_wait(world: World) -> None:
    """The sixth failure in the window: one LoginThrottled carrying the 429's Retry-After."""
    await world.user("alice@example.com")
    for _ in range(5):
        with pytest.raises(InvalidCredentials):
            await world.auth.authenticate("alice@example.com", "wrong password", address=ADDRESS)
    world.published()
    with pytest.raises(TooManyAttempts) as refused:
        await world.auth.authenticate("alice@example.com", PASSWORD, address=ADDRESS)
    assert world.published() == [
        LoginThrottled(
            user_id=None, address=ADDRESS, retry_after=refused.value.retry_after, during="login"
        )
    ]
    assert refused.value.retry_after == 900


async def test_a_logout_publishes_logged_out(world: World) -> None:
    """logout: one LoggedOut naming the user who left."""
    alice = await world.user("alice@example.com")
    session = Session(handle="h", user_id=str(alice.id))
    await world.auth.logout(session, address=ADDRESS)
    assert world.published() == [LoggedOut(user_id=alice.id, address=ADDRESS)]


# -- passwords ------------------------------------------------------------------------------


async def test_a_password_change_publishes_the_change_and_the_revocation(world: World) -> None:
    """change_password: PasswordChanged, then SessionsRevoked counting the other sessions."""
    alice = await world.user("alice@example.com")
    mine, *_ = await world.session_of(alice, 3)
    session = Session(handle=mine, user_id=str(alice.id))
    revoked = await world.auth.change_password(session, PASSWORD, NEW_PASSWORD, address=ADDRESS)
    assert revoked == 2
    assert world.published() == [
        PasswordChanged(user_id=alice.id, address=ADDRESS),
        SessionsRevoked(
            user_id=alice.id, address=ADDRESS, count=2, why="password-changed", actor=alice.id
        ),
    ]


async def test_a_wrong_current_password_is_not_a_failed_login(world: World) -> None:
    """A wrong current password: PasswordChangeFailed; five of them throttle the next check."""
    alice = await world.user("alice@example.com")
    session = Session(handle="h", user_id=str(alice.id))
    for _ in range(5):
        with pytest.raises(InvalidCredentials):
            await world.auth.change_password(session, "wrong one", NEW_PASSWORD, address=ADDRESS)
    assert world.published() == [PasswordChangeFailed(user_id=alice.id, address=ADDRESS)] * 5
    with pytest.raises(TooManyAttempts):
        await world.auth.change_password(session, PASSWORD, NEW_PASSWORD, address=ADDRESS)
    [throttled] = world.published()
    assert isinstance(throttled, LoginThrottled)
    assert (throttled.user_id, throttled.during) == (alice.id, "password-change")


async def test_an_admin_password_reset_publishes_reset_and_revocation(world: World) -> None:
    """set_password: PasswordReset by the actor, then SessionsRevoked of every session."""
    alice = await world.user("alice@example.com")
    await world.session_of(alice, 2)
    assert await world.auth.set_password(alice.id, NEW_PASSWORD, actor=7) == 2
    assert world.published() == [
        PasswordReset(user_id=alice.id, actor=7),
        SessionsRevoked(user_id=alice.id, count=2, why="password-reset", actor=7),
    ]


# -- sessions -------------------------------------------------------------------------------


async def test_revoking_one_session_publishes_session_revoked(world: World) -> None:
    """By its owner (actor: the owner) or by handle from the CLI (actor: None)."""
    alice = await world.user("alice@example.com")
    first, second = await world.session_of(alice, 2)
    await world.auth.revoke_session(alice.id, first, address=ADDRESS)
    await world.auth.revoke_handle(second)
    assert world.published() == [
        SessionRevoked(user_id=alice.id, address=ADDRESS, actor=alice.id),
        SessionRevoked(user_id=alice.id, actor=None),
    ]
    assert await world.auth.count_sessions(alice.id) == 0


async def test_bulk_revocations_publish_sessions_revoked_with_count_and_why(world: World) -> None:
    """Sign out the others (why others), then an admin's sign out everywhere (why admin)."""
    alice = await world.user("alice@example.com")
    mine, *_ = await world.session_of(alice, 3)
    session = Session(handle=mine, user_id=str(alice.id))
    assert await world.auth.revoke_other_sessions(session, address=ADDRESS) == 2
    assert await world.auth.revoke_all_sessions(alice.id, actor=9) == 1
    assert world.published() == [
        SessionsRevoked(user_id=alice.id, address=ADDRESS, count=2, why="others", actor=alice.id),
        SessionsRevoked(user_id=alice.id, count=1, why="admin", actor=9),
    ]


# -- administration -------------------------------------------------------------------------


async def test_account_administration_publishes_one_event_per_change(world: World) -> None:
    """Create, role change, disable, enable, delete: each its event, with the actor."""
    admin = await world.user("root@example.com", role="admin")
    bob = await world.auth.create_user("bob@example.com", PASSWORD, actor=admin.id)
    await world.auth.set_role(bob.id, "admin", actor=admin.id)
    await world.session_of(bob, 1)
    await world.auth.set_disabled(bob.id, True, actor=admin.id)
    await world.auth.set_disabled(bob.id, False, actor=admin.id)
    await world.session_of(bob, 2)
    await world.auth.delete_user(bob.id, actor=admin.id)
    assert world.published() == [
        UserCreated(user_id=bob.id, role="user", actor=admin.id),
        RoleChanged(user_id=bob.id, role="admin", actor=admin.id),
        AccountDisabled(user_id=bob.id, actor=admin.id),
        SessionsRevoked(user_id=bob.id, count=1, why="disabled", actor=admin.id),
        AccountEnabled(user_id=bob.id, actor=admin.id),
        UserDeleted(user_id=bob.id, actor=admin.id),
        SessionsRevoked(user_id=bob.id, count=2, why="deleted", actor=admin.id),
    ]


async def test_enabling_an_enabled_account_publishes_nothing(world: World) -> None:
    """Only a change is an event: enabling an account that is enabled leaves no audit line."""
    bob = await world.user("bob@example.com")
    await world.auth.set_disabled(bob.id, False, actor=9)
    assert world.published() == []
    assert not (await world.auth.get_user(bob.id)).disabled


async def test_a_refused_change_publishes_nothing(world: World) -> None:
    """Demoting, disabling or deleting the last admin is refused, and no event claims it."""
    admin = await world.user("root@example.com", role="admin")
    with pytest.raises(AdminLockout):
        await world.auth.set_role(admin.id, "user")
    with pytest.raises(AdminLockout):
        await world.auth.set_disabled(admin.id, True)
    with pytest.raises(AdminLockout):
        await world.auth.delete_user(admin.id)
    assert world.published() == []


# -- subscriptions and the log --------------------------------------------------------------


async def test_subscribers_get_only_the_types_they_asked_for() -> None:
    """A LoginFailed hook sees no login; an AccountEvent hook sees every account change."""
    hub = EventHub()
    failures: list[LoginFailed] = []
    changes: list[AccountEvent] = []

    async def on_change(event: AccountEvent) -> None:
        changes.append(event)

    hub.subscribe(LoginFailed, failures.append)
    hub.subscribe(AccountEvent, on_change)
    failed = LoginFailed(user_id=None, address=ADDRESS, reason="unknown")
    created = UserCreated(user_id=1, role="user", actor=None)
    deleted = UserDeleted(user_id=1, actor=None)
    for event in (LoginSucceeded(user_id=1), failed, created, deleted):
        await hub.publish(event)
    assert failures == [failed]
    assert changes == [created, deleted]


async def test_each_event_is_one_security_log_line_with_its_fields(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The log line carries the event's name, level and every field as extra."""
    caplog.set_level(logging.INFO, logger="sessionauth.security")
    event = SessionsRevoked(user_id=4, address=ADDRESS, count=3, why="disabled", actor=1)
    await EventHub().publish(event)
    [record] = caplog.records
    assert record.name == "sessionauth.security"
    assert record.levelno == logging.WARNING
    assert record.getMessage() == (
        f"sessions_revoked user=4 address={ADDRESS} count=3 why=disabled actor=1"
    )
    fields = {k: record.__dict__[k] for k in ("event", "user", "address", "count", "why", "actor")}
    assert fields == {
        "event": "sessions_revoked",
        "user": 4,
        "address": ADDRESS,
        "count": 3,
        "why": "disabled",
        "actor": 1,
    }


def test_every_event_field_reaches_json_logs() -> None:
    """Each field of each event has a name the JSON formatter copies, and each name is unique."""
    names = {event.name for event in ALL_EVENTS}
    assert len(names) == len(ALL_EVENTS)
    for event in ALL_EVENTS:
        for field in dataclasses.fields(event):
            assert LOG_FIELD_NAMES.get(field.name, field.name) in EVENT_FIELDS, field.name


def test_log_fields_name_the_user_as_before() -> None:
    """``user_id`` is logged as ``user``, the name JSON pipelines already filter on."""
    event = LoginFailed(user_id=5, address=ADDRESS, reason="disabled")
    assert log_fields(event) == {
        "event": "login_failed",
        "user": 5,
        "address": ADDRESS,
        "reason": "disabled",
    }


@pytest.mark.parametrize("kind", ["anonymous", "marker"])
async def test_revoking_by_handle_leaves_records_of_no_user_alone(world: World, kind: str) -> None:
    """An anonymous record or an ended lineage's marker is no session to revoke: not found."""
    now = world.clock()
    handle = "anonymous-session" if kind == "anonymous" else marker_id("1", now)
    if kind == "anonymous":
        await world.memory.create(
            handle, SessionRecord(data={}, created=now, seen=now, issued=now, expires=now + 60)
        )
    else:
        await end_lineage(world.memory, Lineage("gone", "1", now), now, 3600)
    with pytest.raises(SessionNotFound):
        await world.auth.revoke_handle(handle)
    assert await world.memory.load(handle) is not None
    assert world.published() == []
