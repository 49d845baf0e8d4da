"""Second factors in the reference server: TOTP enrolment and the two-step login, over HTTP.

The TOTP codes come from pyotp at the app's clock, which the tests move by whole steps: each
code is then of a step no earlier code used (a code works once).
"""

from __future__ import annotations

import asyncio
import re
from typing import Any

import httpx
import pytest

from sessionauth.stores.users import User
from tests.integration.test_api import (
    AUTH_REQUIRED,
    INVALID,
    PASSWORD,
    csrf,
    login,
)
from tests.support.mfa_server import MfaServer

INVALID_CODE = {"error": "Invalid code"}
HTML = {"Accept": "text/html", "Origin": "http://testserver"}
JSON = {"Accept": "application/json"}


async def _enrol(server: MfaServer, client: httpx.AsyncClient) -> tuple[str, list[str]]:
    """Enable TOTP for the client's user; return the secret and the recovery codes."""
    setup = await client.post("/mfa/totp/setup", headers=await csrf(client))
    assert setup.status_code == 200, setup.text
    secret = setup.json()["secret"]
    confirm = await client.post(
        "/mfa/totp/confirm", json={"code": server.code(secret)}, headers=await csrf(client)
    )
    assert confirm.status_code == 200, confirm.text
    return secret, confirm.json()["recoveryCodes"]


async def _enrolled(server: MfaServer, email: str) -> tuple[User, str, list[str]]:
    user, client = await server.signed_in(email)
    secret, codes = await _enrol(server, client)
    return user, secret, codes


async def _held(server: MfaServer, email: str) -> tuple[httpx.AsyncClient, dict[str, str]]:
    """A client whose password step passed: its login waits for a code."""
    client = server.client()
    response = await login(client, email)
    assert response.status_code == 200
    body = response.json()
    assert body["mfaRequired"] is True
    return client, {"X-CSRF-Token": body["csrfToken"]}


async def test_totp_setup_confirm_and_the_other_sessions_end(server: MfaServer) -> None:
    """Setup shows the secret; confirming enables TOTP, answers 10 codes, keeps this session."""
    _, client = await server.signed_in("ann@example.com")
    other = server.client()
    assert (await login(other, "ann@example.com")).status_code == 200
    setup = await client.post("/mfa/totp/setup", headers=await csrf(client))
    body = setup.json()
    assert set(body) == {"secret", "otpauthUrl"}
    assert body["otpauthUrl"].startswith("otpauth://totp/")
    assert body["secret"] in body["otpauthUrl"]
    wrong = await client.post(
        "/mfa/totp/confirm", json={"code": "000000"}, headers=await csrf(client)
    )
    assert (wrong.status_code, wrong.json()) == (400, INVALID_CODE)
    confirm = await client.post(
        "/mfa/totp/confirm", json={"code": server.code(body["secret"])}, headers=await csrf(client)
    )
    codes = confirm.json()["recoveryCodes"]
    assert confirm.status_code == 200
    assert len(set(codes)) == 10
    assert (await client.get("/me")).status_code == 200
    assert (await other.get("/me")).status_code == 401
    again = await client.post("/mfa/totp/setup", headers=await csrf(client))
    assert again.status_code == 409


async def test_totp_routes_need_a_session_and_a_recent_login(server: MfaServer) -> None:
    """Anonymous: 401. A login older than 10 minutes: 403, nothing set up."""
    anonymous = server.client()
    response = await anonymous.post("/mfa/totp/setup")
    assert (response.status_code, response.json()) == (401, AUTH_REQUIRED)
    _, client = await server.signed_in("ann@example.com")
    server.clock.advance(601)
    stale = await client.post("/mfa/totp/setup", headers=await csrf(client))
    assert stale.status_code == 403
    assert stale.json() == {"error": "Recent authentication required"}
    assert (await client.get("/me")).status_code == 200


