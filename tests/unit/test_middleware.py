"""SessionMiddleware over a real (memory) store, driven in process through httpx."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from sessionauth.config import CookieConfig
from sessionauth.middleware import SessionMiddleware, find_cookie
from sessionauth.policy import TimeoutPolicy
from sessionauth.stores.memory import MemoryStore
from sessionauth.tokens import Keyring, new_token, storage_id
from tests.support.clock import FakeClock
from tests.support.stores import InstrumentedStore

KEYRING = Keyring(["k" * 40])
NAME = "__Host-session"


async def read(request: Request) -> Response:
    return JSONResponse({"data": request.session.data(), "user": request.session.user_id})


async def nothing(request: Request) -> Response:
    return PlainTextResponse("ok")


async def write(request: Request) -> Response:
    for key, value in request.query_params.items():
        request.session[key] = value
    return PlainTextResponse("written")


async def delete_key(request: Request) -> Response:
    del request.session[request.query_params["key"]]
    return PlainTextResponse("deleted")


async def login(request: Request) -> Response:
    request.session.set_user(
        request.query_params.get("user", "1"),
        meta={"ip": "127.0.0.1"},
        remember=request.query_params.get("remember") == "1",
    )
    request.session["theme"] = "dark"
    return PlainTextResponse("logged in")


async def regenerate(request: Request) -> Response:
    request.session.regenerate()
    return PlainTextResponse("regenerated")


async def logout(request: Request) -> Response:
    request.session.destroy()
    return PlainTextResponse("bye")


async def clear(request: Request) -> Response:
    request.session.clear()
    return PlainTextResponse("cleared")


async def crash(request: Request) -> Response:
    request.session["should_not"] = "persist"
    return PlainTextResponse("boom", status_code=503)


async def cached(request: Request) -> Response:
    request.session.get("x")
    return PlainTextResponse(
        "x", headers={"Cache-Control": "public, max-age=600", "Vary": "Accept"}
    )


ROUTES = [
    Route("/read", read),
    Route("/nothing", nothing),
    Route("/write", write),
    Route("/delete", delete_key),
    Route("/login", login),
    Route("/regenerate", regenerate),
    Route("/logout", logout),
    Route("/clear", clear),
    Route("/crash", crash),
    Route("/cached", cached),
]


@dataclass
class Env:
    """An app, its store and clock, and a client."""

    store: InstrumentedStore
    memory: MemoryStore
    clock: FakeClock
    client: httpx.AsyncClient
    middleware: SessionMiddleware

    async def get(self, path: str, cookie: str | None = None, **kwargs: Any) -> httpx.Response:
        """GET ``path``, sending the session cookie when given."""
        headers = {"cookie": f"{NAME}={cookie}"} if cookie is not None else {}
        return await self.client.get(path, headers=headers, **kwargs)

    async def login(self, user: str = "1") -> str:
        """Log ``user`` in and return the cookie value."""
        response = await self.get(f"/login?user={user}")
        return cookie_value(response)


def cookie_value(response: httpx.Response) -> str:
    header = response.headers["set-cookie"]
    assert header.startswith(f"{NAME}=")
    return header.split(";")[0].split("=", 1)[1]


def make_env(policy: TimeoutPolicy | None = None, **kwargs: Any) -> Env:
    clock = FakeClock()
    memory = MemoryStore(clock=clock)
    store = InstrumentedStore(memory)
    app = Starlette(routes=ROUTES)
    middleware = SessionMiddleware(
        app, store=store, keyring=KEYRING, clock=clock, policy=policy, **kwargs
    )
    transport = httpx.ASGITransport(app=middleware)
    client = httpx.AsyncClient(transport=transport, base_url="https://testserver")
    return Env(store=store, memory=memory, clock=clock, client=client, middleware=middleware)


@pytest.fixture
async def env() -> AsyncIterator[Env]:
    environment = make_env()
    async with environment.client:
        yield environment


async def test_anonymous_requests_cost_no_store_call_and_no_cookie(env: Env) -> None:
    """A request without a cookie that never touches the session leaves no trace."""
    response = await env.get("/nothing")
    assert response.status_code == 200
    assert "set-cookie" not in response.headers
    assert "cache-control" not in response.headers
    assert sum(env.store.calls.values()) == 0


async def test_reading_an_empty_session_stores_nothing(env: Env) -> None:
    """An anonymous request that reads the session is marked private but stores nothing."""
    response = await env.get("/read")
    assert response.json() == {"data": {}, "user": None}
    assert "set-cookie" not in response.headers
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["vary"] == "Cookie"
    assert len(env.memory) == 0


async def test_first_write_creates_a_hashed_record_and_a_secure_cookie(env: Env) -> None:
    """Writing creates one record keyed by the token's hash, and a cookie with secure flags."""
    response = await env.get("/write?theme=dark")
    header = response.headers["set-cookie"]
    attributes = [part.strip() for part in header.split(";")]
    assert attributes[0].startswith(f"{NAME}=")
    assert {"Path=/", "HttpOnly", "Secure", "SameSite=Lax"} <= set(attributes)
    assert not any(a.lower().startswith("domain") for a in attributes)
    assert any(a.startswith("Max-Age=") for a in attributes)
    token = cookie_value(response).split(".")[0]
    stored = await env.memory.load(storage_id(token))
    assert len(env.memory) == 1
    assert stored is not None
    assert token not in repr(stored)
    assert env.store.calls["create"] == 1


