"""A session rotated by one request (regenerate, renewal) while another ends it stays ended.

A rotation stores the session under a new token and deletes the old record. Before, a logout
(or a revocation) that deleted the old record while the rotating request ran did not stop the
rotation: the new record was stored all the same, and the rotating response handed the browser
a live cookie for a session its user had just ended. Two rotations at once forked the session
in two. The middleware now deletes the old record first and stores the new one only if the old
one was still there (``Create.continues``, ``SessionStore.delete``'s answer); a logout (or a
login) that finds the record it loaded already rotated away ends the login's lineage, the
user's sessions with its ``created``, after storing a marker that a rotation looks for once
its new record is stored (:mod:`sessionauth.lineage`). A renewal leaves a forward from the old
record to the new one for the renewal's grace, so the requests still carrying the old cookie
(a second tab, a page's parallel fetches) are served the renewed session instead of signing
their user out (:mod:`sessionauth.forwards`). These tests fail on the code before. Run against
every store, through the middleware.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from sessionauth import CookieConfig, Keyring, SessionMiddleware, TimeoutPolicy
from sessionauth.auth.event_hub import EventHub
from sessionauth.auth.session_admin import SessionAdministration
from sessionauth.errors import StoreUnavailable
from sessionauth.forwards import forward_id, forward_record
from sessionauth.lineage import marker_id
from sessionauth.principal import Principal
from sessionauth.record import SessionRecord
from sessionauth.stores.base import DEFAULT_MAX_SESSIONS, SessionStore
from tests.contract.harness import Harness
from tests.support.clock import FakeClock
from tests.support.stores import InstrumentedStore

NAME = "s"
USER = "7"
RENEWAL = 60.0


class LogoutDuringRequest(InstrumentedStore):
    """Deletes the record a request just loaded, once armed: a logout landing mid-request.

    ``before_login_create``, when set, runs (once) before the next create of a user's record:
    another request landing between a rotation's delete of the old record and its create.
    """

    def __init__(self, inner: SessionStore):
        super().__init__(inner)
        self.armed = False
        self.before_login_create: Callable[[], Awaitable[None]] | None = None
        self.before_delete: Callable[[], Awaitable[None]] | None = None  # once, then deletes
        self.unreadable: str | None = None  # a load of this id fails (StoreUnavailable)
        self.loads = 0  # loads so far, and an event set at each
        self.loaded = asyncio.Event()

    async def create(self, sid: str, record: SessionRecord) -> Principal | None:
        hook = self.before_login_create
        if hook is not None and record.user_id is not None:
            self.before_login_create = None
            await hook()
        return await super().create(sid, record)

    async def delete(self, sid: str) -> bool:
        hook = self.before_delete
        if hook is not None:
            self.before_delete = None
            await hook()
        return await super().delete(sid)

    async def load(self, sid: str) -> SessionRecord | None:
        if sid == self.unreadable:
            raise StoreUnavailable("injected: this read fails")
        record = await super().load(sid)
        self.loads += 1
        self.loaded.set()
        if self.armed:
            self.armed = False
            await self.inner.delete(sid)
        return record


@dataclass
class World:
    """The app through the middleware, its store, clock and client."""

    store: LogoutDuringRequest
    clock: FakeClock
    client: httpx.AsyncClient
    held: HeldEnding

    async def get(self, path: str, cookie: str) -> httpx.Response:
        return await self.client.get(path, headers={"cookie": f"{NAME}={cookie}"})

    async def login(self) -> str:
        return (await self.client.get("/login")).cookies[NAME]

    async def two_logins(self) -> tuple[str, str]:
        """Sign in on another device, then (a second later) here; both due for renewal.

        Returns the cookies ``(other_device, here)``: one user, two logins, two ``created``.
        """
        other_device = await self.login()
        self.client.cookies.clear()
        self.clock.advance(1)
        here = await self.login()
        self.client.cookies.clear()
        self.clock.advance(RENEWAL + 1)
        return other_device, here

    async def user_of(self, cookie: str) -> str | None:
        user: str | None = (await self.get("/read", cookie)).json()["user"]
        return user

    async def live_sessions(self) -> int:
        return len((await self.store.inner.list_user(USER)).sessions)


def new_cookie(response: httpx.Response) -> str | None:
    """The session cookie a response sets, or ``None`` (none set, or it is cleared)."""
    value = response.cookies.get(NAME)
    return value or None


async def read(request: Request) -> JSONResponse:
    return JSONResponse({"user": request.session.user_id, "written": "written" in request.session})


async def put(request: Request) -> JSONResponse:
    request.session["written"] = True
    return JSONResponse({})


async def login(request: Request) -> JSONResponse:
    request.session.set_user(USER)
    return JSONResponse({})


async def regenerate(request: Request) -> JSONResponse:
    request.session.regenerate()
    return JSONResponse({})


class HeldEnding:
    """``/logout``, ``/relogin`` and ``/write``: each holds its response (so its commit).

    ``/relogin`` signs the same user in anew: the login it loaded ends as a logout's does.
    ``/write`` sets the key ``written``; ``/regenerate-held`` regenerates.
    """

    def __init__(self) -> None:
        self.loaded = asyncio.Event()
        self.release = asyncio.Event()

    async def logout(self, request: Request) -> JSONResponse:
        request.session.destroy()
        return await self._held()

    async def relogin(self, request: Request) -> JSONResponse:
        request.session.set_user(USER)
        return await self._held()

    async def write(self, request: Request) -> JSONResponse:
        request.session["written"] = True
        return await self._held()

    async def regenerate(self, request: Request) -> JSONResponse:
        request.session.regenerate()
        return await self._held()

    async def _held(self) -> JSONResponse:
        self.loaded.set()
        await self.release.wait()
        return JSONResponse({})


@pytest.fixture
async def world(harness: Harness, clock: FakeClock) -> AsyncIterator[World]:
    store = LogoutDuringRequest(harness.store)
    held = HeldEnding()
    app = SessionMiddleware(
        Starlette(
            routes=[
                Route("/login", login),
                Route("/read", read),
                Route("/regenerate", regenerate),
                Route("/logout", held.logout),
                Route("/relogin", held.relogin),
                Route("/write", held.write),
                Route("/regenerate-held", held.regenerate),
                Route("/put", put),
            ]
        ),
        store=store,
        keyring=Keyring.generate(),
        cookie=CookieConfig(secure=False, name=NAME),
        policy=TimeoutPolicy(renewal_interval=RENEWAL),
        clock=clock,
    )
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield World(store=store, clock=clock, client=client, held=held)


@pytest.mark.parametrize("path", ["/read", "/regenerate"], ids=["renewal", "regenerate"])
async def test_a_session_ended_while_a_request_rotates_it_stays_ended(
    world: World, path: str
) -> None:
    """A logout landing between the rotating request's load and its commit ends the session.

    The rotating response sets no cookie, the new record is gone, and so is the old one.
    """
    cookie = await world.login()
    world.clock.advance(RENEWAL + 1)  # /read renews: the token is due for rotation
    world.client.cookies.clear()
    world.store.armed = True
    response = await world.get(path, cookie)
    assert response.status_code == 200
    assert new_cookie(response) is None, "a cookie for a session its user ended"
    assert await world.live_sessions() == 0
    assert await world.user_of(cookie) is None


@pytest.mark.parametrize("path", ["/read", "/regenerate"], ids=["renewal", "regenerate"])
async def test_a_rotation_without_a_race_still_rotates(world: World, path: str) -> None:
    """The guard costs the ordinary rotation nothing: a new cookie, one live session.

    A regeneration's old cookie dies at once; a renewal's leads to the new session for the
    renewal's grace, and dies after it (:mod:`sessionauth.forwards`).
    """
    cookie = await world.login()
    world.clock.advance(RENEWAL + 1)
    world.client.cookies.clear()
    response = await world.get(path, cookie)
    rotated = new_cookie(response)
    assert rotated is not None
    assert rotated != cookie
    assert await world.user_of(rotated) == USER
    if path == "/read":
        assert await world.user_of(cookie) == USER
        world.clock.advance(TimeoutPolicy().renewal_grace)
    assert await world.user_of(cookie) is None
    assert await world.user_of(rotated) == USER
    assert await world.live_sessions() == 1


async def test_forty_regenerations_at_once_leave_one_session(world: World) -> None:
    """40 concurrent regenerations of one session: one wins, none forks it."""
    cookie = await world.login()
    world.client.cookies.clear()
    responses = await asyncio.gather(*(world.get("/regenerate", cookie) for _ in range(40)))
    assert all(response.status_code == 200 for response in responses)
    rotated = [value for value in map(new_cookie, responses) if value is not None]
    users = [await world.user_of(value) for value in rotated]
    assert users.count(USER) == 1, f"{users.count(USER)} live sessions from one"
    assert await world.live_sessions() == 1
    assert await world.user_of(cookie) is None


@pytest.mark.parametrize("path", ["/read", "/regenerate"], ids=["renewal", "regenerate"])
async def test_the_oldest_session_of_a_user_at_the_cap_rotates(world: World, path: str) -> None:
    """At the per-user cap, the oldest session rotates like any other: nothing is evicted.

    The rotated record keeps its ``created``, so it is the user's oldest: a rotation that
    stored the new record first had the cap evict the very session being rotated.
    """
    oldest = await world.login()
    for _ in range(DEFAULT_MAX_SESSIONS - 1):
        world.client.cookies.clear()
        await world.login()
    world.client.cookies.clear()
    assert await world.live_sessions() == DEFAULT_MAX_SESSIONS
    world.clock.advance(RENEWAL + 1)
    rotated = new_cookie(await world.get(path, oldest))
    assert rotated is not None
    assert await world.user_of(rotated) == USER
    assert await world.live_sessions() == DEFAULT_MAX_SESSIONS


@pytest.mark.parametrize("path", ["/read", "/regenerate"], ids=["renewal", "regenerate"])
async def test_a_logout_committing_after_a_rotation_ends_the_rotated_session(
    world: World, path: str
) -> None:
    """A logout that loaded the session before a rotation and commits after it ends the new one.

    The rotating response has set its new cookie already (a second tab's): the logout finds
    the record it loaded gone and ends the login's lineage. Another device of the same user
    (another login, another ``created``) stays signed in.
    """
    other_device, cookie = await world.two_logins()
    logout = asyncio.create_task(world.get("/logout", cookie))
    await world.held.loaded.wait()  # the logout loaded the record; its commit waits
    rotated = new_cookie(await world.get(path, cookie))
    assert rotated is not None
    assert await world.user_of(rotated) == USER  # the rotation did its work
    world.held.release.set()
    assert (await logout).status_code == 200
    assert await world.user_of(rotated) is None, "the logout did not end the rotated session"
    assert await world.user_of(other_device) == USER, "the logout ended another login"
    assert await world.live_sessions() == 1


class NoAccounts:
    """A user source with no one in it: revoking sessions by handle reads no account."""

    async def get(self, user_id: object) -> None:
        return None

    async def get_by_email(self, email: str) -> None:
        return None

    async def set_password(self, user_id: object, password_hash: str, *, replacing: str) -> bool:
        return False


@pytest.mark.parametrize("path", ["/read", "/regenerate"], ids=["renewal", "regenerate"])
@pytest.mark.parametrize("by", ["operator", "owner"])
async def test_a_revocation_whose_delete_a_rotation_beat_ends_the_rotated_session(
    world: World, path: str, by: str
) -> None:
    """Revoked by handle after a rotation moved the session: the rotated cookie is dead too.

    ``sessions revoke HANDLE`` (the operator) and ``DELETE /sessions/{handle}`` (the owner)
    load the record, then delete it; a request of that session rotating it in between stores
    it anew under the cookie its response sets. The revocation answered success and the
    session lived on (an attack review: 10 to 14 of 100 over HTTP on SQLite).
    """
    other_device, cookie = await world.two_logins()
    listed = (await world.store.inner.list_user(USER)).sessions
    handle = max(listed, key=lambda entry: entry[1].created)[0]  # the later login's
    rotated: list[str | None] = []

    async def rotate() -> None:
        rotated.append(new_cookie(await world.get(path, cookie)))

    world.store.before_delete = rotate
    sessions = SessionAdministration(
        sessions=world.store,
        events=EventHub(),
        users=NoAccounts(),
        user_id_type=str,
        clock=world.clock,
    )
    if by == "operator":
        await sessions.revoke_handle(handle)
    else:
        await sessions.revoke_session(USER, handle)
    [new] = rotated
    assert new is not None, "the rotation did not rotate"
    assert await world.user_of(new) is None, "the revoked session lives on under the new cookie"
    assert await world.user_of(cookie) is None
    assert await world.user_of(other_device) == USER, "the revocation ended another login"
    assert await world.live_sessions() == 1


async def test_a_login_replacing_a_session_a_rotation_carried_on_ends_it(world: World) -> None:
    """A new login over a session that a racing request rotated leaves one session, the new one."""
    cookie = await world.login()
    world.client.cookies.clear()
    world.clock.advance(RENEWAL + 1)
    relogin = asyncio.create_task(world.get("/relogin", cookie))
    await world.held.loaded.wait()
    rotated = new_cookie(await world.get("/read", cookie))
    assert rotated is not None
    world.held.release.set()
    signed_in = new_cookie(await relogin)
    assert signed_in is not None
    assert await world.user_of(rotated) is None, "the rotated session outlived its login"
    assert await world.user_of(signed_in) == USER
    assert await world.live_sessions() == 1


@pytest.mark.parametrize("path", ["/read", "/regenerate"], ids=["renewal", "regenerate"])
async def test_a_logout_landing_inside_a_rotation_ends_the_rotated_session(
    world: World, path: str
) -> None:
    """A logout whose delete and lineage lookup fall between a rotation's two writes.

    The logout loaded the session first; the rotation deletes the old record, then the logout
    commits (finding nothing to delete, nor any successor yet), then the rotation stores its
    new record: it finds the logout's marker, deletes the record and clears the cookie.
    """
    cookie = await world.login()
    world.client.cookies.clear()
    world.clock.advance(RENEWAL + 1)
    logout = asyncio.create_task(world.get("/logout", cookie))
    await world.held.loaded.wait()

    async def logout_commits() -> None:
        world.held.release.set()
        assert (await logout).status_code == 200

    world.store.before_login_create = logout_commits
    response = await world.get(path, cookie)
    assert logout.done(), "the logout did not commit inside the rotation"
    assert response.status_code == 200
    assert new_cookie(response) is None, "a cookie for a session its user ended"
    assert await world.live_sessions() == 0


async def test_a_thief_rotating_again_and_again_is_ended_by_the_logout(world: World) -> None:
    """A chain of regenerations racing a logout: once the logout committed, every one ends."""
    cookie = await world.login()
    world.client.cookies.clear()
    logout = asyncio.create_task(world.get("/logout", cookie))
    await world.held.loaded.wait()
    thief = new_cookie(await world.get("/regenerate", cookie))
    assert thief is not None
    world.held.release.set()
    assert (await logout).status_code == 200
    assert await world.live_sessions() == 0
    for _ in range(3):
        rotated = new_cookie(await world.get("/regenerate", thief))
        assert rotated is None, "a regeneration outlived the logout"
    assert await world.live_sessions() == 0


async def test_a_rotation_that_cannot_look_for_the_marker_leaves_no_session(world: World) -> None:
    """The store fails the look for the marker: 503, and no session is left.

    The new record, whose cookie is never sent, is deleted rather than left for nobody,
    counted against the user's cap.
    """
    cookie = await world.login()
    world.client.cookies.clear()
    [(_, stored)] = (await world.store.inner.list_user(USER)).sessions
    world.store.unreadable = marker_id(USER, stored.created)
    response = await world.get("/regenerate", cookie)
    assert response.status_code == 503
    assert new_cookie(response) is None
    assert await world.live_sessions() == 0


# -- the renewal's grace: requests still carrying the old cookie --------------------------------


async def renewed(world: World) -> tuple[str, str]:
    """A login, renewed by one request: ``(the old cookie, the new one)``."""
    cookie = await world.login()
    world.client.cookies.clear()
    world.clock.advance(RENEWAL + 1)
    rotated = new_cookie(await world.get("/read", cookie))
    assert rotated is not None
    return cookie, rotated


async def test_a_request_with_the_cookie_a_renewal_replaced_is_served_and_keeps_it(
    world: World,
) -> None:
    """A second tab's request carrying the old cookie: served signed in, no Set-Cookie.

    Before, it was served signed out and cleared the cookie, and when its response came
    after the renewing one the browser dropped the new cookie: its user was signed out.
    """
    cookie, rotated = await renewed(world)
    response = await world.get("/read", cookie)
    assert response.json()["user"] == USER
    assert "set-cookie" not in response.headers, "a stale request touched the renewed cookie"
    assert await world.user_of(rotated) == USER
    assert await world.live_sessions() == 1


async def test_a_write_loaded_before_a_renewal_lands_on_the_renewed_session(world: World) -> None:
    """A request loads the session, a renewal replaces it, the request's write commits.

    The write goes to the renewed record and the response leaves the cookie alone; before,
    the write was lost and the response cleared the cookie.
    """
    cookie = await world.login()
    world.client.cookies.clear()
    world.clock.advance(RENEWAL / 2)
    writing = asyncio.create_task(world.get("/write", cookie))
    await world.held.loaded.wait()
    world.clock.advance(RENEWAL / 2 + 1)  # the renewal is due now, not when /write loaded
    rotated = new_cookie(await world.get("/read", cookie))
    assert rotated is not None
    world.held.release.set()
    response = await writing
    assert response.status_code == 200
    assert "set-cookie" not in response.headers, "the write's response touched the cookie"
    assert (await world.get("/read", rotated)).json() == {"user": USER, "written": True}
    assert await world.live_sessions() == 1


async def test_a_logout_with_the_cookie_a_renewal_replaced_ends_the_renewed_session(
    world: World,
) -> None:
    """A logout sent before the renewing response came back (so with the old cookie) ends it.

    Before, its cookie named nothing, and the renewed session lived on under the new cookie.
    """
    cookie, rotated = await renewed(world)
    world.held.release.set()
    logout = await world.get("/logout", cookie)
    assert logout.status_code == 200
    assert new_cookie(logout) is None
    assert await world.user_of(rotated) is None, "the logout left the renewed session alive"
    assert await world.live_sessions() == 0


async def test_forty_requests_at_a_renewal_leave_one_session_and_sign_nobody_out(
    world: World,
) -> None:
    """40 requests with one cookie, all when a renewal is due: one renewal, no cleared cookie.

    Whatever order they run in, none clears the cookie, so the browser keeps the renewed
    one, and the old cookie leads to the session that lives on.
    """
    cookie = await world.login()
    world.client.cookies.clear()
    world.clock.advance(RENEWAL + 1)
    responses = await asyncio.gather(*(world.get("/read", cookie) for _ in range(40)))
    assert all(response.status_code == 200 for response in responses)
    cleared = [r for r in responses if "set-cookie" in r.headers and new_cookie(r) is None]
    assert cleared == [], f"{len(cleared)} of 40 responses cleared the cookie"
    rotated = [value for value in map(new_cookie, responses) if value is not None]
    assert len(rotated) == 1, f"{len(rotated)} renewals of one session"
    assert await world.user_of(rotated[0]) == USER
    assert await world.user_of(cookie) == USER
    assert await world.live_sessions() == 1


async def test_a_renewal_repoints_the_forward_another_renewal_left(world: World) -> None:
    """Two renewals of one record: the loser left its forward first, the winner repoints it.

    The forward must lead to the session that lives on, not to one never stored.
    """
    cookie = await world.login()
    world.client.cookies.clear()
    [(handle, _)] = (await world.store.inner.list_user(USER)).sessions
    world.clock.advance(RENEWAL + 1)
    lost = forward_record("the-loser-stored-nothing", world.clock(), 30)
    await world.store.inner.create(forward_id(handle), lost)
    rotated = new_cookie(await world.get("/read", cookie))
    assert rotated is not None
    assert await world.user_of(cookie) == USER, "the forward leads to a session never stored"


async def test_a_forward_that_cannot_be_read_answers_503(world: World) -> None:
    """A cookie a renewal replaced, and the store fails the look for the forward: 503."""
    cookie = await world.login()
    world.client.cookies.clear()
    [(handle, _)] = (await world.store.inner.list_user(USER)).sessions
    world.clock.advance(RENEWAL + 1)
    assert new_cookie(await world.get("/read", cookie)) is not None
    world.store.unreadable = forward_id(handle)
    response = await world.get("/read", cookie)
    assert response.status_code == 503
    assert "set-cookie" not in response.headers


async def test_a_forward_leads_nowhere_once_the_renewed_session_ends(world: World) -> None:
    """Revoked (signed out with the new cookie): the old cookie is no session, and stays set."""
    cookie, rotated = await renewed(world)
    world.held.release.set()
    assert (await world.get("/logout", rotated)).status_code == 200
    response = await world.get("/read", cookie)
    assert response.json()["user"] is None
    assert "set-cookie" not in response.headers


async def test_a_replaced_cookie_that_regenerates_ends_the_session_and_gets_no_token(
    world: World,
) -> None:
    """A request with the replaced cookie asks for a new token (a privilege change).

    Its holder may be whoever stole the cookie before the renewal: it must never get a token
    of its own. The regeneration ends the session instead (fail closed). Before, it was
    handed a new cookie that outlived the grace, and the user's renewed cookie died.
    """
    cookie, rotated = await renewed(world)
    response = await world.get("/regenerate", cookie)
    assert response.status_code == 200
    assert new_cookie(response) is None, "the replaced cookie was given a new token"
    assert "set-cookie" in response.headers  # cleared
    assert await world.user_of(rotated) is None
    assert await world.live_sessions() == 0


async def test_a_write_reaching_a_renewal_between_its_writes_answers_503(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    """A write with the replaced cookie while the renewed record is not stored yet: 503.

    The forward is stored, the old record deleted, the new one not created yet (the renewal
    is held there): the write cannot land, so the client is told to retry instead of a 200
    that lost it, and the store is not logged as down. Before, the answer was 200 and the
    write was gone.
    """
    cookie = await world.login()
    world.client.cookies.clear()
    world.clock.advance(RENEWAL + 1)
    answers: list[int] = []

    async def write_meanwhile() -> None:
        answers.append((await world.get("/put", cookie)).status_code)

    world.store.before_login_create = write_meanwhile
    rotated = new_cookie(await world.get("/read", cookie))
    assert rotated is not None
    assert answers == [503], "a write during the renewal was answered without being written"
    outages = [r for r in caplog.records if r.name == "sessionauth.store"]
    assert outages == [], "a renewal in progress was logged as a store outage"
    assert (await world.get("/put", rotated)).status_code == 200  # the retry
    assert (await world.get("/read", rotated)).json() == {"user": USER, "written": True}


async def test_a_logout_reaching_a_renewal_between_its_writes_ends_the_renewed_session(
    world: World,
) -> None:
    """A logout with the replaced cookie lands while the renewed record is not stored yet.

    It has found the forward, and no record where it leads, when the renewal stores that
    record: it waits for it and ends it. Before, it answered at once with no session to end,
    and the renewal stored the session after the logout had answered.
    """
    cookie = await world.login()
    world.client.cookies.clear()
    world.clock.advance(RENEWAL + 1)
    world.held.release.set()
    logouts: list[asyncio.Task[httpx.Response]] = []

    async def logout_meanwhile() -> None:
        # The logout loads the old record (gone), the forward, and the record it leads to
        # (not there yet) before the renewal may go on and store it.
        seen = world.store.loads
        logouts.append(asyncio.create_task(world.get("/logout", cookie)))
        while world.store.loads < seen + 3:
            world.store.loaded.clear()
            await world.store.loaded.wait()

    world.store.before_login_create = logout_meanwhile
    rotated = new_cookie(await world.get("/read", cookie))
    [logout] = logouts
    assert (await logout).status_code == 200
    assert rotated is None or await world.user_of(rotated) is None
    assert await world.live_sessions() == 0


async def test_a_regeneration_beaten_by_a_renewal_still_ends_the_old_token(world: World) -> None:
    """A regeneration loses its old record to a renewal: the renewal's forward goes too.

    The regeneration asked for the old token to die; the renewal's forward would have kept
    it reaching the session for the grace. The session lives on under the renewal's cookie.
    """
    cookie = await world.login()
    world.client.cookies.clear()
    world.clock.advance(RENEWAL + 1)
    regenerating = asyncio.create_task(world.get("/regenerate-held", cookie))
    await world.held.loaded.wait()
    rotated = new_cookie(await world.get("/read", cookie))
    assert rotated is not None
    world.held.release.set()
    assert (await regenerating).status_code == 200
    assert await world.user_of(cookie) is None, "the old token outlived its regeneration"
    assert await world.user_of(rotated) == USER


async def test_a_logout_held_up_inside_a_renewal_ends_the_renewed_session(world: World) -> None:
    """The renewal stays between its two writes until the logout (old cookie) has answered.

    The logout finds the forward but no record where it leads, however long it waits: it ends
    the login by the lineage the forward names, and the renewal, storing its record after,
    finds the login ended and sets no cookie. Before, the session lived on (attack review 12:
    20 of 20 on every store) and the logout did not even clear the cookie.
    """
    cookie = await world.login()
    world.client.cookies.clear()
    world.clock.advance(RENEWAL + 1)
    world.held.release.set()
    logouts: list[httpx.Response] = []

    async def logout_meanwhile() -> None:
        logouts.append(await world.get("/logout", cookie))

    world.store.before_login_create = logout_meanwhile
    renewal = await world.get("/read", cookie)
    [logout] = logouts
    assert logout.status_code == 200
    assert "set-cookie" in logout.headers
    assert new_cookie(logout) is None  # cleared
    assert new_cookie(renewal) is None, "the renewal handed out a cookie for an ended login"
    assert await world.live_sessions() == 0