async def test_two_step_login_holds_a_session_that_grants_nothing(server: MfaServer) -> None:
    """Password right: mfaRequired, and the held session is anonymous until the code."""
    user, secret, _ = await _enrolled(server, "ann@example.com")
    client = server.client()
    response = await login(client, "ann@example.com")
    body = response.json()
    assert (response.status_code, body["success"], body["mfaRequired"]) == (200, False, True)
    assert body["methods"] == ["totp", "recovery"]
    token = {"X-CSRF-Token": body["csrfToken"]}
    for path in ("/me", "/dashboard", "/sessions", "/admin"):
        assert (await client.get(path)).status_code == 401, path
    assert (await client.post("/logout", headers=token)).status_code == 401
    assert (await client.post("/mfa/totp/setup", headers=token)).status_code == 401
    wrong = await client.post("/login/mfa", json={"code": "000000"}, headers=token)
    assert (wrong.status_code, wrong.json()) == (401, INVALID_CODE)
    done = await client.post("/login/mfa", json={"code": server.code(secret)}, headers=token)
    assert done.status_code == 200, done.text
    assert done.json()["user"] == {"id": user.id, "email": "ann@example.com", "role": "user"}
    assert (await client.get("/me")).json()["id"] == user.id
    # The login is used up: the same request again has nothing to complete.
    replay = await client.post(
        "/login/mfa", json={"code": server.code(secret)}, headers=await csrf(client)
    )
    assert (replay.status_code, replay.json()) == (401, INVALID)


async def test_code_step_without_a_held_login_or_after_it_expired(server: MfaServer) -> None:
    """No password step, or one older than 5 minutes: 401 Invalid credentials."""
    _, secret, _ = await _enrolled(server, "ann@example.com")
    fresh = server.client()
    response = await fresh.post("/login/mfa", json={"code": "123456"})
    assert (response.status_code, response.json()) == (401, INVALID)
    client, token = await _held(server, "ann@example.com")
    server.clock.advance(301)
    late = await client.post("/login/mfa", json={"code": server.code(secret)}, headers=token)
    assert (late.status_code, late.json()) == (401, INVALID)
    assert (await client.get("/me")).status_code == 401


async def test_a_password_change_between_the_steps_refuses_the_held_login(
    server: MfaServer,
) -> None:
    """The held login carries the epoch: a password changed meanwhile makes it stale."""
    _, secret, _ = await _enrolled(server, "ann@example.com")
    client, token = await _held(server, "ann@example.com")
    auth = server.app.state.authenticator
    user = await auth.users.get_by_email("ann@example.com")
    await auth.set_password(user.id, "another good password")
    response = await client.post("/login/mfa", json={"code": server.code(secret)}, headers=token)
    assert (response.status_code, response.json()) == (401, INVALID)
    assert (await client.get("/me")).status_code == 401


async def test_a_factor_reset_and_new_enrolment_between_the_steps_refuses_it(
    server: MfaServer,
) -> None:
    """Reset (an admin) and enrolled again: a right code of the new secret still loses."""
    user, _, _ = await _enrolled(server, "ann@example.com")
    client, token = await _held(server, "ann@example.com")
    auth = server.app.state.authenticator
    await auth.reset_factors(user.id)
    setup = await auth.factors.start_totp(str(user.id), user.email)
    await auth.factors.confirm_totp(str(user.id), server.code(setup.secret))
    response = await client.post(
        "/login/mfa", json={"code": server.code(setup.secret)}, headers=token
    )
    assert (response.status_code, response.json()) == (401, INVALID)
    assert (await client.get("/me")).status_code == 401


async def test_a_recovery_code_completes_a_login_once(server: MfaServer) -> None:
    """A recovery code logs in; the same code again is refused."""
    _, _, codes = await _enrolled(server, "ann@example.com")
    client, token = await _held(server, "ann@example.com")
    done = await client.post("/login/mfa", json={"recoveryCode": codes[0]}, headers=token)
    assert done.status_code == 200, done.text
    again, token = await _held(server, "ann@example.com")
    used = await again.post("/login/mfa", json={"recoveryCode": codes[0]}, headers=token)
    assert (used.status_code, used.json()) == (401, INVALID_CODE)
    assert (await again.get("/me")).status_code == 401


