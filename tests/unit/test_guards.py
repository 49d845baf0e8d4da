"""Route guards: FastAPI dependencies and Starlette decorators over real sessions."""

# No `from __future__ import annotations` here: FastAPI evaluates string annotations in the
# module's globals, where a dependency built from make_app's local clock would not be found.
from collections.abc import AsyncIterator
from dataclasses import dataclass
from http.cookiejar import CookieJar, DefaultCookiePolicy
from pathlib import Path
from typing import Annotated, Any

import httpx
import pytest
from fastapi import Depends, FastAPI
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from sessionauth.auth import guards
from sessionauth.auth.authenticator import Authenticator
from sessionauth.auth.guards import (
    check_auth,
    check_recent_auth,
    check_role,
    login_required,
    recent_auth_required,
    require_auth,
    require_recent_auth,
    require_role,
    role_required,
    safe_next,
)
from sessionauth.auth.passwords import PasswordHasher
from sessionauth.errors import NotAuthenticated, PermissionDenied
from sessionauth.middleware import SessionMiddleware
from sessionauth.policy import Clock
from sessionauth.principal import Principal, new_epoch
from sessionauth.session import Session
from sessionauth.stores.memory import MemoryStore
from sessionauth.stores.users import User, UserStore
from sessionauth.tokens import Keyring
from tests.support.backends import user_store
from tests.support.clock import FakeClock

KEYRING = Keyring(["g" * 40])
NAME = "__Host-session"
PASSWORD = "correct horse battery"
MAX_AGE = 300
BROWSER = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
UNAUTHENTICATED = b'{"error":"Authentication required"}'
FORBIDDEN = b'{"error":"Insufficient permissions"}'
# Every way a client might claim a role for itself; none of them may count.
CLAIMS: dict[str, Any] = {
    "headers": {"x-role": "admin", "x-user-role": "admin", "cookie": "role=admin"},
    "params": {"role": "admin", "is_admin": "true"},
    "json": {"role": "admin", "user": {"role": "admin"}},
}


def starlette_routes(clock: Clock) -> Starlette:
    """The same three guarded routes, as Starlette endpoints with the decorators."""

    @login_required
    async def dashboard(request: Request) -> Response:
        return JSONResponse({"userId": _user(request)})

    @role_required("admin")
    async def admin(request: Request) -> Response:
        return JSONResponse({"message": "Admin area"})

    @recent_auth_required(MAX_AGE, clock=clock)
    async def sensitive(request: Request) -> Response:
        return JSONResponse({"userId": _user(request)})

    return Starlette(
        routes=[
            Route("/dashboard", dashboard),
            Route("/account", dashboard),
            Route("/admin", admin, methods=["GET", "POST"]),
            Route("/sensitive", sensitive),
        ]
    )


def _user(request: Request) -> str | None:
    session = request.scope["session"]
    assert isinstance(session, Session)
    return session.user_id


def make_app(auth: Authenticator, clock: Clock) -> FastAPI:
    """FastAPI guarded by dependencies, with the Starlette variant mounted under ``/s``."""
    app = FastAPI(exception_handlers=guards.exception_handlers)

    @app.post("/login")
    async def login(request: Request) -> dict[str, Any]:
        body = await request.json()
        accepted = await auth.authenticate(body["email"], body["password"], address="127.0.0.1")
        session = request.scope["session"]
        assert isinstance(session, Session)
        await auth.login(session, accepted, address="127.0.0.1", user_agent=None)
        return {"success": True}

    @app.get("/dashboard")
    @app.get("/account")
    async def dashboard(user_id: Annotated[str, Depends(require_auth)]) -> dict[str, Any]:
        return {"userId": user_id}

    @app.get("/admin")
    @app.post("/admin")
    async def admin(user_id: Annotated[str, Depends(require_role("admin"))]) -> dict[str, Any]:
        del user_id
        return {"message": "Admin area"}

    @app.get("/sensitive")
    async def sensitive(
        user_id: Annotated[str, Depends(require_recent_auth(MAX_AGE, clock=clock))],
    ) -> dict[str, Any]:
        return {"userId": user_id}

    app.mount("/s", starlette_routes(clock))
    return app


