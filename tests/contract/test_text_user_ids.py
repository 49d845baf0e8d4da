"""Text user ids (UUIDs, "m-7f3a") through the Authenticator, on every session store.

An ``Authenticator[str]`` over a UserSource of the application's own (UUID ids, in memory) logs
in, lists and revokes sessions, applies ``principal_changed`` (also to a login racing it) and
logs out, with ``str`` ids in every answer and event. Ids that look like key separators or
hash tags (``:``, ``*``, ``{}``, ``.``) address only their own user, and ids no store can keep
are refused before they reach one.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass, replace

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from sessionauth.auth import Authenticator, Guards, PasswordHasher
from sessionauth.auth.events import AuthEvent, LoggedOut, LoginSucceeded, SessionsRevoked
from sessionauth.errors import InvalidCredentials, SessionNotFound
from sessionauth.middleware import SessionMiddleware
from sessionauth.session import Session
from sessionauth.tokens import Keyring
from tests.contract.harness import Harness
from tests.support.clock import FakeClock

PASSWORD = "correct horse battery"
KEYRING = Keyring(["t" * 40])
# Ids a careless store might read as part of a key: Redis separators and glob characters,
# Cluster hash tags, the storage id's dot, prefixes and extensions of the victim's id.
VICTIM = "u:1"
LOOKALIKES = ["u", "1", "u:", ":1", "u:1:", "u:1*", "u:*", "*", "{u:1}", "u:1.x", "U:1", "u:1 "]


@dataclass(frozen=True)
class Member:
    """An application's own user, with a text id."""

    id: str
    email: str
    role: str
    password_hash: str
    disabled: bool = False


class Members:
    """The application's users in a dict: a UserSource[Member] of text ids."""

    def __init__(self) -> None:
        self.rows: dict[str, Member] = {}

    async def get(self, user_id: str) -> Member | None:
        assert isinstance(user_id, str)  # the Authenticator hands over its user_id_type
        return self.rows.get(user_id)

    async def get_by_email(self, email: str) -> Member | None:
        return next((m for m in self.rows.values() if m.email == email), None)

    async def set_password(self, user_id: str, password_hash: str, *, replacing: str) -> bool:
        member = self.rows.get(user_id)
        if member is None or member.password_hash != replacing:
            return False
        self.rows[user_id] = replace(member, password_hash=password_hash)
        return True

    def add(self, user_id: str, role: str = "user") -> Member:
        member = Member(user_id, f"{len(self.rows)}@example.com", role, HASH)
        self.rows[user_id] = member
        return member


class GatedHasher(PasswordHasher):
    """The test hasher; when armed, the next ``verify`` waits after judging, until released."""

    gate: asyncio.Event | None = None
    entered: asyncio.Event | None = None

    async def verify(self, password: str, password_hash: str) -> tuple[bool, str | None]:
        result = await super().verify(password, password_hash)
        if self.gate is not None and self.entered is not None:
            gate, self.gate = self.gate, None
            self.entered.set()
            await gate.wait()
        return result


HASHER = GatedHasher.for_tests()
HASH = asyncio.run(HASHER.hash(PASSWORD))


@dataclass
class Env:
    """An Authenticator[str] over Members on the store under test, and what it published."""

    auth: Authenticator[str]
    members: Members
    events: list[AuthEvent]
    harness: Harness
    clock: FakeClock


@pytest.fixture
async def env(harness: Harness, clock: FakeClock) -> Env:
    members = Members()
    events: list[AuthEvent] = []

    async def hook(event: AuthEvent) -> None:
        events.append(event)

    auth = Authenticator(
        users=members,
        sessions=harness.store,
        hasher=HASHER,
        throttle=None,
        clock=clock,
        hooks=[hook],
        user_id_type=str,
    )
    return Env(auth, members, events, harness, clock)


async def _login(env: Env, member: Member) -> Session:
    session = Session()
    accepted = await env.auth.authenticate(member.email, PASSWORD, address="127.0.0.1")
    await env.auth.login(session, accepted, address="127.0.0.1", user_agent="t")
    return session


async def _role(env: Env, session: Session) -> str | None:
    assert session.handle is not None
    record = await env.harness.store.load(session.handle)
    if record is None or record.principal is None:
        return None
    return record.principal.role


async def test_uuid_ids_flow_through_login_listing_changes_and_logout(env: Env) -> None:
    """Every answer and event carries the str id; principal_changed demotes, then ends."""
    uid = str(uuid.uuid4())
    member = env.members.add(uid, role="admin")
    first, second = await _login(env, member), await _login(env, member)
    assert env.auth.session_user_id(first) == uid
    listing = await env.auth.list_sessions(uid, current=first.handle)
    assert {s.handle for s in listing.sessions} == {first.handle, second.handle}
    assert await env.auth.count_sessions(uid) == 2
    assert [type(e.user_id) for e in env.events if isinstance(e, LoginSucceeded)] == [str, str]

    env.members.rows[uid] = replace(member, role="user")
    assert await _role(env, first) == "admin"  # the documented window, until told
    assert await env.auth.principal_changed(uid, end_sessions=False) == 0
    assert (await _role(env, first), await _role(env, second)) == ("user", "user")
    assert await env.auth.principal_changed(uid, end_sessions=True) == 2
    assert await env.auth.count_sessions(uid) == 0
    revoked = [e for e in env.events if isinstance(e, SessionsRevoked)]
    assert [(e.user_id, e.count) for e in revoked] == [(uid, 2)]

    third = await _login(env, member)
    await env.auth.logout(third)
    assert env.events[-1] == LoggedOut(user_id=uid, address=None)