@pytest.mark.redis
async def test_one_recovery_code_used_by_two_held_logins_at_once(
    redis_server: MfaServer,
) -> None:
    """Two held logins send one recovery code at the same moment: exactly one signs in."""
    _, secret, codes = await _enrolled(redis_server, "ann@example.com")
    for round_ in range(3):
        held = [await _held(redis_server, "ann@example.com") for _ in range(4)]
        answers = await asyncio.gather(
            *(
                client.post("/login/mfa", json={"recoveryCode": codes[round_]}, headers=token)
                for client, token in held
            )
        )
        assert sorted(a.status_code for a in answers) == [200, 401, 401, 401]
        # The losers' codes count until an accepted code clears them (the winner's may have
        # come first, and a password step no longer does): one accepted TOTP code, in turn.
        client, token = await _held(redis_server, "ann@example.com")
        accepted = await client.post(
            "/login/mfa", json={"code": redis_server.code(secret)}, headers=token
        )
        assert accepted.status_code == 200


async def test_the_code_step_is_throttled(server: MfaServer) -> None:
    """Wrong codes count like wrong passwords: the sixth is 429 with Retry-After."""
    _, secret, _ = await _enrolled(server, "ann@example.com")
    client, token = await _held(server, "ann@example.com")
    statuses = []
    for _ in range(6):
        response = await client.post("/login/mfa", json={"code": "000000"}, headers=token)
        statuses.append(response.status_code)
    assert statuses == [401] * 5 + [429]
    assert int(response.headers["retry-after"]) > 0
    right = await client.post("/login/mfa", json={"code": server.code(secret)}, headers=token)
    assert right.status_code == 429


async def test_disable_needs_a_code_then_the_login_is_one_step_again(server: MfaServer) -> None:
    """Disabling: a wrong code 401, a right one ends the others; login no longer asks."""
    _, secret, _ = await _enrolled(server, "ann@example.com")
    client, token = await _held(server, "ann@example.com")
    done = await client.post("/login/mfa", json={"code": server.code(secret)}, headers=token)
    assert done.status_code == 200
    other, other_token = await _held(server, "ann@example.com")
    wrong = await client.post(
        "/mfa/totp/disable", json={"code": "000000"}, headers=await csrf(client)
    )
    assert (wrong.status_code, wrong.json()) == (401, INVALID_CODE)
    off = await client.post(
        "/mfa/totp/disable", json={"code": server.code(secret)}, headers=await csrf(client)
    )
    # The enrolling session of _enrolled ends; this one stays.
    assert off.json() == {"success": True, "revoked": 1}
    assert (await client.get("/me")).status_code == 200
    # The login held before the change is stale, and a new one needs only the password.
    stale = await other.post(
        "/login/mfa", json={"recoveryCode": "AAAAA-AAAAA"}, headers=other_token
    )
    assert stale.status_code == 401
    assert (await login(server.client(), "ann@example.com")).json()["success"] is True
    again = await client.post(
        "/mfa/totp/disable", json={"code": server.code(secret)}, headers=await csrf(client)
    )
    assert again.status_code == 409


async def _recovered(server: MfaServer, email: str, code: str) -> httpx.AsyncClient:
    """A client signed in (just now) with the recovery code ``code``: the app is lost."""
    client, token = await _held(server, email)
    done = await client.post("/login/mfa", json={"recoveryCode": code}, headers=token)
    assert done.status_code == 200, done.text
    return client