async def test_unchanged_authenticated_request_is_one_load_and_no_write(env: Env) -> None:
    """Reading an existing session costs exactly one load and no write or Set-Cookie."""
    cookie = await env.login()
    env.store.calls.clear()
    response = await env.get("/read", cookie)
    assert response.json() == {"data": {"theme": "dark"}, "user": "1"}
    assert dict(env.store.calls) == {"load": 1}
    assert "set-cookie" not in response.headers
    assert response.headers["cache-control"] == "no-store"
    assert "Cookie" in response.headers["vary"]


async def test_only_changed_keys_are_written(env: Env) -> None:
    """A change writes an update holding just the changed and deleted keys."""
    cookie = await env.login()
    await env.get("/write?a=1&b=2", cookie)
    captured: list[Any] = []
    original = env.memory.update

    async def spy(sid: str, update: Any) -> bool:
        captured.append(update)
        return await original(sid, update)

    env.memory.update = spy  # type: ignore[method-assign]
    await env.get("/write?a=3", cookie)
    await env.get("/delete?key=b", cookie)
    assert [dict(u.set) for u in captured] == [{"a": "3"}, {}]
    assert [u.delete for u in captured] == [(), ("b",)]
    response = await env.get("/read", cookie)
    assert response.json()["data"] == {"theme": "dark", "a": "3"}


@pytest.mark.parametrize(
    "header",
    [
        f"{NAME}=garbage",
        f"{NAME}={'a' * 5000}",
        f'{NAME}="{"a" * 64}"',
        f"{NAME}=",
        f"{NAME}={'a' * 43}.{'a' * 22}",  # right shape, forged MAC
    ],
)
async def test_bad_cookies_mean_no_session_without_a_store_call(env: Env, header: str) -> None:
    """Malformed, oversized, quoted, empty or forged cookies cost no store lookup."""
    response = await env.client.get("/read", headers={"cookie": header})
    assert response.json() == {"data": {}, "user": None}
    assert sum(env.store.calls.values()) == 0
    assert response.headers["set-cookie"].startswith(f"{NAME}=;")
    assert "Max-Age=0" in response.headers["set-cookie"]


async def test_duplicated_cookie_means_no_session_without_a_store_call(env: Env) -> None:
    """Two cookies with the session's name (a planted one) count as none."""
    cookie = await env.login()
    env.store.calls.clear()
    for headers in (
        {"cookie": f"{NAME}={cookie}; {NAME}={cookie}"},
        [("cookie", f"{NAME}={cookie}"), ("cookie", f"{NAME}={cookie}")],
    ):
        response = await env.client.get("/read", headers=headers)
        assert response.json()["user"] is None
    assert sum(env.store.calls.values()) == 0


async def test_nameless_and_other_cookies_are_ignored(env: Env) -> None:
    """Cookies without a name, or with other names, do not disturb the session cookie."""
    cookie = await env.login()
    header = f"=junk; other=1; {NAME}x=2; {NAME}={cookie}; lone"
    response = await env.client.get("/read", headers={"cookie": header})
    assert response.json()["user"] == "1"


async def test_unissued_token_is_never_adopted(env: Env) -> None:
    """A validly signed token the server never stored is no session, and is never reused."""
    token = new_token()
    planted = KEYRING.sign(token)
    response = await env.get("/write?x=1", planted)
    new_cookie = cookie_value(response)
    assert new_cookie != planted
    assert await env.memory.load(storage_id(token)) is None
    assert env.store.calls["load"] == 1


