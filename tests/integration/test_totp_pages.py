"""Recovery codes renewed (``POST /mfa/recovery-codes``) and the TOTP pages' paths, over HTTP.

Like :mod:`tests.integration.test_mfa_api`, the app runs on a clock the tests move a step at a
time, so every code is of a step no earlier code used.
"""

from __future__ import annotations

import asyncio
import logging
import re

import httpx
import pyotp
import pytest

from tests.integration.test_api import AUTH_REQUIRED, PASSWORD, csrf
from tests.integration.test_mfa_api import (
    HTML,
    INVALID_CODE,
    JSON,
    _enrol,
    _enrolled,
    _held,
    _hidden_token,
    _html_sign_in,
)
from tests.support.mfa_server import MfaServer

RECENT_REQUIRED = {"error": "Recent authentication required"}
NO_STORE = "no-store"


async def _recovery_login(server: MfaServer, email: str, code: str) -> httpx.Response:
    client, token = await _held(server, email)
    return await client.post("/login/mfa", json={"recoveryCode": code}, headers=token)


# -- POST /mfa/recovery-codes --------------------------------------------------------------


async def test_new_recovery_codes_replace_the_old_ones(
    server: MfaServer, caplog: pytest.LogCaptureFixture
) -> None:
    """10 new codes: every old one is refused, a new one works once; no session ends."""
    user, client = await server.signed_in("ann@example.com")
    _, old = await _enrol(server, client)
    assert (await _recovery_login(server, "ann@example.com", old[0])).status_code == 200
    with caplog.at_level(logging.INFO, logger="sessionauth.security"):
        response = await client.post("/mfa/recovery-codes", headers=await csrf(client))
    assert response.status_code == 200, response.text
    fresh = response.json()["recoveryCodes"]
    assert len(set(fresh)) == 10
    assert not set(fresh) & set(old)
    assert f"recovery_codes_renewed user={user.id}" in caplog.text
    for code in old[1:3]:
        refused = await _recovery_login(server, "ann@example.com", code)
        assert (refused.status_code, refused.json()) == (401, INVALID_CODE)
    assert (await _recovery_login(server, "ann@example.com", fresh[0])).status_code == 200
    again = await _recovery_login(server, "ann@example.com", fresh[0])
    assert (again.status_code, again.json()) == (401, INVALID_CODE)
    # The epoch did not move: this session goes on with its token (no new CSRF token needed).
    assert (await client.get("/me")).status_code == 200


async def test_new_recovery_codes_keep_the_other_sessions(server: MfaServer) -> None:
    """Renewing codes changes what a login may use, not who is signed in: other sessions stay."""
    _, secret, _ = await _enrolled(server, "ann@example.com")
    signed_in = []
    for _ in range(2):
        client, token = await _held(server, "ann@example.com")
        done = await client.post("/login/mfa", json={"code": server.code(secret)}, headers=token)
        assert done.status_code == 200
        signed_in.append(client)
    kept, renewing = signed_in
    renewed = await renewing.post("/mfa/recovery-codes", headers=await csrf(renewing))
    assert renewed.status_code == 200
    assert (await kept.get("/me")).status_code == 200


async def test_new_recovery_codes_need_a_recent_login_and_totp(server: MfaServer) -> None:
    """Anonymous: 401; without TOTP: 409; a login over 10 minutes old: 403, old codes still good."""
    anonymous = await server.client().post("/mfa/recovery-codes")
    assert (anonymous.status_code, anonymous.json()) == (401, AUTH_REQUIRED)
    _, bob = await server.signed_in("bob@example.com")
    off = await bob.post("/mfa/recovery-codes", headers=await csrf(bob))
    assert off.status_code == 409
    assert "error" in off.json()
    _, ann = await server.signed_in("ann@example.com")
    _, codes = await _enrol(server, ann)
    server.clock.advance(601)
    stale = await ann.post("/mfa/recovery-codes", headers=await csrf(ann))
    assert (stale.status_code, stale.json()) == (403, RECENT_REQUIRED)
    assert (await _recovery_login(server, "ann@example.com", codes[0])).status_code == 200


@pytest.mark.redis
async def test_one_new_recovery_code_used_by_held_logins_at_once(redis_server: MfaServer) -> None:
    """Four held logins send one freshly renewed code at the same moment: exactly one signs in."""
    _, client = await redis_server.signed_in("ann@example.com")
    await _enrol(redis_server, client)
    renewed = await client.post("/mfa/recovery-codes", headers=await csrf(client))
    fresh = renewed.json()["recoveryCodes"]
    for code in fresh[:3]:
        held = [await _held(redis_server, "ann@example.com") for _ in range(4)]
        answers = await asyncio.gather(
            *(
                each.post("/login/mfa", json={"recoveryCode": code}, headers=token)
                for each, token in held
            )
        )
        statuses = sorted(a.status_code for a in answers)
        # One winner; the losers are wrong codes (401) or, once the rounds' failures fill the
        # per-account code budget that only an accepted code empties, throttled (429).
        assert statuses[0] == 200, statuses
        assert set(statuses[1:]) <= {401, 429}, statuses


