"""Guards with settings (user id type, login page), CurrentUser, and the OpenAPI cookie scheme."""

# No `from __future__ import annotations`: FastAPI evaluates the routes' annotations.
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import httpx
import pytest
from fastapi import Depends, FastAPI
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

import sessionauth.fastapi
from sessionauth.auth import Authenticator, CurrentUser, Guards, PasswordHasher, User, UserStore
from sessionauth.errors import EmailNotVerified
from sessionauth.fastapi import Dependencies
from sessionauth.middleware import SessionMiddleware
from sessionauth.session import Session
from sessionauth.stores.memory import MemoryStore
from sessionauth.tokens import Keyring
from tests.support.backends import user_store

KEYRING = Keyring(["u" * 40])
PASSWORD = "correct horse battery"
BROWSER = "text/html,application/xhtml+xml"


@dataclass(frozen=True)
class Member:
    """An application's own user, with text ids (no Authenticator involved)."""

    id: str
    name: str
    disabled: bool = False


class Members:
    """The application's own users, by text id."""

    def __init__(self) -> None:
        self.rows: dict[str, Member] = {}

    async def get(self, user_id: str) -> Member | None:
        return self.rows.get(user_id)


def int_app(auth: Authenticator) -> FastAPI:
    """Integer ids, a login page at /signin?from=app, CurrentUser of the built-in store."""
    guards = Guards(user_id_type=int, login_url="/signin?from=app")
    deps = Dependencies(guards, cookie_name="session")
    current_user = deps.current_user(auth.users)
    app = FastAPI(exception_handlers=guards.exception_handlers)

    @app.post("/login")
    async def login(request: Request) -> dict[str, Any]:
        body = await request.json()
        accepted = await auth.authenticate(body["email"], PASSWORD, address="127.0.0.1")
        session = request.scope["session"]
        principal = await auth.login(session, accepted, address="127.0.0.1", user_agent=None)
        return {"role": principal.role}

    @app.get("/id")
    async def user_id(user_id: Annotated[int, Depends(deps.require_auth)]) -> dict[str, Any]:
        return {"userId": user_id}

    @app.get("/admin")
    async def admin(user_id: Annotated[int, Depends(deps.require_role("admin"))]) -> Any:
        return {"userId": user_id}

    @app.get("/me")
    async def me(user: Annotated[User, Depends(current_user)]) -> dict[str, Any]:
        return {"id": user.id, "email": user.email}

    @app.get("/open")
    async def open_route() -> dict[str, Any]:
        return {}

    @guards.login_required
    async def starlette_id(request: Request) -> Response:
        return JSONResponse({"userId": guards.user_id(request.scope["session"])})

    app.mount("/s", Starlette(routes=[Route("/id", starlette_id)]))
    return app


def str_app(members: Members) -> FastAPI:
    """Text ids from the application's own users; sessions bound with set_user."""
    guards = Guards(user_id_type=str)
    current_user = CurrentUser(members, guards)
    app = FastAPI(exception_handlers=guards.exception_handlers)

    @app.post("/login/{member_id}")
    async def login(member_id: str, request: Request) -> dict[str, Any]:
        session: Session = request.scope["session"]
        session.set_user(member_id)
        return {}

    @app.get("/id")
    async def user_id(user_id: Annotated[str, Depends(guards.require_auth)]) -> dict[str, Any]:
        return {"userId": user_id}

    @app.get("/me")
    async def me(user: Annotated[Member, Depends(current_user)]) -> dict[str, Any]:
        return {"id": user.id, "name": user.name}

    async def starlette_me(request: Request) -> Response:
        member = await current_user(request)
        assert request.user is member  # the Starlette attribute, set by the first read
        return JSONResponse({"name": member.name})

    app.mount("/s", Starlette(routes=[Route("/me", guards.login_required(starlette_me))]))
    return app


@dataclass
class Env:
    """An int-id app on the built-in store and a str-id app on the application's users."""

    auth: Authenticator
    users: UserStore
    members: Members
    ints: httpx.AsyncClient
    strs: httpx.AsyncClient


