"""The 503 and CSRF-403 responders: Starlette Responses, JSON by default, a page for browsers."""

from __future__ import annotations

import json
from typing import Any

import pytest
from starlette.responses import Response

from sessionauth import csrf
from sessionauth.csrf import json_reject
from sessionauth.errors import SessionInTransit, StoreUnavailable
from sessionauth.middleware import json_unavailable
from sessionauth.server.handlers import csrf_responder, unavailable_responder
from sessionauth.server.metrics import Metrics
from sessionauth.server.templating import SECURITY_HEADERS

BROWSER = [(b"accept", b"text/html,application/xhtml+xml")]
SCRIPT = [(b"accept", b"application/json")]


def scope(headers: list[tuple[bytes, bytes]]) -> dict[str, Any]:
    return {"type": "http", "method": "POST", "path": "/x", "headers": headers, "query_string": b""}


async def sent(response: Response) -> tuple[int, dict[str, str], bytes]:
    """Run ``response`` as ASGI and return what reached the client."""
    messages: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        messages.append(message)

    await response(scope([]), receive, send)
    start, body = messages
    headers = {k.decode(): v.decode() for k, v in start["headers"]}
    assert len(headers) == len(start["headers"])  # no header sent twice
    return start["status"], headers, body["body"]


async def test_default_unavailable_is_json_with_retry_after_and_no_store() -> None:
    """The library's 503 is the documented JSON body, Retry-After from the error, never cached."""
    status, headers, body = await sent(
        json_unavailable(scope([]), StoreUnavailable("x", retry_after=7))
    )
    assert status == 503
    assert headers["retry-after"] == "7"
    assert headers["cache-control"] == "no-store"
    assert headers["content-type"] == "application/json"
    assert body == b'{"error":"Service temporarily unavailable, please retry"}'


async def test_default_reject_is_json_naming_the_reason_and_no_store() -> None:
    """The library's CSRF refusal is 403 JSON with the reason, never cached."""
    status, headers, body = await sent(json_reject(scope([]), csrf.REASON_NO_TOKEN))
    assert status == 403
    assert headers["cache-control"] == "no-store"
    assert headers["content-type"] == "application/json"
    assert json.loads(body) == {"error": "CSRF check failed", "reason": csrf.REASON_NO_TOKEN}


@pytest.mark.parametrize(("accept", "page"), [(BROWSER, True), (SCRIPT, False)])
async def test_server_unavailable_is_a_page_for_browsers_and_is_counted(
    accept: list[tuple[bytes, bytes]], page: bool
) -> None:
    """The server's 503 is the friendly page (with CSP) for browsers, JSON otherwise; counted."""
    metrics = Metrics()
    respond = unavailable_responder(metrics)
    status, headers, body = await sent(respond(scope(accept), StoreUnavailable("x", retry_after=3)))
    assert status == 503
    assert headers["retry-after"] == "3"
    assert headers["cache-control"] == "no-store"
    assert headers["content-type"].startswith("text/html" if page else "application/json")
    assert ("content-security-policy" in headers) is page
    if page:
        assert headers["content-security-policy"] == SECURITY_HEADERS["Content-Security-Policy"]
        assert b"<html" in body.lower()
    assert metrics.registry.get_sample_value("sessionauth_store_errors_total") == 1


@pytest.mark.parametrize(("accept", "page"), [(BROWSER, True), (SCRIPT, False)])
async def test_server_csrf_reject_is_a_page_for_browsers_and_is_counted_by_reason(
    accept: list[tuple[bytes, bytes]], page: bool
) -> None:
    """The server's CSRF 403 is the page for browsers, JSON with the reason otherwise; counted."""
    metrics = Metrics()
    respond = csrf_responder(metrics)
    status, headers, body = await sent(respond(scope(accept), csrf.REASON_BAD_ORIGIN))
    assert status == 403
    assert headers["cache-control"] == "no-store"
    if page:
        assert headers["content-type"] == "text/html; charset=utf-8"
        assert headers["x-frame-options"] == "DENY"
        assert csrf.REASON_BAD_ORIGIN not in body.decode()  # the page explains, not the reason
    else:
        assert json.loads(body)["reason"] == csrf.REASON_BAD_ORIGIN
    counted = metrics.registry.get_sample_value(
        "sessionauth_csrf_rejections_total", {"reason": csrf.REASON_BAD_ORIGIN}
    )
    assert counted == 1


async def test_a_renewal_in_transit_is_answered_503_but_counts_as_no_store_error() -> None:
    """A write refused while a renewal moved its session is retryable, and no store failed."""
    metrics = Metrics()
    respond = unavailable_responder(metrics)
    status, headers, _ = await sent(respond(scope(SCRIPT), SessionInTransit()))
    assert status == 503
    assert headers["retry-after"] == "1"
    assert metrics.registry.get_sample_value("sessionauth_store_errors_total") == 0