async def test_openapi_lists_the_recovery_codes_route(server: MfaServer) -> None:
    """The route is in the schema (so schemathesis fuzzes it), with its 403 and 409."""
    schema = (await server.client().get("/openapi.json")).json()
    answers = schema["paths"]["/mfa/recovery-codes"]["post"]["responses"]
    assert {"200", "401", "403", "409"} <= set(answers)


# -- the pages ------------------------------------------------------------------------------


def _codes_on(html: str) -> list[str]:
    return re.findall(r"<li><code>([0-9A-Z]{5}-[0-9A-Z]{5})</code></li>", html)


async def _account_token(client: httpx.AsyncClient) -> str:
    return _hidden_token((await client.get("/account")).text)


async def test_enrolment_through_the_pages(server: MfaServer) -> None:
    """Set up → the QR page (no-store) → a wrong code's fixed error → the codes page, once."""
    await server.add_user("ann@example.com")
    client = await _html_sign_in(server, "ann@example.com")
    account = await client.get("/account")
    assert 'action="/ui/mfa/totp/setup"' in account.text
    assert (await client.get("/account/totp")).headers["location"] == "/account"
    started = await client.post(
        "/ui/mfa/totp/setup", data={"csrf_token": _hidden_token(account.text)}
    )
    assert (started.status_code, started.headers["location"]) == (303, "/account/totp")
    page = await client.get("/account/totp")
    assert page.headers["cache-control"] == NO_STORE
    assert '<figure class="qr-figure"><svg' in page.text
    shown = re.search(r'<code id="totp-secret" class="secret">([A-Z2-7 ]+)</code>', page.text)
    assert shown is not None
    secret = shown.group(1).replace(" ", "")
    assert len(secret) == 32
    assert all(len(group) == 4 for group in shown.group(1).split(" "))
    wrong = await client.post(
        "/ui/mfa/totp/confirm", data={"code": "000000", "csrf_token": _hidden_token(page.text)}
    )
    assert wrong.headers["location"] == "/account/totp?error=invalid"
    page = await client.get(wrong.headers["location"])
    assert "That code does not match" in page.text
    assert secret in page.text.replace(" ", "")  # the same pending secret, shown again
    confirmed = await client.post(
        "/ui/mfa/totp/confirm",
        data={"code": server.code(secret), "csrf_token": _hidden_token(page.text)},
    )
    assert confirmed.status_code == 200
    assert confirmed.headers["cache-control"] == NO_STORE
    assert "Save these recovery codes now" in confirmed.text
    codes = _codes_on(confirmed.text)
    assert len(set(codes)) == 10
    # Shown once: nothing pending any more, and the account page only counts them.
    assert (await client.get("/account/totp")).headers["location"] == "/account"
    account = await client.get("/account")
    assert '<strong id="recovery-left">10</strong>' in account.text
    assert not set(codes) & set(re.findall(r"[0-9A-Z]{5}-[0-9A-Z]{5}", account.text))
    assert (await client.get("/me", headers=JSON)).status_code == 200


async def test_page_forms_when_the_factor_is_not_in_the_right_state(server: MfaServer) -> None:
    """Confirm with nothing pending, renew or disable with TOTP off, set up twice: flashes."""
    await server.add_user("ann@example.com")
    client = await _html_sign_in(server, "ann@example.com")
    cases = [
        ("/ui/mfa/totp/confirm", "There is no setup to confirm."),
        ("/ui/mfa/recovery-codes", "Recovery codes come with two-factor authentication"),
        ("/ui/mfa/totp/disable", "Two-factor authentication is already off."),
    ]
    for path, message in cases:
        posted = await client.post(
            path, data={"code": "123456", "csrf_token": await _account_token(client)}
        )
        assert (posted.status_code, posted.headers["location"]) == (303, "/account"), path
        assert message in (await client.get("/account")).text, path
    user_id = str((await server.app.state.authenticator.users.get_by_email("ann@example.com")).id)
    setup = await server.app.state.authenticator.factors.start_totp(user_id, "ann@example.com")
    await server.app.state.authenticator.factors.confirm_totp(
        user_id, str(pyotp.TOTP(setup.secret).at(server.clock.now))
    )
    again = await client.post(
        "/ui/mfa/totp/setup", data={"csrf_token": await _account_token(client)}
    )
    assert again.headers["location"] == "/account"
    assert "Two-factor authentication is already on." in (await client.get("/account")).text