async def test_a_recovery_code_disables_totp_then_the_login_is_one_step(
    server: MfaServer,
) -> None:
    """App lost: signed in with one recovery code, another turns TOTP off; then enrol anew.

    The other sessions end (the enrolling one), this one stays; the password alone signs in.
    """
    user, _, codes = await _enrolled(server, "ann@example.com")
    client = await _recovered(server, "ann@example.com", codes[0])
    off = await client.post(
        "/mfa/totp/disable", json={"recoveryCode": codes[1]}, headers=await csrf(client)
    )
    assert (off.status_code, off.json()) == (200, {"success": True, "revoked": 1})
    assert (await client.get("/me")).status_code == 200
    factors = server.app.state.authenticator.factors
    assert await factors.methods(str(user.id)) == []
    assert await factors.store.count_recovery_codes(str(user.id)) == 0
    signed_in = await login(server.client(), "ann@example.com")
    assert signed_in.json()["success"] is True
    # The old set went with the factor: nothing left to disable with it.
    again = await client.post(
        "/mfa/totp/disable", json={"recoveryCode": codes[2]}, headers=await csrf(client)
    )
    assert again.status_code == 409
    secret, _ = await _enrol(server, client)
    assert secret
    assert await factors.methods(str(user.id)) == ["totp", "recovery"]


async def test_a_used_recovery_code_does_not_disable_totp(server: MfaServer) -> None:
    """The recovery code the login spent is refused by disable: 401, TOTP stays on."""
    user, _, codes = await _enrolled(server, "ann@example.com")
    client = await _recovered(server, "ann@example.com", codes[0])
    used = await client.post(
        "/mfa/totp/disable", json={"recoveryCode": codes[0]}, headers=await csrf(client)
    )
    assert (used.status_code, used.json()) == (401, INVALID_CODE)
    factors = server.app.state.authenticator.factors
    assert await factors.methods(str(user.id)) == ["totp", "recovery"]
    assert await factors.store.count_recovery_codes(str(user.id)) == 9


ONE_CODE = "exactly one of code and recoveryCode"


@pytest.mark.parametrize(
    ("body", "said"),
    [
        ({"code": "123456", "recoveryCode": "AAAAA-AAAAA"}, ONE_CODE),
        ({"code": None, "recoveryCode": None}, ONE_CODE),
        ({"recoveryCode": 1}, "recoveryCode"),
        ({"recoveryCode": ["AAAAA-AAAAA"]}, "recoveryCode"),
        ({"recoveryCode": ""}, "recoveryCode"),
        ({"recoveryCode": "A" * 65}, "recoveryCode"),
        ({"recoveryCode": "AAAAA-AAAAA", "recovery_code": "AAAAA-AAAAA"}, "recovery_code"),
    ],
)
async def test_disable_takes_exactly_one_code_as_a_string(
    server: MfaServer, body: dict[str, Any], said: str
) -> None:
    """Both codes, neither, or a mistyped recovery code: 400 saying why; nothing is spent."""
    user, _, codes = await _enrolled(server, "ann@example.com")
    client = await _recovered(server, "ann@example.com", codes[0])
    response = await client.post("/mfa/totp/disable", json=body, headers=await csrf(client))
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error.startswith("Invalid request"), error
    assert said in error, error
    factors = server.app.state.authenticator.factors
    assert await factors.store.count_recovery_codes(str(user.id)) == 9


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"code": 123456},
        {"code": None},
        {"recoveryCode": ["x"]},
        {"code": "123456", "recoveryCode": "AAAAA-AAAAA"},
        {"code": "1" * 65},
        {"code": "123456", "extra": 1},
        [],
        "123456",
    ],
)
async def test_the_code_step_refuses_bodies_of_the_wrong_shape(
    server: MfaServer, body: Any
) -> None:
    """Missing, mistyped, both or oversized codes: 400 with a message, never a 500."""
    await _enrolled(server, "ann@example.com")
    client, token = await _held(server, "ann@example.com")
    response = await client.post("/login/mfa", json=body, headers=token)
    assert response.status_code == 400, response.text
    assert response.json()["error"].startswith("Invalid request")


@pytest.mark.parametrize("path", ["/mfa/totp/confirm", "/mfa/totp/disable"])
@pytest.mark.parametrize("body", [{}, {"code": 1}, {"code": ""}, {"code": "1" * 65}, [1]])
async def test_enrolment_routes_refuse_bodies_of_the_wrong_shape(
    server: MfaServer, path: str, body: Any
) -> None:
    """The TOTP routes' bodies are checked before anything else: 400, never a 500."""
    _, client = await server.signed_in("ann@example.com")
    response = await client.post(path, json=body, headers=await csrf(client))
    assert response.status_code == 400, response.text
    assert response.json()["error"].startswith("Invalid request")


