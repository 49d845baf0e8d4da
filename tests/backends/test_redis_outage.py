"""Redis down or frozen: StoreUnavailable fast, 503 from the middleware, then service again."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from sessionauth.backends.redis.sessions import RedisStore
from sessionauth.config import CookieConfig
from sessionauth.errors import StoreUnavailable
from sessionauth.middleware import SessionMiddleware
from sessionauth.principal import Principal, PrincipalChange, new_epoch
from sessionauth.record import RecordUpdate
from sessionauth.tokens import Keyring
from tests.support.records import eventually, new_sid, record
from tests.support.services import RedisServer

pytestmark = pytest.mark.redis

TIMEOUT = 0.5  # the store's timeout in these tests
GUARD = 5.0  # a call taking longer than this is a hang, and fails the test


@pytest.fixture
async def store(private_redis: RedisServer) -> AsyncIterator[RedisStore]:
    opened = RedisStore.from_url(private_redis.url, timeout=TIMEOUT)
    try:
        yield opened
    finally:
        await opened.aclose()


def operations(store: RedisStore, sid: str) -> dict[str, Callable[[], Awaitable[Any]]]:
    change = RecordUpdate(set={"a": 1}, delete=(), seen=time.time(), expires=time.time() + 60)
    principal = Principal(epoch=new_epoch(), role="user")
    rotation = PrincipalChange(fallback_role="user", fallback_disabled=False, rotate=True)
    return {
        "load": lambda: store.load(sid),
        "create": lambda: store.create(new_sid(), record()),
        "update": lambda: store.update(sid, change),
        "touch": lambda: store.touch(sid, seen=time.time(), expires=time.time() + 60),
        "delete": lambda: store.delete(sid),
        "list_user": lambda: store.list_user("1"),
        "principal": lambda: store.principal("1"),
        "install_principal": lambda: store.install_principal("1", principal),
        "change_principal": lambda: store.change_principal("1", rotation),
        "ping": store.ping,
    }


async def test_stopped_redis_raises_store_unavailable_then_recovers(
    store: RedisStore, private_redis: RedisServer
) -> None:
    """Every operation on a stopped server raises StoreUnavailable; restarted, it serves again."""
    sid = new_sid()
    await store.create(sid, record())
    private_redis.stop()
    for name, operation in operations(store, sid).items():
        with pytest.raises(StoreUnavailable):
            await asyncio.wait_for(operation(), GUARD)
        assert name  # (named for the failure report)
    private_redis.start()
    await eventually(store.ping)
    fresh = new_sid()  # the restarted server kept nothing
    await store.create(fresh, record())
    assert await store.load(fresh) is not None
    assert await store.update(fresh, RecordUpdate(set={"b": 2}, delete=(), seen=1, expires=9e9))


@pytest.mark.parametrize(
    "name", ["load", "create", "update", "touch", "list_user", "change_principal", "ping"]
)
async def test_frozen_redis_fails_within_the_store_timeout(
    store: RedisStore, private_redis: RedisServer, name: str
) -> None:
    """A server that accepts but never answers gives StoreUnavailable after ~timeout, not a hang."""
    sid = new_sid()
    await store.create(sid, record())
    private_redis.pause()
    try:
        started = time.monotonic()
        with pytest.raises(StoreUnavailable):
            await asyncio.wait_for(operations(store, sid)[name](), GUARD)
        elapsed = time.monotonic() - started
    finally:
        private_redis.resume()
    assert elapsed < TIMEOUT + 0.25
    loaded = await eventually(lambda: store.load(sid))
    assert loaded is not None  # the frozen server lost nothing


async def read(request: Request) -> Response:
    return JSONResponse({"user": request.session.user_id})


async def login(request: Request) -> Response:
    request.session.set_user("1", meta={"ip": "127.0.0.1"})
    return PlainTextResponse("logged in")


async def test_middleware_answers_503_during_an_outage_and_200_after(
    store: RedisStore, private_redis: RedisServer
) -> None:
    """Through SessionMiddleware: 503 with Retry-After while Redis is frozen or down, then 200."""
    app = Starlette(routes=[Route("/read", read), Route("/login", login)])
    middleware = SessionMiddleware(
        app,
        store=store,
        keyring=Keyring(["k" * 40]),
        cookie=CookieConfig.development(),
        store_timeout=1.0,
    )
    transport = httpx.ASGITransport(app=middleware)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        logged_in = await client.get("/login")
        assert logged_in.status_code == 200
        cookie = {"cookie": logged_in.headers["set-cookie"].split(";")[0]}

        async def get() -> httpx.Response:
            return await asyncio.wait_for(client.get("/read", headers=cookie), GUARD)

        assert (await get()).json() == {"user": "1"}

        private_redis.pause()
        try:
            frozen = await get()
        finally:
            private_redis.resume()
        assert frozen.status_code == 503
        assert frozen.headers["retry-after"] == "1"

        async def served() -> httpx.Response:
            response = await get()
            if response.status_code == 503:
                raise StoreUnavailable("still down")
            return response

        assert (await eventually(served)).json() == {"user": "1"}

        private_redis.stop()
        down = await get()
        assert down.status_code == 503
        assert "retry-after" in down.headers
        private_redis.start()
        # Back, but empty (nothing was persisted): the old cookie is no session any more.
        after = await eventually(served)
        assert after.status_code == 200
        assert after.json() == {"user": None}