@dataclass
class Env:
    """The app, its stores and clock, two accounts, and a client."""

    auth: Authenticator
    users: UserStore
    clock: FakeClock
    client: httpx.AsyncClient
    alice: User
    admin: User

    async def login(self, user: User) -> str:
        """Log ``user`` in and return the session cookie."""
        response = await self.client.post(
            "/login", json={"email": user.email, "password": PASSWORD}
        )
        assert response.status_code == 200, response.text
        return response.headers["set-cookie"].split(";")[0].split("=", 1)[1]

    async def get(self, path: str, cookie: str | None = None, **kwargs: Any) -> httpx.Response:
        """GET ``path`` with the session ``cookie``, if given."""
        return await self.request("GET", path, cookie, **kwargs)

    async def request(
        self, method: str, path: str, cookie: str | None = None, **kwargs: Any
    ) -> httpx.Response:
        """Send a request, adding the session cookie to whatever ``Cookie`` header it has."""
        headers = dict(kwargs.pop("headers", {}))
        if cookie is not None:
            extra = headers.get("cookie")
            headers["cookie"] = f"{NAME}={cookie}" + (f"; {extra}" if extra else "")
        return await self.client.request(method, path, headers=headers, **kwargs)


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[Env]:
    clock = FakeClock()
    users = user_store(f"sqlite:///{tmp_path / 'users.db'}", clock=clock)
    memory = MemoryStore(clock=clock)
    hasher = PasswordHasher.for_tests()
    auth = Authenticator(users=users, sessions=memory, hasher=hasher, throttle=None, clock=clock)
    alice = await users.create("alice@example.com", await hasher.hash(PASSWORD))
    admin = await users.create("root@example.com", await hasher.hash(PASSWORD), "admin")
    app = SessionMiddleware(make_app(auth, clock), store=memory, keyring=KEYRING, clock=clock)
    jar = CookieJar(policy=DefaultCookiePolicy(allowed_domains=[]))  # cookies go by hand
    client = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="https://testserver", cookies=jar
    )
    async with client:
        yield Env(auth, users, clock, client, alice, admin)
    await users.aclose()


# Every guarded route is checked twice: "" is FastAPI with Depends, "/s" Starlette decorators.
FLAVOURS = pytest.mark.parametrize("prefix", ["", "/s"], ids=["fastapi", "starlette"])


@FLAVOURS
@pytest.mark.parametrize("route", ["/dashboard", "/admin", "/sensitive"])
async def test_anonymous_api_clients_get_the_exact_401(env: Env, prefix: str, route: str) -> None:
    """Without a session every guard answers 401 with exactly the tutorial's body."""
    for accept in (None, "application/json", "*/*", "text/html, application/json"):
        headers = {"accept": accept} if accept else {}
        response = await env.get(prefix + route, headers=headers)
        assert response.status_code == 401
        assert response.content == UNAUTHENTICATED
        assert response.headers["content-type"] == "application/json"


@FLAVOURS
async def test_wrong_role_gets_the_exact_403_and_the_right_role_passes(
    env: Env, prefix: str
) -> None:
    """A user without the role gets 403 with the tutorial's body; an admin gets in."""
    user_cookie, admin_cookie = await env.login(env.alice), await env.login(env.admin)
    for accept in ("application/json", BROWSER):
        response = await env.get(f"{prefix}/admin", user_cookie, headers={"accept": accept})
        assert response.status_code == 403
        assert response.content == FORBIDDEN
    assert (await env.get(f"{prefix}/dashboard", user_cookie)).json() == {
        "userId": str(env.alice.id)
    }
    response = await env.get(f"{prefix}/admin", admin_cookie)
    assert (response.status_code, response.json()) == (200, {"message": "Admin area"})


@FLAVOURS
async def test_browser_navigation_is_redirected_to_login_with_next(env: Env, prefix: str) -> None:
    """An anonymous page load gets a 303 to /login with the percent-encoded path and query."""
    response = await env.get(f"{prefix}/account?tab=1", headers={"accept": BROWSER})
    assert response.status_code == 303
    expected = "/login?next=" + (f"{prefix}/account?tab=1").replace("/", "%2F").replace(
        "?", "%3F"
    ).replace("=", "%3D")
    assert response.headers["location"] == expected
    plain = await env.get(f"{prefix}/account", headers={"accept": BROWSER})
    assert plain.headers["location"] == "/login?next=" + f"{prefix}/account".replace("/", "%2F")


@pytest.mark.parametrize("value", ["/account?tab=1", "/", "/a/b?x=%2F%2Fevil&y=50%25"])
def test_safe_next_accepts_same_site_paths(value: str) -> None:
    """Relative same-site paths (with encoded query values) are returned unchanged."""
    assert safe_next(value) == value


@pytest.mark.parametrize(
    "value",
    [
        "//evil.com",
        "/\\evil.com",
        "https://evil.com",
        "javascript:alert(1)",
        "/%0d%0aSet-Cookie:x",
        "\\evil",
        "",
        None,
        "evil.com/path",
        "/\t/evil.com",
        "/%2F%2Fevil.com",
        "/%5Cevil.com",
        "/%252F%252Fevil.com",
        "/x%252525252541",  # six layers of encoding: refused whatever it decodes to
        "/ok\r\nSet-Cookie: x=1",
    ],
)
def test_safe_next_refuses_anything_that_could_leave_the_site(value: str | None) -> None:
    """Absolute, scheme-relative, backslashed, scripted, control and encoded tricks fall back."""
    assert safe_next(value) == "/"
    assert safe_next(value, default="/home") == "/home"


