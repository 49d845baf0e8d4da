"""The held login gets a new session token (found by an attack review: it kept a planted one).

``hold_login`` keeps the password step's result in the values of the *anonymous* session the
request came with, without a new token. An attacker who planted that session's cookie in the
victim's browser (session fixation: a sibling subdomain, a shared computer) owns the held
login as much as the victim does: with one TOTP code of the victim (phished, shoulder-surfed)
and no password, the attacker completes the victim's login in their own browser.
"""

from __future__ import annotations

import pyotp

from tests.integration.test_api import PASSWORD, csrf
from tests.integration.test_mfa_api import (
    HTML,
    _enrolled,
    _held,
    _hidden_token,
)
from tests.support.mfa_server import STEP, MfaServer, mfa_server_fixture

server = mfa_server_fixture()


async def test_the_password_step_gives_the_held_login_a_new_session_token(
    server: MfaServer,
) -> None:
    """The victim's password step must not land in the attacker's planted session."""
    await _enrolled(server, "mallory@example.com")
    _, victim_secret, _ = await _enrolled(server, "ann@example.com")
    # The attacker's own password step leaves an anonymous session whose cookie they know.
    attacker, _ = await _held(server, "mallory@example.com")
    planted = dict(attacker.cookies)
    attacker_token = await csrf(attacker)
    victim = server.client()
    victim.cookies.update(planted)
    response = await victim.post(
        "/login",
        json={"email": "ann@example.com", "password": PASSWORD},
        headers=await csrf(victim),
    )
    assert response.json()["mfaRequired"] is True
    # The attacker, with the planted cookie and one code of the victim's, but no password.
    server.clock.advance(STEP)
    code = pyotp.TOTP(victim_secret).at(server.clock.now)
    taken = await attacker.post("/login/mfa", json={"code": code}, headers=attacker_token)
    assert taken.status_code == 401, f"attacker signed in as {taken.json().get('user')}"
    assert (await attacker.get("/me")).status_code == 401


async def test_the_login_form_gives_the_held_login_a_new_session_token(
    server: MfaServer,
) -> None:
    """The HTML login form's password step, too, moves the held login off a planted token."""
    await _enrolled(server, "mallory@example.com")
    await _enrolled(server, "ann@example.com")
    attacker, _ = await _held(server, "mallory@example.com")
    planted = dict(attacker.cookies)  # an anonymous session whose token the attacker knows
    victim = server.client()
    victim.headers.update(HTML)
    victim.cookies.update(planted)
    form_token = _hidden_token((await victim.get("/login")).text)
    posted = await victim.post(
        "/ui/login",
        data={"email": "ann@example.com", "password": PASSWORD, "csrf_token": form_token},
    )
    assert posted.status_code == 303
    assert posted.headers["location"].startswith("/login/mfa")
    assert posted.cookies.get("session") not in (None, planted["session"]), "token kept"
    # The planted token holds nothing of Ann's: the attacker's session is no held login now.
    assert (await attacker.get("/login/mfa", headers=HTML)).status_code != 200