def _client(app: Any, store: MemoryStore) -> httpx.AsyncClient:
    wrapped = SessionMiddleware(app, store=store, keyring=KEYRING)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=wrapped), base_url="https://t")


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[Env]:
    users = user_store(f"sqlite:///{tmp_path / 'users.db'}")
    store = MemoryStore()
    hasher = PasswordHasher.for_tests()
    auth = Authenticator(users=users, sessions=store, hasher=hasher, throttle=None)
    await users.create("alice@example.com", await hasher.hash(PASSWORD))
    await users.create("root@example.com", await hasher.hash(PASSWORD), "admin")
    members = Members()
    members.rows["m-7f3a"] = Member("m-7f3a", "Mia")
    async with _client(int_app(auth), store) as ints, _client(str_app(members), store) as strs:
        yield Env(auth, users, members, ints, strs)
    await users.aclose()


async def test_int_ids_come_back_as_int_from_every_guard(env: Env) -> None:
    """With user_id_type=int the dependencies and the decorators hand out 2, never "2"."""
    assert (await env.ints.post("/login", json={"email": "root@example.com"})).status_code == 200
    assert (await env.ints.get("/id")).json() == {"userId": 2}
    assert (await env.ints.get("/admin")).json() == {"userId": 2}
    assert (await env.ints.get("/s/id")).json() == {"userId": 2}


async def test_str_ids_come_back_as_text(env: Env) -> None:
    """With user_id_type=str the id is the session's text, as the application gave it."""
    await env.strs.post("/login/m-7f3a")
    assert (await env.strs.get("/id")).json() == {"userId": "m-7f3a"}


async def test_a_session_whose_id_is_not_of_the_type_is_not_authenticated(env: Env) -> None:
    """A text id read by int guards is 401, not a 500 (a misconfigured or foreign session)."""
    await env.strs.post("/login/m-7f3a")
    env.ints.cookies = env.strs.cookies
    for path in ("/id", "/me", "/s/id"):
        response = await env.ints.get(path)
        assert response.status_code == 401, (path, response.text)


async def test_the_role_comes_from_the_principal_not_the_user_object(env: Env) -> None:
    """A demotion through principal_changed ends admin access though the route reads no user."""
    await env.ints.post("/login", json={"email": "root@example.com"})
    assert (await env.ints.get("/admin")).status_code == 200
    await env.users.set_role(2, "user")  # the application's own write
    assert (await env.ints.get("/admin")).status_code == 200  # the documented window
    await env.auth.principal_changed(2, end_sessions=False)
    assert (await env.ints.get("/admin")).status_code == 403
    assert (await env.ints.get("/id")).json() == {"userId": 2}


async def test_current_user_returns_the_applications_object(env: Env) -> None:
    """CurrentUser gives the store's User, or the application's Member, typed by its source."""
    await env.ints.post("/login", json={"email": "alice@example.com"})
    assert (await env.ints.get("/me")).json() == {"id": 1, "email": "alice@example.com"}
    await env.strs.post("/login/m-7f3a")
    assert (await env.strs.get("/me")).json() == {"id": "m-7f3a", "name": "Mia"}
    assert (await env.strs.get("/s/me")).json() == {"name": "Mia"}


async def test_current_user_ends_a_session_whose_user_is_gone_or_disabled(env: Env) -> None:
    """A session that outlived its user (or whose user is disabled) is 401 and ends."""
    await env.strs.post("/login/m-7f3a")
    env.members.rows["m-7f3a"] = Member("m-7f3a", "Mia", disabled=True)
    assert (await env.strs.get("/me")).status_code == 401
    env.members.rows["m-7f3a"] = Member("m-7f3a", "Mia")
    assert (await env.strs.get("/id")).status_code == 401  # the session is gone for good


async def test_browsers_are_sent_to_the_configured_login_page(env: Env) -> None:
    """login_url replaces /login, keeps its own query, and carries a safe next."""
    expected = {
        "/id?tab=2": "/signin?from=app&next=%2Fid%3Ftab%3D2",
        "/s/id?tab=2": "/signin?from=app&next=%2Fs%2Fid%3Ftab%3D2",
    }
    for path, location in expected.items():
        response = await env.ints.get(path, headers={"accept": BROWSER})
        assert (response.status_code, response.headers["location"]) == (303, location)
    default = await env.strs.get("/id", headers={"accept": BROWSER})
    assert default.headers["location"] == "/login?next=%2Fid"