@FLAVOURS
async def test_recent_auth_passes_after_login_and_fails_past_max_age(env: Env, prefix: str) -> None:
    """Right after login (and at exactly max_age) it passes; a second later it is 403."""
    cookie = await env.login(env.alice)
    assert (await env.get(f"{prefix}/sensitive", cookie)).status_code == 200
    env.clock.advance(MAX_AGE)
    assert (await env.get(f"{prefix}/sensitive", cookie)).status_code == 200
    env.clock.advance(1)
    response = await env.get(f"{prefix}/sensitive", cookie)
    assert response.status_code == 403
    assert response.json() == {"error": "Recent authentication required"}
    assert (await env.get(f"{prefix}/dashboard", cookie)).status_code == 200
    fresh = await env.login(env.alice)
    assert (await env.get(f"{prefix}/sensitive", fresh)).status_code == 200


@FLAVOURS
@pytest.mark.parametrize("method", ["GET", "POST"])
async def test_a_client_asserted_role_never_grants_access(
    env: Env, prefix: str, method: str
) -> None:
    """Claiming admin in headers, query, body or a cookie changes nothing, logged in or not."""
    user_cookie = await env.login(env.alice)
    claims = dict(CLAIMS) if method == "POST" else {k: v for k, v in CLAIMS.items() if k != "json"}
    anonymous = await env.request(method, f"{prefix}/admin", **claims)
    assert anonymous.status_code == 401
    response = await env.request(method, f"{prefix}/admin", user_cookie, **claims)
    assert response.status_code == 403
    assert response.content == FORBIDDEN


@FLAVOURS
async def test_role_change_applies_on_the_next_request_of_a_live_session(
    env: Env, prefix: str
) -> None:
    """Authenticator.set_role promotes and demotes existing sessions without a new login."""
    user_cookie, admin_cookie = await env.login(env.alice), await env.login(env.admin)
    assert (await env.get(f"{prefix}/admin", user_cookie)).status_code == 403
    await env.auth.set_role(env.alice.id, "admin")
    await env.auth.set_role(env.admin.id, "user")
    assert (await env.get(f"{prefix}/admin", user_cookie)).status_code == 200
    assert (await env.get(f"{prefix}/admin", admin_cookie)).status_code == 403


def test_framework_free_checks_read_only_the_session() -> None:
    """check_role reads the principal only; check_recent_auth the session's auth time."""
    clock = FakeClock(1000.0)
    admin = Principal(epoch=new_epoch(), role="admin")
    anonymous = Session({"role": "admin"})
    with pytest.raises(NotAuthenticated):
        check_role(anonymous, frozenset({"admin"}))
    user = Session(
        user_id="7",
        meta={"auth": 900.0},
        epoch="e",
        principal=Principal(epoch="e", role="user"),
    )
    with pytest.raises(PermissionDenied):
        check_role(user, frozenset({"admin"}))
    assert check_role(user, frozenset({"admin", "user"})) == "7"
    assert check_recent_auth(user, 100, clock) == "7"
    with pytest.raises(PermissionDenied):
        check_recent_auth(user, 99, clock)
    with pytest.raises(PermissionDenied):  # no recorded authentication time at all
        check_recent_auth(Session(user_id="7"), 100, clock)
    # A value the application wrote grants nothing: the role is the principal's.
    claims = Session({"role": "admin"}, user_id="7", principal=Principal(epoch="e", role="user"))
    with pytest.raises(PermissionDenied):
        check_role(claims, frozenset({"admin"}))
    assert check_role(Session(user_id="8", principal=admin), frozenset({"admin"})) == "8"


def test_a_session_without_principal_is_authenticated_with_no_role() -> None:
    """A session bound by set_user without the Authenticator passes check_auth, no role check."""
    session = Session()
    session.set_user("7")
    assert check_auth(session) == "7"
    with pytest.raises(PermissionDenied):
        check_role(session, frozenset({"admin", "user"}))


def test_a_disabled_principal_is_not_authenticated() -> None:
    """A session whose principal is disabled is anonymous to every guard."""
    session = Session(user_id="7", principal=Principal(epoch="e", role="admin", disabled=True))
    with pytest.raises(NotAuthenticated):
        check_auth(session)
    with pytest.raises(NotAuthenticated):
        check_role(session, frozenset({"admin"}))


async def test_guards_without_the_middleware_fail_loudly() -> None:
    """A guard on an app without SessionMiddleware raises instead of letting anyone in."""

    @login_required
    async def endpoint(request: Request) -> Response:
        return JSONResponse({})

    app = Starlette(routes=[Route("/", endpoint)])
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="https://t") as client:
        with pytest.raises(TypeError, match="SessionMiddleware"):
            await client.get("/")