async def test_page_forms_renew_and_disable(server: MfaServer) -> None:
    """The renew form answers 10 new codes (no-store); disable takes a code, a wrong one refused."""
    await server.add_user("ann@example.com")
    client = await _html_sign_in(server, "ann@example.com")
    await client.post("/ui/mfa/totp/setup", data={"csrf_token": await _account_token(client)})
    page = await client.get("/account/totp")
    secret = re.sub(r"[^A-Z2-7]", "", page.text.split('id="totp-secret" class="secret">')[1][:60])
    confirmed = await client.post(
        "/ui/mfa/totp/confirm",
        data={"code": server.code(secret), "csrf_token": _hidden_token(page.text)},
    )
    old = _codes_on(confirmed.text)
    renewed = await client.post(
        "/ui/mfa/recovery-codes", data={"csrf_token": await _account_token(client)}
    )
    assert renewed.status_code == 200
    assert renewed.headers["cache-control"] == NO_STORE
    fresh = _codes_on(renewed.text)
    assert len(set(fresh)) == 10
    assert not set(fresh) & set(old)
    assert (await _recovery_login(server, "ann@example.com", old[0])).status_code == 401
    wrong = await client.post(
        "/ui/mfa/totp/disable", data={"code": "000000", "csrf_token": await _account_token(client)}
    )
    assert wrong.headers["location"] == "/account"
    assert "That code is not valid" in (await client.get("/account")).text
    off = await client.post(
        "/ui/mfa/totp/disable",
        data={"code": server.code(secret), "csrf_token": await _account_token(client)},
    )
    assert off.headers["location"] == "/account"
    account = await client.get("/account")
    assert "Two-factor authentication is off." in account.text
    assert "Signing in needs only your password" in account.text


async def test_page_form_disables_with_a_recovery_code(server: MfaServer) -> None:
    """The Turn off form takes a recovery code instead of the app's; both, or a wrong one, not."""
    await server.add_user("ann@example.com")
    client = await _html_sign_in(server, "ann@example.com")
    auth = server.app.state.authenticator
    user_id = str((await auth.users.get_by_email("ann@example.com")).id)
    setup = await auth.factors.start_totp(user_id, "ann@example.com")
    codes = await auth.factors.confirm_totp(
        user_id, str(pyotp.TOTP(setup.secret).at(server.clock.now))
    )
    account = await client.get("/account")
    assert 'name="recovery_code"' in account.text
    for data, message in [
        ({"code": "123456", "recovery_code": codes[0]}, "or a recovery code, not both"),
        ({"recovery_code": "AAAAA-AAAAA"}, "That code is not valid"),
    ]:
        refused = await client.post(
            "/ui/mfa/totp/disable", data={**data, "csrf_token": await _account_token(client)}
        )
        assert refused.headers["location"] == "/account"
        assert message in (await client.get("/account")).text
    assert await auth.factors.store.count_recovery_codes(user_id) == 10
    off = await client.post(
        "/ui/mfa/totp/disable",
        data={"code": "", "recovery_code": codes[0], "csrf_token": await _account_token(client)},
    )
    assert off.headers["location"] == "/account"
    account = await client.get("/account")
    assert "Two-factor authentication is off." in account.text
    assert "Signing in needs only your password" in account.text
    assert await auth.factors.methods(user_id) == []


async def test_a_stale_login_signs_in_again_then_comes_back(server: MfaServer) -> None:
    """A login over 10 minutes old is sent to sign in again, and a new login lets it through.

    The page and every form answer /login with a notice; the password login refreshes the
    authentication time, and the setup then works.
    """
    await server.add_user("ann@example.com")
    client = await _html_sign_in(server, "ann@example.com")
    token = await _account_token(client)
    server.clock.advance(601)
    reauth = "/login?notice=reauth&email=ann@example.com&next="
    posted = await client.post("/ui/mfa/totp/setup", data={"csrf_token": token})
    assert posted.headers["location"] == reauth + "/account"
    assert (await client.get("/account/totp")).headers["location"] == reauth + "/account/totp"
    for path in ("/ui/mfa/totp/confirm", "/ui/mfa/recovery-codes", "/ui/mfa/totp/disable"):
        refused = await client.post(path, data={"code": "123456", "csrf_token": token})
        assert refused.headers["location"].startswith(reauth), path
    ann = await server.app.state.authenticator.users.get_by_email("ann@example.com")
    assert await server.app.state.authenticator.factors.store.get_totp(str(ann.id)) is None
    login_page = await client.get(posted.headers["location"])
    assert "confirm it is you: sign in again" in login_page.text
    assert 'value="ann@example.com"' in login_page.text
    again = await client.post(
        "/ui/login",
        data={
            "email": "ann@example.com",
            "password": PASSWORD,
            "next": "/account",
            "csrf_token": _hidden_token(login_page.text),
        },
    )
    assert again.headers["location"] == "/account"
    started = await client.post(
        "/ui/mfa/totp/setup", data={"csrf_token": await _account_token(client)}
    )
    assert started.headers["location"] == "/account/totp"


async def test_page_forms_without_a_session_go_to_the_login_page(server: MfaServer) -> None:
    """A form posted after the session ended: the login page, saying so, then the page back."""
    client = server.client()
    client.headers.update(HTML)
    token = _hidden_token((await client.get("/login")).text)
    for path, back in [
        ("/ui/mfa/totp/setup", "/account"),
        ("/ui/mfa/totp/confirm", "/account/totp"),
        ("/ui/mfa/recovery-codes", "/account"),
        ("/ui/mfa/totp/disable", "/account"),
    ]:
        posted = await client.post(path, data={"code": "123456", "csrf_token": token})
        assert posted.headers["location"] == f"/login?notice=expired&next={back}", path
    page = await client.get("/account/totp")
    assert page.headers["location"].endswith("next=/account/totp")
