"""HeadMiddleware: HEAD reaches the wrapped app as GET; a 405's Allow names HEAD with GET."""

from __future__ import annotations

from typing import Any

import pytest

from sessionauth.server.read_methods import HeadMiddleware, allowed_methods


@pytest.mark.parametrize(
    ("sent", "completed"),
    [
        (b"GET", b"GET, HEAD"),
        (b"HEAD, GET", b"GET, HEAD"),
        (b"POST, GET", b"GET, HEAD, POST"),
        (b"POST", b"POST"),
        (b"DELETE,POST", b"DELETE, POST"),
        (b"GET, HEAD, GET", b"GET, HEAD"),
    ],
)
def test_allowed_methods_adds_head_to_get_and_sorts(sent: bytes, completed: bytes) -> None:
    """Whatever order the router joined its set in, the header reads the same."""
    assert allowed_methods(sent) == completed


class _Recorder:
    """An inner app that records the method it was handed, then answers with ``status``."""

    def __init__(self, status: int, headers: list[tuple[bytes, bytes]]):
        self.status = status
        self.headers = headers
        self.methods: list[str] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        self.methods.append(scope["method"])
        await send({"type": "http.response.start", "status": self.status, "headers": self.headers})
        await send({"type": "http.response.body", "body": b"x"})


async def _serve(app: Any, scope: dict[str, Any]) -> list[dict[str, Any]]:
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b""}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    return sent


async def test_head_is_handed_on_as_get_and_answered_without_the_body() -> None:
    """The app inside sees GET; the caller's scope still says HEAD; the GET's headers, no body."""
    inner = _Recorder(200, [(b"content-length", b"1")])
    scope = {"type": "http", "method": "HEAD", "path": "/healthz", "headers": []}
    sent = await _serve(HeadMiddleware(inner), scope)
    assert inner.methods == ["GET"]
    assert scope["method"] == "HEAD"
    assert sent == [
        {"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"1")]},
        {"type": "http.response.body", "body": b""},
    ]
    got = await _serve(HeadMiddleware(inner), {**scope, "method": "GET"})
    assert got[1] == {"type": "http.response.body", "body": b"x"}


async def test_a_head_answer_keeps_its_framing_and_sends_no_file() -> None:
    """``more_body`` survives the emptying; a file handed over by path becomes an empty body."""

    async def streamed(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"a", "more_body": True})
        await send({"type": "http.response.pathsend", "path": "/etc/hostname"})

    sent = await _serve(HeadMiddleware(streamed), {"type": "http", "method": "HEAD"})
    assert sent[1:] == [
        {"type": "http.response.body", "body": b"", "more_body": True},
        {"type": "http.response.body", "body": b""},
    ]


async def test_only_a_405_has_its_allow_completed() -> None:
    """A 405's Allow gains HEAD; the same header on another status is left as sent."""
    refused = _Recorder(405, [(b"Allow", b"POST, GET"), (b"content-type", b"text/plain")])
    other = _Recorder(200, [(b"allow", b"GET")])
    request = {"type": "http", "method": "PUT", "path": "/", "headers": []}
    refusal = await _serve(HeadMiddleware(refused), dict(request))
    answer = await _serve(HeadMiddleware(other), dict(request))
    assert refusal[0]["headers"] == [
        (b"Allow", b"GET, HEAD, POST"),
        (b"content-type", b"text/plain"),
    ]
    assert answer[0]["headers"] == [(b"allow", b"GET")]
    assert refused.methods == other.methods == ["PUT"]


async def test_other_connections_pass_through_untouched() -> None:
    """A websocket (or lifespan) scope reaches the app as it came, with the caller's send."""
    seen: list[Any] = []

    async def inner(scope: Any, receive: Any, send: Any) -> None:
        seen.append((scope, send))

    async def receive() -> Any:
        """The caller's receive."""

    async def send(message: Any) -> None:
        """The caller's send."""

    scope = {"type": "websocket", "path": "/"}
    await HeadMiddleware(inner)(scope, receive, send)
    assert seen == [(scope, send)]
