"""docs/snippets/two_factor_fastapi.py: enrolment and the two-step login, as printed, on SQLite.

Codes come from pyotp at the real clock, as an authenticator app computes them, and are never
waited for: the enrolment uses the current step's code and each later login the next step's,
both within the one step of drift the server accepts either side, so a step boundary crossed
during the test changes nothing. Each accepted code is of a later step than the one before it,
as the replay refusal requires.
"""

from __future__ import annotations

import re
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

import httpx
import pyotp
import pytest
from fastapi import FastAPI

from sessionauth.auth import Authenticator
from tests.support.examples import load_file

SECRET = "two-factor-secret-" * 3
EMAIL = "alice@example.com"
PASSWORD = "correct horse battery"
INVALID_CODE = {"error": "Invalid code"}
INVALID_CREDENTIALS = {"error": "Invalid credentials"}


@dataclass
class Site:
    """The snippet's app inside its lifespan, and clients with a cookie jar each."""

    app: FastAPI
    auth: Authenticator[int]
    clients: list[httpx.AsyncClient] = field(default_factory=list)

    def client(self) -> httpx.AsyncClient:
        transport = httpx.ASGITransport(app=self.app)
        client = httpx.AsyncClient(transport=transport, base_url="http://testserver")
        self.clients.append(client)
        return client