async def test_openapi_shows_the_cookie_scheme_on_guarded_routes_only(env: Env) -> None:
    """/docs shows the lock: the sessionCookie scheme, required by guarded operations."""
    schema = (await env.ints.get("/openapi.json")).json()
    assert schema["components"]["securitySchemes"]["sessionCookie"] == {
        "type": "apiKey",
        "in": "cookie",
        "name": "session",
        "description": "The session cookie that the login sets.",
    }
    for path in ("/id", "/admin", "/me"):
        assert schema["paths"][path]["get"]["security"] == [{"sessionCookie": []}], path
    assert "security" not in schema["paths"]["/open"]["get"]
    assert "security" not in schema["paths"]["/login"]["post"]
    # The guard decides, not the scheme: no cookie is the tutorial's 401, not FastAPI's 403.
    response = await env.ints.get("/id")
    assert (response.status_code, response.json()) == (401, {"error": "Authentication required"})


def test_the_module_level_fastapi_dependencies_declare_the_scheme_too() -> None:
    """sessionauth.fastapi.require_auth / require_role / require_recent_auth show the lock."""
    app = FastAPI()

    @app.get("/a")
    async def a(user_id: Annotated[str, Depends(sessionauth.fastapi.require_auth)]) -> str:
        return user_id

    @app.get("/b", dependencies=[Depends(sessionauth.fastapi.require_role("admin"))])
    async def b() -> None:
        return None

    @app.get("/c", dependencies=[Depends(sessionauth.fastapi.require_recent_auth(60))])
    async def c() -> None:
        return None

    schema = app.openapi()
    assert schema["components"]["securitySchemes"]["sessionCookie"]["name"] == "__Host-session"
    for path in ("/a", "/b", "/c"):
        assert schema["paths"][path]["get"]["security"] == [{"sessionCookie": []}]


def test_account_administration_refuses_a_user_source_of_the_applications_own() -> None:
    """create_user on users that are not a built-in store is a clear TypeError."""

    class Own:
        async def get(self, user_id: int) -> User | None:
            return None

        async def get_by_email(self, email: str) -> User | None:
            return None

        async def set_password(self, user_id: int, password_hash: str, *, replacing: str) -> bool:
            return False

    auth = Authenticator(
        users=Own(), sessions=MemoryStore(), hasher=PasswordHasher.for_tests(), throttle=None
    )
    with pytest.raises(TypeError, match="principal_changed"):
        auth.user_store()


@dataclass(frozen=True)
class OwnUser:
    """A user of the application's own with the five attributes, and no email_verified."""

    id: int
    email: str
    role: str
    password_hash: str
    disabled: bool = False


class OwnUsers:
    """The application's users, in a dict: a UserSource[OwnUser]."""

    def __init__(self, user: OwnUser):
        self.user = user

    async def get(self, user_id: int) -> OwnUser | None:
        return self.user if user_id == self.user.id else None

    async def get_by_email(self, email: str) -> OwnUser | None:
        return self.user if email == self.user.email else None

    async def set_password(self, user_id: int, password_hash: str, *, replacing: str) -> bool:
        return False


@pytest.mark.parametrize("require_verified", [False, True])
async def test_an_own_user_source_logs_in_and_require_verified_fails_closed(
    require_verified: bool,
) -> None:
    """Own users log in; with require_verified, a user without email_verified cannot."""
    hasher = PasswordHasher.for_tests()
    user = OwnUser(7, "own@example.com", "admin", await hasher.hash(PASSWORD))
    auth = Authenticator(
        users=OwnUsers(user),
        sessions=MemoryStore(),
        hasher=hasher,
        throttle=None,
        require_verified=require_verified,
    )
    if require_verified:
        with pytest.raises(EmailNotVerified):
            await auth.authenticate("own@example.com", PASSWORD, address="127.0.0.1")
        return
    accepted = await auth.authenticate("own@example.com", PASSWORD, address="127.0.0.1")
    assert (accepted.user, accepted.principal.role) == (user, "admin")
