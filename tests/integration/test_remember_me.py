"""Remember-me on the reference server: the JSON login, the form, /sessions, the account page.

The timeouts themselves, on every store and with an injected clock, are pinned by
``tests/contract/test_remember_me.py``; here the server's edges pass the flag through.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from sessionauth.server.settings import load_settings
from tests.integration.test_pages import PASSWORD, _client, add_user, csrf_fields, sign_in
from tests.support.apps import running_app

WEEK = 7 * 24 * 3600


@pytest.fixture
async def app(tmp_path: Path) -> AsyncIterator[FastAPI]:
    async with running_app(tmp_path) as application:
        await add_user(application, "ann@example.com")
        yield application


def session_cookie(response: httpx.Response) -> list[str]:
    """The attributes of the response's session cookie, lower-cased."""
    (header,) = [h for h in response.headers.get_list("set-cookie") if h.startswith("session=")]
    return [part.strip().lower() for part in header.split(";")[1:]]


def persistent(attributes: list[str]) -> bool:
    return any(a.startswith(("max-age=", "expires=")) for a in attributes)


def lasts_a_week(attributes: list[str]) -> bool:
    """Max-Age is the absolute timeout, less the moments the login took."""
    ages = [int(a.split("=", 1)[1]) for a in attributes if a.startswith("max-age=")]
    return len(ages) == 1 and WEEK - 5 <= ages[0] <= WEEK


@pytest.mark.parametrize(
    ("body", "remembered"), [({}, False), ({"remember": False}, False), ({"remember": True}, True)]
)
async def test_json_login_sets_the_cookie_remember_asks_for(
    app: FastAPI, body: dict[str, bool], remembered: bool
) -> None:
    """POST /login: a browser-session cookie unless remember is true; a usable csrfToken."""
    async with _client(app) as client:
        credentials = {"email": "ann@example.com", "password": PASSWORD}
        response = await client.post("/login", json={**credentials, **body})
        assert response.status_code == 200, response.text
        attributes = session_cookie(response)
        assert persistent(attributes) is remembered
        if remembered:
            assert lasts_a_week(attributes)
        # The fresh token of the login's answer works for the new session at once.
        token = response.json()["csrfToken"]
        transfer = await client.post(
            "/api/transfer", json={"amount": 5}, headers={"X-CSRF-Token": token}
        )
        assert transfer.status_code == 200, transfer.text
        sessions = (await client.get("/sessions")).json()["sessions"]
    assert [(s["current"], s["remembered"]) for s in sessions] == [(True, remembered)]


async def test_the_login_form_checkbox_picks_the_cookie(app: FastAPI) -> None:
    """The form's "Keep me signed in" box: checked, a persistent cookie; unchecked, not."""
    async with _client(app) as client:
        page = await client.get("/login")
        assert re.search(
            r'<input id="remember" name="remember" type="checkbox">\s*'
            r'<label for="remember">Keep me signed in</label>',
            page.text,
        )
        (token,) = csrf_fields(page.text)
        form = {"email": "ann@example.com", "password": PASSWORD, "csrf_token": token}
        checked = await client.post("/ui/login", data={**form, "remember": "on"})
        assert checked.status_code == 303
        assert lasts_a_week(session_cookie(checked))
    async with _client(app) as client:
        unchecked = await sign_in(client, "ann@example.com")
        assert unchecked.status_code == 303
        assert not persistent(session_cookie(unchecked))


async def test_a_failed_form_login_keeps_the_box_checked(app: FastAPI) -> None:
    """A wrong password sends the form back with the box as the user left it."""
    async with _client(app) as client:
        (token,) = csrf_fields((await client.get("/login")).text)
        form = {"email": "ann@example.com", "password": "wrong password", "csrf_token": token}
        failed = await client.post("/ui/login", data={**form, "remember": "on"})
        again = await client.get(failed.headers["location"])
        assert 'name="remember" type="checkbox" checked>' in again.text
        failed = await client.post("/ui/login", data=form)
        again = await client.get(failed.headers["location"])
        assert 'name="remember" type="checkbox">' in again.text


async def test_the_account_page_shows_which_sessions_are_remembered(app: FastAPI) -> None:
    """/account: a column saying, per session, whether it is kept signed in."""
    async with _client(app) as kept, _client(app) as forgetful:
        response = await kept.post(
            "/login", json={"email": "ann@example.com", "password": PASSWORD, "remember": True}
        )
        assert response.status_code == 200
        await sign_in(forgetful, "ann@example.com")
        html = (await forgetful.get("/account")).text
    assert '<th scope="col">Kept signed in</th>' in html
    cells = re.findall(r'<td class="remembered">(.*?)</td>', html)
    assert len(cells) == 2
    assert sorted("Yes" if c == "Yes" else "browser" for c in cells) == ["Yes", "browser"]
    assert any("Until the browser closes" in c for c in cells)


def test_the_short_absolute_timeout_is_read_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """SESSIONAUTH_SHORT_ABSOLUTE_TIMEOUT (default 12 h) reaches the policy; 0 is refused."""
    assert load_settings().policy().short_absolute_timeout == 43200
    monkeypatch.setenv("SESSIONAUTH_SHORT_ABSOLUTE_TIMEOUT", "600")
    assert load_settings().policy().short_absolute_timeout == 600
    monkeypatch.setenv("SESSIONAUTH_SHORT_ABSOLUTE_TIMEOUT", "0")
    with pytest.raises(Exception, match="SESSIONAUTH_SHORT_ABSOLUTE_TIMEOUT"):
        load_settings()