@pytest.fixture
def snippet(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    monkeypatch.setenv("APP_SECRET", SECRET)
    monkeypatch.setenv("APP_DATABASE", f"sqlite:///{tmp_path / 'app.db'}")
    monkeypatch.delenv("APP_STORE", raising=False)
    monkeypatch.delenv("APP_SECURE", raising=False)
    return load_file("docs/snippets/two_factor_fastapi.py", "two_factor_fastapi")


@pytest.fixture
async def site(snippet: ModuleType, tmp_path: Path) -> AsyncIterator[Site]:
    add_user = load_file("docs/snippets/add_user.py", "two_factor_add_user").add_user
    assert await add_user(EMAIL, PASSWORD, "user", f"sqlite:///{tmp_path / 'app.db'}") == 1
    app = snippet.app
    async with app.router.lifespan_context(app):
        running = Site(app, app.state.auth)
        yield running
        for client in running.clients:
            await client.aclose()


def current_code(secret: str) -> str:
    """The code an authenticator app shows now."""
    return str(pyotp.TOTP(secret).now())


def next_code(secret: str) -> str:
    """The code of the next time step: later than any code used so far, still accepted."""
    return str(pyotp.TOTP(secret).at(time.time() + 30))


def wrong_code(secret: str) -> str:
    """Six digits that are no code of the steps around now (nor of a step crossed meanwhile)."""
    totp, now = pyotp.TOTP(secret), time.time()
    near = {totp.at(now + 30 * steps) for steps in range(-3, 4)}
    return next(code for code in ("000000", "111111", "222222", "333333") if code not in near)


async def csrf(client: httpx.AsyncClient) -> dict[str, str]:
    return {"X-CSRF-Token": (await client.get("/csrf")).json()["csrfToken"]}


async def password_step(client: httpx.AsyncClient) -> httpx.Response:
    body = {"email": EMAIL, "password": PASSWORD}
    return await client.post("/login", json=body, headers=await csrf(client))


async def second_step(client: httpx.AsyncClient, **code: str) -> httpx.Response:
    return await client.post("/login/mfa", json=code, headers=await csrf(client))


async def enrol(client: httpx.AsyncClient) -> tuple[str, list[str]]:
    """Sign in with the password, set up TOTP and confirm it; return the secret and codes."""
    signed_in = await password_step(client)
    assert signed_in.json()["success"] is True, signed_in.text
    setup = await client.post("/mfa/totp/setup", headers=await csrf(client))
    assert setup.status_code == 200, setup.text
    secret: str = setup.json()["secret"]
    confirmed = await client.post(
        "/mfa/totp/confirm", json={"code": current_code(secret)}, headers=await csrf(client)
    )
    assert confirmed.status_code == 200, confirmed.text
    codes: list[str] = confirmed.json()["recoveryCodes"]
    return secret, codes


async def held(client: httpx.AsyncClient) -> None:
    """Do the password step of an account with TOTP: the login is held, nobody is signed in."""
    answer = await password_step(client)
    assert answer.status_code == 200, answer.text
    assert answer.json()["mfaRequired"] is True
    assert (await client.get("/me")).status_code == 401


async def test_enrolment_then_the_two_step_login(site: Site) -> None:
    """Setup, confirm (10 codes), then password → mfaRequired → wrong, replayed, right code."""
    client = site.client()
    assert (await password_step(client)).json()["success"] is True
    setup = await client.post("/mfa/totp/setup", headers=await csrf(client))
    assert setup.status_code == 200
    secret, url = setup.json()["secret"], setup.json()["otpauthUrl"]
    assert url.startswith("otpauth://totp/Example:alice%40example.com?")
    assert pyotp.parse_uri(url).secret == secret
    assert "issuer=Example" in url

    refused = await client.post(
        "/mfa/totp/confirm", json={"code": wrong_code(secret)}, headers=await csrf(client)
    )
    assert (refused.status_code, refused.json()) == (401, INVALID_CODE)
    stale_token = await csrf(client)
    enrolment_code = current_code(secret)
    confirmed = await client.post(
        "/mfa/totp/confirm", json={"code": enrolment_code}, headers=stale_token
    )
    assert confirmed.status_code == 200, confirmed.text
    codes = confirmed.json()["recoveryCodes"]
    assert len(set(codes)) == 10
    assert all(re.fullmatch(r"[0-9A-HJKMNP-TV-Z]{5}-[0-9A-HJKMNP-TV-Z]{5}", c) for c in codes)
    # This session stays signed in, under a new token: the CSRF token it had is void.
    assert (await client.get("/me")).json() == {"id": 1, "email": EMAIL}
    assert (await client.post("/logout", headers=stale_token)).status_code == 403
    fresh_token = {"X-CSRF-Token": confirmed.json()["csrfToken"]}
    assert (await client.post("/logout", headers=fresh_token)).status_code == 200

    answer = await password_step(client)
    assert answer.status_code == 200
    assert {key: value for key, value in answer.json().items() if key != "csrfToken"} == {
        "success": False,
        "mfaRequired": True,
        "methods": ["totp", "recovery"],
    }
    assert (await client.get("/me")).status_code == 401  # a held login grants nothing
    wrong = await second_step(client, code=wrong_code(secret))
    assert (wrong.status_code, wrong.json()) == (401, INVALID_CODE)
    replayed = await second_step(client, code=enrolment_code)
    assert (replayed.status_code, replayed.json()) == (401, INVALID_CODE)
    assert (await client.get("/me")).status_code == 401
    completed = await second_step(client, code=next_code(secret))  # still held after two misses
    assert completed.status_code == 200, completed.text
    assert (await client.get("/me")).json() == {"id": 1, "email": EMAIL}


async def test_a_second_setup_while_enabled_is_409(site: Site) -> None:
    """Setup with TOTP on is 409; confirm without a setup, disable and renew while off too."""
    client = site.client()
    assert (await password_step(client)).json()["success"] is True
    for path, body in (
        ("/mfa/totp/confirm", {"code": "123456"}),
        ("/mfa/totp/disable", {"code": "123456"}),
        ("/mfa/recovery-codes", None),
    ):
        off = await client.post(path, json=body, headers=await csrf(client))
        assert off.status_code == 409, (path, off.text)
    await client.post("/logout", headers=await csrf(client))
    await enrol(client)
    again = await client.post("/mfa/totp/setup", headers=await csrf(client))
    assert (again.status_code, again.json()) == (
        409,
        {"error": "Two-factor authentication is already enabled"},
    )


async def test_a_recovery_code_works_exactly_once(site: Site) -> None:
    """A recovery code completes one held login; the same code again is 401, the next works."""
    client = site.client()
    _, codes = await enrol(client)
    await client.post("/logout", headers=await csrf(client))
    await held(client)
    assert (await second_step(client, recoveryCode=codes[0])).status_code == 200
    assert (await client.get("/me")).status_code == 200
    await client.post("/logout", headers=await csrf(client))

    await held(client)
    used = await second_step(client, recoveryCode=codes[0])
    assert (used.status_code, used.json()) == (401, INVALID_CODE)
    # Case and dashes do not matter, as the guide says.
    other = await second_step(client, recoveryCode=codes[1].lower().replace("-", ""))
    assert other.status_code == 200, other.text


async def test_new_recovery_codes_replace_the_old_set(site: Site) -> None:
    """POST /mfa/recovery-codes: ten new codes; an old one no longer completes a login."""
    client = site.client()
    _, old = await enrol(client)
    renewed = await client.post("/mfa/recovery-codes", headers=await csrf(client))
    assert renewed.status_code == 200
    new = renewed.json()["recoveryCodes"]
    assert len(new) == 10
    assert set(new).isdisjoint(old)
    assert (await client.get("/me")).status_code == 200  # no session ended
    await client.post("/logout", headers=await csrf(client))
    await held(client)
    stale = await second_step(client, recoveryCode=old[0])
    assert (stale.status_code, stale.json()) == (401, INVALID_CODE)
    assert (await second_step(client, recoveryCode=new[0])).status_code == 200


async def test_code_guesses_are_throttled_and_a_password_does_not_refill_them(site: Site) -> None:
    """Five wrong codes, then 429 even for the right one; a new password step changes nothing."""
    client = site.client()
    secret, _ = await enrol(client)
    await client.post("/logout", headers=await csrf(client))
    await held(client)
    for _ in range(5):
        assert (await second_step(client, code=wrong_code(secret))).status_code == 401
    throttled = await second_step(client, code=next_code(secret))
    assert (throttled.status_code, throttled.json()) == (429, {"error": "Too many attempts"})
    assert int(throttled.headers["retry-after"]) > 0
    elsewhere = site.client()
    await held(elsewhere)  # the right password is accepted: its counter is not the codes'
    again = await second_step(elsewhere, code=next_code(secret))
    assert again.status_code == 429


async def test_enabling_and_disabling_end_the_other_sessions_and_keep_this_one(
    site: Site,
) -> None:
    """The epoch moves with the factor: the other device is signed out, this one is not."""
    here, there = site.client(), site.client()
    assert (await password_step(there)).json()["success"] is True
    secret, codes = await enrol(here)
    assert (await there.get("/me")).status_code == 401
    assert (await here.get("/me")).status_code == 200

    await held(there)
    assert (await second_step(there, recoveryCode=codes[0])).status_code == 200
    disabled = await here.post(
        "/mfa/totp/disable", json={"code": next_code(secret)}, headers=await csrf(here)
    )
    assert disabled.status_code == 200, disabled.text
    assert disabled.json()["revoked"] == 1
    assert (await there.get("/me")).status_code == 401
    assert (await here.get("/me")).status_code == 200
    assert (await password_step(there)).json()["success"] is True  # a password suffices again


async def test_a_lost_app_is_turned_off_with_a_recovery_code(site: Site) -> None:
    """Signed in with one recovery code, another turns TOTP off: the password suffices again."""
    here = site.client()
    _, codes = await enrol(here)
    lost = site.client()
    await held(lost)
    assert (await second_step(lost, recoveryCode=codes[0])).status_code == 200
    off = await lost.post(
        "/mfa/totp/disable", json={"recoveryCode": codes[1]}, headers=await csrf(lost)
    )
    assert off.status_code == 200, off.text
    assert (await password_step(site.client())).json()["success"] is True


async def test_a_change_of_the_account_meanwhile_refuses_the_held_login(site: Site) -> None:
    """A password reset or "sign out everywhere" after the password step: 401, not signed in."""
    here = site.client()
    secret, codes = await enrol(here)
    waiting = site.client()
    await held(waiting)
    await site.auth.revoke_all_sessions(1)
    refused = await second_step(waiting, recoveryCode=codes[0])
    assert (refused.status_code, refused.json()) == (401, INVALID_CREDENTIALS)
    assert (await waiting.get("/me")).status_code == 401

    await held(waiting)
    await site.auth.set_password(1, "a brand new passphrase")
    reset = await second_step(waiting, code=next_code(secret))
    assert (reset.status_code, reset.json()) == (401, INVALID_CREDENTIALS)
    assert (await waiting.get("/me")).status_code == 401


async def test_changing_factors_needs_a_session(site: Site) -> None:
    """Anonymous: 401 on every enrolment route; no held login: /login/mfa is 401."""
    client = site.client()
    for path in ("/mfa/totp/setup", "/mfa/totp/confirm", "/mfa/recovery-codes"):
        answer = await client.post(path, json={"code": "123456"}, headers=await csrf(client))
        assert answer.status_code == 401, path
    nothing_held = await second_step(client, code="123456")
    assert (nothing_held.status_code, nothing_held.json()) == (401, INVALID_CREDENTIALS)