async def test_nothing_is_written_on_a_5xx(env: Env) -> None:
    """A 5xx response persists no change and sets no cookie."""
    response = await env.get("/crash")
    assert response.status_code == 503
    assert "set-cookie" not in response.headers
    assert env.store.writes == 0
    cookie = await env.login()
    env.store.calls.clear()
    await env.get("/crash", cookie)
    assert env.store.writes == 0
    assert "should_not" not in (await env.get("/read", cookie)).json()["data"]


async def test_login_regenerates_and_deletes_the_previous_record(env: Env) -> None:
    """Binding a user issues a new token and removes the pre-login record (no fixation)."""
    first = cookie_value(await env.get("/write?cart=1"))
    second = cookie_value(await env.get("/login", first))
    assert second != first
    assert await env.memory.load(storage_id(first.split(".")[0])) is None
    assert len(env.memory) == 1
    assert (await env.get("/read", first)).json()["user"] is None
    assert (await env.get("/read", second)).json() == {
        "data": {"cart": "1", "theme": "dark"},
        "user": "1",
    }


async def test_regenerate_keeps_data_and_kills_the_old_token(env: Env) -> None:
    """regenerate() gives a new cookie for the same data; the old cookie stops working."""
    old = await env.login()
    new = cookie_value(await env.get("/regenerate", old))
    assert new != old
    assert (await env.get("/read", new)).json()["user"] == "1"
    assert (await env.get("/read", old)).json()["user"] is None
    assert len(env.memory) == 1


async def test_destroy_deletes_the_record_and_clears_the_cookie(env: Env) -> None:
    """destroy() deletes the record and expires the cookie."""
    cookie = await env.login()
    response = await env.get("/logout", cookie)
    assert "Max-Age=0" in response.headers["set-cookie"]
    assert len(env.memory) == 0
    assert (await env.get("/read", cookie)).json()["user"] is None


async def test_clearing_an_anonymous_session_deletes_it(env: Env) -> None:
    """session.clear() on a session without a user deletes the record."""
    cookie = cookie_value(await env.get("/write?a=1"))
    response = await env.get("/clear", cookie)
    assert "Max-Age=0" in response.headers["set-cookie"]
    assert len(env.memory) == 0


async def test_private_headers_override_cache_headers_of_the_app(env: Env) -> None:
    """A response that read the session is no-store, and Vary keeps the app's values."""
    response = await env.get("/cached")
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["vary"] == "Accept, Cookie"


@pytest.mark.parametrize("kind", ["websocket", "lifespan"])
async def test_websocket_and_lifespan_pass_through(kind: str) -> None:
    """Non-HTTP scopes reach the app untouched, with the original send and no session."""
    seen: list[dict[str, Any]] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        seen.append({"scope": dict(scope), "send": send})

    async def receive() -> dict[str, Any]:
        return {"type": f"{kind}.connect"}

    async def send(message: dict[str, Any]) -> None:
        del message

    store = InstrumentedStore(MemoryStore())
    middleware = SessionMiddleware(app, store=store, keyring=KEYRING)
    cookie = f"{NAME}={KEYRING.sign(new_token())}".encode()
    await middleware({"type": kind, "headers": [(b"cookie", cookie)]}, receive, send)
    assert "session" not in seen[0]["scope"]
    assert seen[0]["send"] is send
    assert sum(store.calls.values()) == 0


async def test_development_cookie_drops_secure_and_host_prefix() -> None:
    """The development cookie is named 'session', not Secure, and otherwise identical."""
    environment = make_env(cookie=CookieConfig.development())
    async with environment.client:
        response = await environment.client.get("/login")
    header = response.headers["set-cookie"]
    assert header.startswith("session=")
    assert "Secure" not in header
    assert "HttpOnly" in header
    assert "SameSite=Lax" in header


def test_find_cookie_parses_like_a_browser_sends() -> None:
    """The cookie parser takes the one named value and refuses duplicates."""
    assert find_cookie("a=1; b=2", "b") == "2"
    assert find_cookie("a=1;b=2 ", "b") == "2"
    assert find_cookie("a=1; b=2; b=3", "b") is None
    assert find_cookie("ab=1", "b") is None
    assert find_cookie("b", "b") is None