async def test_revoking_by_handle_and_others_keeps_the_str_id(env: Env) -> None:
    """revoke_session, revoke_other_sessions and revoke_all_sessions take and report str ids."""
    uid = str(uuid.uuid4())
    member = env.members.add(uid)
    keep, other, third = [await _login(env, member) for _ in range(3)]
    assert other.handle is not None
    await env.auth.revoke_session(uid, other.handle)
    assert await env.auth.revoke_other_sessions(keep) == 1
    assert [s.handle for s in await env.auth.all_sessions(uid)] == [keep.handle]
    assert third.handle is not None
    assert await env.harness.store.load(third.handle) is None
    assert await env.auth.revoke_all_sessions(uid, actor="m-admin") == 1
    last = env.events[-1]
    assert isinstance(last, SessionsRevoked)
    assert (last.user_id, last.actor, last.why) == (uid, "m-admin", "admin")


async def test_lookalike_ids_never_reach_another_users_sessions(env: Env) -> None:
    """Ids sharing the victim's separators or prefixes see and end only their own sessions."""
    victim = env.members.add(VICTIM, role="admin")
    session = await _login(env, victim)
    for lookalike in LOOKALIKES:
        env.members.add(lookalike)
        await _login(env, env.members.rows[lookalike])
    for lookalike in LOOKALIKES:
        listed = await env.auth.all_sessions(lookalike)
        assert session.handle not in {s.handle for s in listed}, lookalike
        assert len(listed) == 1, lookalike
        assert session.handle is not None
        with pytest.raises(SessionNotFound):
            await env.auth.revoke_session(lookalike, session.handle)
        # The attacker's own demotion and sign-out-everywhere leave the victim untouched.
        assert await env.auth.principal_changed(lookalike, end_sessions=True) == 1, lookalike
        assert await env.auth.revoke_all_sessions(lookalike) == 0, lookalike
    assert await _role(env, session) == "admin"
    assert [s.handle for s in await env.auth.all_sessions(VICTIM)] == [session.handle]


@pytest.mark.parametrize("bad", ["", "a\x00b", "line\nbreak", "\ud800", "x" * 256])
async def test_ids_no_store_can_keep_are_refused_before_the_store(env: Env, bad: str) -> None:
    """Empty (read back as "no user"), NUL, control characters, lone surrogates, > 255 chars."""
    with pytest.raises(ValueError, match="text user id"):
        await env.auth.principal_changed(bad, end_sessions=True)
    with pytest.raises(ValueError, match="text user id"):
        await env.auth.list_sessions(bad)
    with pytest.raises(ValueError, match="text user id"):
        Session().set_user(bad)
    env.members.add(bad)
    with pytest.raises(ValueError, match="text user id"):
        await _login(env, env.members.rows[bad])


async def test_a_user_source_of_the_wrong_id_type_cannot_log_in(
    harness: Harness, clock: FakeClock
) -> None:
    """An Authenticator[int] over text ids says so, rather than storing unreadable sessions."""
    members = Members()
    member = members.add("m-7f3a")
    auth = Authenticator(users=members, sessions=harness.store, hasher=HASHER, throttle=None)
    accepted = await auth.authenticate(member.email, PASSWORD, address="127.0.0.1")
    with pytest.raises(TypeError, match="user_id_type"):
        await auth.login(Session(), accepted, address=None, user_agent=None)


@pytest.mark.parametrize("change", ["demote", "disable"])
async def test_a_login_racing_principal_changed_gets_no_old_rights(env: Env, change: str) -> None:
    """The login verified before the change, stores after it: demoted, or refused."""
    uid = str(uuid.uuid4())
    member = env.members.add(uid, role="admin")
    gate, entered = asyncio.Event(), asyncio.Event()
    HASHER.gate, HASHER.entered = gate, entered
    racing = asyncio.create_task(_login(env, member))
    await entered.wait()  # the password is judged right; the session is not stored yet
    if change == "demote":
        env.members.rows[uid] = replace(member, role="user")
    else:
        env.members.rows[uid] = replace(member, disabled=True)
    await env.auth.principal_changed(uid, end_sessions=False)
    gate.set()
    if change == "demote":
        session = await racing
        assert await _role(env, session) == "user"
    else:
        with pytest.raises(InvalidCredentials):
            await racing
        assert await env.auth.count_sessions(uid) == 0


def _app(auth: Authenticator[str], members: Members) -> Starlette:
    guards = Guards(user_id_type=str)

    async def login(request: Request) -> Response:
        member = members.rows[request.path_params["uid"]]
        accepted = await auth.authenticate(member.email, PASSWORD, address="127.0.0.1")
        await auth.login(request.scope["session"], accepted, address=None, user_agent=None)
        return JSONResponse({})

    @guards.login_required
    async def whoami(request: Request) -> Response:
        user_id: str = await guards.require_auth(request)
        return JSONResponse({"userId": user_id, "type": type(user_id).__name__})

    async def logout(request: Request) -> Response:
        await auth.logout(request.scope["session"])
        return JSONResponse({})

    routes = [
        Route("/login/{uid}", login, methods=["POST"]),
        Route("/whoami", whoami),
        Route("/logout", logout, methods=["POST"]),
    ]
    return Starlette(routes=routes)


async def test_the_guards_return_the_str_id_of_an_authenticator_login(env: Env) -> None:
    """Over HTTP: the login's UUID comes back as str from the guards, and logout ends it."""
    uid = str(uuid.uuid4())
    env.members.add(uid)
    app = SessionMiddleware(
        _app(env.auth, env.members), store=env.harness.store, keyring=KEYRING, clock=env.clock
    )
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="https://t") as client:
        assert (await client.post(f"/login/{uid}")).status_code == 200
        assert (await client.get("/whoami")).json() == {"userId": uid, "type": "str"}
        await client.post("/logout")
        assert (await client.get("/whoami")).status_code == 401