async def test_confirm_and_disable_without_the_factor_are_409(server: MfaServer) -> None:
    """Confirming with no setup pending, or disabling TOTP that is off: 409."""
    _, client = await server.signed_in("ann@example.com")
    for path in ("/mfa/totp/confirm", "/mfa/totp/disable"):
        response = await client.post(path, json={"code": "123456"}, headers=await csrf(client))
        assert response.status_code == 409, path


async def test_the_password_step_of_an_account_without_factors_is_unchanged(
    server: MfaServer,
) -> None:
    """No second factor: the login signs in at once, as before."""
    await server.add_user("bob@example.com")
    response = await login(server.client(), "bob@example.com", PASSWORD)
    assert response.status_code == 200
    assert response.json()["success"] is True


async def test_openapi_lists_the_second_factor_routes(server: MfaServer) -> None:
    """The new routes are in the schema, with their bodies and error answers."""
    schema = (await server.client().get("/openapi.json")).json()
    for path in ("/login/mfa", "/mfa/totp/setup", "/mfa/totp/confirm", "/mfa/totp/disable"):
        assert "post" in schema["paths"][path], path
        assert "400" in schema["paths"][path]["post"]["responses"] or path == "/mfa/totp/setup"
    assert "MfaRequired" in schema["components"]["schemas"]
    # Disabling takes a TOTP code or a recovery code, both documented.
    body = schema["paths"]["/mfa/totp/disable"]["post"]["requestBody"]["content"]
    ref = body["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]
    disable = schema["components"]["schemas"][ref]
    assert set(disable["properties"]) == {"code", "recoveryCode"}
    assert "recoveryCode" in disable["description"]


def _hidden_token(html: str) -> str:
    return re.findall(r'<input type="hidden" name="csrf_token" value="([^"]*)">', html)[0]


async def test_the_login_form_asks_for_the_code_and_grants_nothing_before(
    server: MfaServer,
) -> None:
    """The HTML login of an account with TOTP holds the login; the code page completes it."""
    _, _, codes = await _enrolled(server, "ann@example.com")
    client = server.client()
    client.headers.update(HTML)
    token = _hidden_token((await client.get("/login")).text)
    form = {"email": "ann@example.com", "password": PASSWORD, "next": "/account"}
    posted = await client.post("/ui/login", data={**form, "csrf_token": token})
    assert (posted.status_code, posted.headers["location"]) == (303, "/login/mfa?next=/account")
    assert (await client.get("/me", headers=JSON)).status_code == 401
    account = await client.get("/account")
    assert account.status_code == 303
    page = await client.get("/login/mfa?next=/account")
    assert page.status_code == 200
    assert 'action="/ui/login/mfa"' in page.text
    wrong = await client.post(
        "/ui/login/mfa",
        data={"code": "000000", "next": "/account", "csrf_token": _hidden_token(page.text)},
    )
    assert wrong.headers["location"] == "/login/mfa?next=/account&error=invalid"
    page = await client.get(wrong.headers["location"])
    assert "That code is not valid" in page.text
    done = await client.post(
        "/ui/login/mfa",
        data={
            "recovery_code": codes[0],
            "next": "/account",
            "csrf_token": _hidden_token(page.text),
        },
    )
    assert (done.status_code, done.headers["location"]) == (303, "/account")
    assert (await client.get("/me", headers=JSON)).status_code == 200


async def test_the_code_page_without_a_held_login_goes_to_the_login_page(
    server: MfaServer,
) -> None:
    """Nothing held: to the login page; it says "expired" only to a browser that had a session."""
    client = server.client()
    client.headers.update(HTML)
    page = await client.get("/login/mfa?next=/account")
    assert (page.status_code, page.headers["location"]) == (303, "/login?next=/account")
    token = _hidden_token((await client.get("/login")).text)
    posted = await client.post("/ui/login/mfa", data={"code": "123456", "csrf_token": token})
    assert posted.headers["location"] == "/login?next=/"
    name = server.app.state.settings.cookie().name
    ended = {"cookie": f"{name}=a-session-that-ended"}  # a held login timed out, say
    page = await client.get("/login/mfa?next=/account", headers=ended)
    assert page.headers["location"] == "/login?notice=expired&next=/account"


async def test_the_code_page_sends_a_signed_in_browser_on_without_a_notice(
    server: MfaServer,
) -> None:
    """Signed in, nothing held: on to ``next``, not "your session has ended" (it has not)."""
    await server.add_user("bob@example.com")
    client = await _html_sign_in(server, "bob@example.com")
    page = await client.get("/login/mfa?next=/account")
    assert (page.status_code, page.headers["location"]) == (303, "/account")
    token = _hidden_token((await client.get("/account")).text)
    data = {"code": "123456", "csrf_token": token, "next": "/account"}
    posted = await client.post("/ui/login/mfa", data=data)
    assert (posted.status_code, posted.headers["location"]) == (303, "/account")
    assert (await client.get("/me", headers=JSON)).status_code == 200


async def _html_sign_in(server: MfaServer, email: str) -> httpx.AsyncClient:
    client = server.client()
    client.headers.update(HTML)
    token = _hidden_token((await client.get("/login")).text)
    form = {"email": email, "password": PASSWORD, "csrf_token": token}
    assert (await client.post("/ui/login", data=form)).headers["location"] == "/"
    return client


async def test_account_shows_the_factor_and_recovery_codes_left(server: MfaServer) -> None:
    """/account says whether TOTP is on and how many recovery codes are left."""
    await server.add_user("bob@example.com")
    off = await (await _html_sign_in(server, "bob@example.com")).get("/account")
    assert "Signing in needs only your password" in off.text
    _, _, codes = await _enrolled(server, "ann@example.com")
    client, token = await _held(server, "ann@example.com")
    done = await client.post("/login/mfa", json={"recoveryCode": codes[0]}, headers=token)
    assert done.status_code == 200
    account = await client.get("/account", headers={"Accept": "text/html"})
    assert '<strong id="recovery-left">9</strong>' in account.text


async def test_admin_page_shows_factors_and_resets_them(server: MfaServer) -> None:
    """/admin/users marks accounts with 2FA; its reset removes them and signs the user out."""
    user, _, _ = await _enrolled(server, "ann@example.com")
    await server.add_user("root@example.com", role="admin")
    admin = await _html_sign_in(server, "root@example.com")
    listing = await admin.get("/admin/users")
    assert "2FA: totp, recovery" in listing.text
    assert f'action="/ui/admin/users/{user.id}/reset-mfa"' in listing.text
    reset = await admin.post(
        f"/ui/admin/users/{user.id}/reset-mfa", data={"csrf_token": _hidden_token(listing.text)}
    )
    assert (reset.status_code, reset.headers["location"]) == (303, "/admin/users")
    after = await admin.get("/admin/users")
    assert "Removed the second factors of ann@example.com; 1 session(s) signed out." in after.text
    assert "2FA:" not in after.text
    assert (await login(server.client(), "ann@example.com")).json()["success"] is True
    as_user = await _html_sign_in(server, "ann@example.com")
    refused = await as_user.post(
        f"/ui/admin/users/{user.id}/reset-mfa",
        data={"csrf_token": _hidden_token((await as_user.get("/account")).text)},
    )
    assert refused.status_code == 403


async def test_a_held_login_replaces_the_session_of_someone_else(server: MfaServer) -> None:
    """Bob signed in, then Ann's password in the same browser: Bob's rights and data are gone."""
    await _enrolled(server, "ann@example.com")
    _, client = await server.signed_in("bob@example.com")
    response = await client.post(
        "/login",
        json={"email": "ann@example.com", "password": PASSWORD},
        headers=await csrf(client),
    )
    assert response.json()["mfaRequired"] is True
    assert (await client.get("/me")).status_code == 401
    assert (await client.get("/dashboard")).status_code == 401
