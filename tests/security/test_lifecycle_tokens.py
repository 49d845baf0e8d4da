"""Hostile tokens against the mailed-link routes: always a clear 400, never a 500 or a change.

``POST /verify`` and ``POST /password/reset`` (and the pages and forms around them) get tokens
that are missing, of the wrong JSON type, malformed, expired, used, another user's or of
another purpose, or issued before the password changed. Every answer goes through
``check_response`` (no 5xx, no header injection, JSON errors), and after each attempt the
account is exactly as it was: still unverified, same password, same address.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from sessionauth.auth.lifecycle import AccountLifecycle
from sessionauth.auth.single_use import (
    RESET_PASSWORD,
    VERIFY_EMAIL,
    account_binding,
    token_key,
)
from sessionauth.stores.tokens import TokenRecord
from sessionauth.stores.users import User
from tests.security.test_bad_input import check_response
from tests.support.apps import running_app

PASSWORD = "correct horse battery"
NEW_PASSWORD = "a brand new passphrase"
INVALID_LINK = {"error": "Invalid or expired link"}
ROUTES = ["/verify", "/password/reset"]
TOKEN = "A" * 42 + "E"  # the shape of a token (43 base64url characters) nobody issued


async def _checked(response: httpx.Response) -> None:
    await response.aread()
    accept = response.request.headers.get("accept", "")
    check_response(
        response.request.method,
        response.status_code,
        list(response.headers.raw),
        response.content,
        html_ok="text/html" in accept,
    )


@pytest.fixture
async def app(tmp_path: Path) -> AsyncIterator[FastAPI]:
    async with running_app(tmp_path, signup="open") as running:
        yield running


def client(app: FastAPI) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://testserver",
        event_hooks={"response": [_checked]},
    )


async def unverified(app: FastAPI, email: str = "me@example.com") -> User:
    auth = app.state.authenticator
    user: User = await auth.users.create(email, await auth.hasher.hash(PASSWORD), verified=False)
    return user


async def unchanged(app: FastAPI, before: User) -> None:
    after = await app.state.authenticator.get_user(before.id)
    assert after == before


def body(route: str, token: Any) -> dict[str, Any]:
    return (
        {"token": token, "password": NEW_PASSWORD}
        if route == "/password/reset"
        else {"token": token}
    )


async def post(app: FastAPI, route: str, payload: Any, **kwargs: Any) -> httpx.Response:
    async with client(app) as http:
        return await http.post(route, json=payload, **kwargs)


def flows(app: FastAPI) -> AccountLifecycle:
    lifecycle: AccountLifecycle = app.state.lifecycle
    return lifecycle


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize("token", [None, 43, 4.3, True, [TOKEN], {"t": TOKEN}])
async def test_a_token_of_the_wrong_json_type_is_a_400(
    app: FastAPI, route: str, token: Any
) -> None:
    """Not a string: a validation 400, never coerced."""
    before = await unverified(app)
    response = await post(app, route, body(route, token))
    assert response.status_code == 400
    assert response.json()["error"].startswith("Invalid request")
    await unchanged(app, before)


@pytest.mark.parametrize("route", ROUTES)
async def test_a_missing_token_is_a_400(app: FastAPI, route: str) -> None:
    """No token field (or no body at all): 400."""
    payload = {"password": NEW_PASSWORD} if route == "/password/reset" else {}
    assert (await post(app, route, payload)).status_code == 400
    assert (await post(app, route, None)).status_code == 400


MALFORMED = [
    "",
    "abc",
    TOKEN[:-1],
    TOKEN + "A",
    "!" * 43,
    "A" * 42 + "F",  # right length, non-canonical last character
    "é" * 43,
    "\x00" * 43,
    "A" * 42 + "\n",
    "' OR 1=1 --" + "A" * 32,
    "../" * 14 + "A",
    "x" * 256,
]


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize("token", MALFORMED, ids=range(len(MALFORMED)))
async def test_malformed_or_unknown_tokens_are_an_invalid_link(
    app: FastAPI, route: str, token: str
) -> None:
    """Any string that is not a live token of ours: 400 "Invalid or expired link"."""
    before = await unverified(app)
    response = await post(app, route, body(route, token))
    assert (response.status_code, response.json()) == (400, INVALID_LINK)
    await unchanged(app, before)


@pytest.mark.parametrize("route", ROUTES)
async def test_an_oversized_token_is_refused_before_any_lookup(app: FastAPI, route: str) -> None:
    """A 10,000-character token fails validation (bounded at 256): 400."""
    response = await post(app, route, body(route, "A" * 10_000))
    assert response.status_code == 400


@pytest.mark.parametrize(
    ("route", "purpose"), [("/verify", VERIFY_EMAIL), ("/password/reset", RESET_PASSWORD)]
)
async def test_an_expired_token_is_an_invalid_link(app: FastAPI, route: str, purpose: str) -> None:
    """A real token whose record expired a second ago: 400, nothing changes."""
    before = await unverified(app)
    record = TokenRecord(
        user_id=str(before.id),
        purpose=purpose,
        binding=account_binding("any-epoch", before),  # expiry refuses it first
        expires=time.time() - 1,
    )
    key = token_key(TOKEN, purpose)
    assert key is not None
    await app.state.lifecycle.tokens._tokens.add(key, record)  # plant an expired record
    response = await post(app, route, body(route, TOKEN))
    assert (response.status_code, response.json()) == (400, INVALID_LINK)
    await unchanged(app, before)


async def _issued(app: FastAPI, user: User, purpose: str) -> str:
    token: str = await flows(app).tokens.issue(user, purpose)
    return token


@pytest.mark.parametrize(
    ("route", "other"), [("/verify", RESET_PASSWORD), ("/password/reset", VERIFY_EMAIL)]
)
async def test_a_token_of_another_purpose_is_an_invalid_link(
    app: FastAPI, route: str, other: str
) -> None:
    """A reset link at /verify, a verification link at /password/reset: 400, and it stays usable."""
    before = await unverified(app)
    token = await _issued(app, before, other)
    response = await post(app, route, body(route, token))
    assert (response.status_code, response.json()) == (400, INVALID_LINK)
    await unchanged(app, before)
    own = "/password/reset" if other == RESET_PASSWORD else "/verify"
    assert (await post(app, own, body(own, token))).status_code == 200


@pytest.mark.parametrize("route", ROUTES)
async def test_a_used_token_is_an_invalid_link(app: FastAPI, route: str) -> None:
    """The second use of a link: 400."""
    user = await unverified(app)
    token = await _issued(app, user, VERIFY_EMAIL if route == "/verify" else RESET_PASSWORD)
    assert (await post(app, route, body(route, token))).status_code == 200
    after_first = await app.state.authenticator.get_user(user.id)
    response = await post(app, route, body(route, token))
    assert (response.status_code, response.json()) == (400, INVALID_LINK)
    await unchanged(app, after_first)


async def test_another_users_verification_link_is_invalid_for_a_signed_in_user(
    app: FastAPI,
) -> None:
    """Signed in as Bob, Alice's link: 400; Alice's account stays unverified."""
    alice = await unverified(app, "alice@example.com")
    await unverified(app, "bob@example.com")
    token = await _issued(app, alice, VERIFY_EMAIL)
    async with client(app) as bob:
        login = await bob.post("/login", json={"email": "bob@example.com", "password": PASSWORD})
        assert login.status_code == 200
        headers = {"X-CSRF-Token": login.json()["csrfToken"]}
        response = await bob.post("/verify", json={"token": token}, headers=headers)
    assert (response.status_code, response.json()) == (400, INVALID_LINK)
    await unchanged(app, alice)


@pytest.mark.parametrize("route", ROUTES)
async def test_a_password_change_kills_the_links_issued_before(app: FastAPI, route: str) -> None:
    """A token issued before an administrator set the password: 400."""
    user = await unverified(app)
    token = await _issued(app, user, VERIFY_EMAIL if route == "/verify" else RESET_PASSWORD)
    await app.state.authenticator.set_password(user.id, "set by the administrator")
    changed = await app.state.authenticator.get_user(user.id)
    response = await post(app, route, body(route, token))
    assert (response.status_code, response.json()) == (400, INVALID_LINK)
    await unchanged(app, changed)


@pytest.mark.parametrize("page", ["/verify", "/password/reset"])
@pytest.mark.parametrize("token", ["", TOKEN, "<script>x</script>", "\x00", "x" * 5000, "%ZZ"])
async def test_the_link_pages_show_any_token_without_using_it(
    app: FastAPI, page: str, token: str
) -> None:
    """The GET pages never consume, never fail: a form (or the invalid-link message)."""
    before = await unverified(app)
    async with client(app) as http:
        response = await http.get(page, params={"token": token}, headers={"Accept": "text/html"})
    assert response.status_code == 200
    assert "<script>x" not in response.text
    await unchanged(app, before)


@pytest.mark.parametrize("form", ["/ui/verify", "/ui/password/reset"])
@pytest.mark.parametrize("token", ["", TOKEN, "é" * 43, "x" * 5000])
async def test_the_link_forms_redirect_bad_tokens_to_the_invalid_link_page(
    app: FastAPI, form: str, token: str
) -> None:
    """A form posted with a token that proves nothing: 303 to the page saying so."""
    before = await unverified(app)
    fields = {"token": token, "password": NEW_PASSWORD, "confirm_password": NEW_PASSWORD}
    async with client(app) as http:
        response = await http.post(form, data=fields)
    assert response.status_code == 303
    assert response.headers["location"].endswith("?error=invalid")
    await unchanged(app, before)
