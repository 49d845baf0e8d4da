"""A failing or hanging store makes requests fail closed and fast: 503, never 500 or a pass."""

from __future__ import annotations

from typing import Any

from starlette.responses import HTMLResponse
from starlette.types import Message, Receive, Scope, Send

from sessionauth.middleware import SessionMiddleware
from sessionauth.stores.memory import MemoryStore
from sessionauth.tokens import storage_id
from tests.support.stores import InstrumentedStore
from tests.unit.test_middleware import KEYRING, make_env


async def test_store_outage_on_load_answers_503_with_retry_after() -> None:
    """An unavailable store during load gives 503 JSON with Retry-After and no app call."""
    env = make_env()
    async with env.client:
        cookie = await env.login()
        env.store.fail = True
        response = await env.get("/read", cookie)
    assert response.status_code == 503
    assert response.headers["retry-after"] == "1"
    assert response.headers["content-type"] == "application/json"
    assert "error" in response.json()
    assert "user" not in response.text


async def test_hanging_store_answers_503_within_the_store_timeout() -> None:
    """A blackholed store is cut off by store_timeout and answered with 503."""
    env = make_env(store_timeout=0.05)
    async with env.client:
        cookie = await env.login()
        env.store.hang = True
        response = await env.get("/read", cookie)
    assert response.status_code == 503


async def test_store_outage_on_commit_replaces_the_response_with_503() -> None:
    """If the write at response start fails, the client gets 503, not the app's response."""
    env = make_env()
    async with env.client:
        env.store.fail_writes = True
        response = await env.get("/login")
    assert response.status_code == 503
    assert "set-cookie" not in response.headers
    assert response.text != "logged in"


async def test_a_streamed_response_replaced_by_503_sends_none_of_its_own_messages() -> None:
    """After a failed commit only the 503 reaches the server; each later chunk is dropped.

    Observed at the ASGI level: a client library would merge the chunks into one body.
    """
    chunks_sent: list[bool] = []

    async def streaming(scope: Scope, receive: Receive, send: Send) -> None:
        scope["session"]["theme"] = "dark"  # a write: the commit at the start fails
        await send({"type": "http.response.start", "status": 200, "headers": []})
        for chunk in (b"secret-1", b"secret-2"):
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
            chunks_sent.append(True)  # the app's send returned: the app is not stuck
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    store = InstrumentedStore(MemoryStore())
    store.fail_writes = True
    app = SessionMiddleware(streaming, store=store, keyring=KEYRING)
    received: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        received.append(message)

    scope: dict[str, Any] = {"type": "http", "method": "GET", "path": "/", "headers": []}
    await app(scope, receive, send)
    assert chunks_sent == [True, True]
    assert [m["type"] for m in received] == ["http.response.start", "http.response.body"]
    assert received[0]["status"] == 503
    body = b"".join(m.get("body", b"") for m in received[1:])
    assert b"secret" not in body
    assert b"error" in body


async def test_store_recovers_without_restart() -> None:
    """Once the store answers again, the same middleware serves sessions again."""
    env = make_env()
    async with env.client:
        cookie = await env.login()
        env.store.fail = True
        assert (await env.get("/read", cookie)).status_code == 503
        env.store.fail = False
        assert (await env.get("/read", cookie)).json()["user"] == "1"


async def test_revocation_racing_a_write_does_not_revive_the_session() -> None:
    """A session deleted while its request runs stays deleted, and the cookie is cleared."""
    env = make_env()
    async with env.client:
        cookie = await env.login()
        original = env.memory.load

        async def load_then_revoke(sid: str):  # type: ignore[no-untyped-def]
            record = await original(sid)
            await env.memory.delete(sid)  # an admin revokes it mid-request
            return record

        env.memory.load = load_then_revoke  # type: ignore[method-assign]
        response = await env.get("/write?x=1", cookie)
        env.memory.load = original  # type: ignore[method-assign]
        assert "Max-Age=0" in response.headers["set-cookie"]
        assert await env.memory.load(storage_id(cookie.split(".")[0])) is None
        assert (await env.get("/read", cookie)).json()["user"] is None


async def test_custom_unavailable_response() -> None:
    """on_unavailable lets an HTML app render its own 503 page."""
    env = make_env(on_unavailable=lambda scope, exc: HTMLResponse("<h1>busy</h1>", 503))
    assert isinstance(env.middleware, SessionMiddleware)
    async with env.client:
        cookie = await env.login()
        env.store.fail = True
        response = await env.get("/read", cookie)
    assert response.status_code == 503
    assert response.text == "<h1>busy</h1>"
    assert response.headers["content-type"] == "text/html; charset=utf-8"
