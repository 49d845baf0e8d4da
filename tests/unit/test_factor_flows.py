"""The Authenticator's second-factor methods, through the session middleware.

A real SQLite user store, the memory session and factor stores and a memory throttle; requests
go through ``SessionMiddleware`` so that "this session is kept, the others end" is checked on
real cookies.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from http.cookiejar import CookieJar, DefaultCookiePolicy
from pathlib import Path
from typing import Any

import httpx
import pyotp
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from sessionauth.auth.authenticator import Authenticator
from sessionauth.auth.events import AuthEvent, SessionsRevoked
from sessionauth.auth.factor_events import (
    FactorDisabled,
    FactorEnabled,
    FactorsReset,
    RecoveryCodeUsed,
    SecondFactorFailed,
)
from sessionauth.auth.factors import SecondFactors
from sessionauth.auth.passkeys import ChallengeKeeper, Passkeys, RelyingParty
from sessionauth.auth.passwords import PasswordHasher
from sessionauth.auth.throttle import LoginThrottle
from sessionauth.auth.totp import STEP_SECONDS, TotpCipher
from sessionauth.errors import (
    ConfigurationError,
    FactorConflict,
    InvalidCode,
    InvalidCredentials,
    NotAuthenticated,
    SecondFactorRequired,
    TooManyAttempts,
    UserNotFound,
)
from sessionauth.middleware import SessionMiddleware
from sessionauth.session import Session
from sessionauth.stores.factors import TotpRecord
from sessionauth.stores.memory import MemoryCounter, MemoryStore
from sessionauth.stores.memory_factors import MemoryFactorStore
from sessionauth.stores.users import User, UserStore
from sessionauth.tokens import Keyring
from tests.support.backends import user_store
from tests.support.clock import FakeClock
from tests.support.webauthn import ORIGIN, SoftAuthenticator

KEYRING = Keyring(["m" * 40])
NAME = "__Host-session"
ALICE = "alice@example.com"
PASSWORD = "correct horse battery"


def _session(request: Request) -> Session:
    session = request.scope["session"]
    assert isinstance(session, Session)
    return session


def make_app(auth: Authenticator) -> Starlette:
    """A minimal API over the factor methods, mapping exceptions as an edge would."""

    async def login(request: Request) -> Response:
        """The password, and in the same request the code if the account needs one."""
        body = await request.json()
        session = _session(request)
        accepted = await auth.authenticate(body["email"], body["password"], address="x")
        try:
            await auth.login(session, accepted, address="x", user_agent="t")
        except SecondFactorRequired:
            if "code" not in body and "recoveryCode" not in body:
                raise
            auth.hold_login(session, accepted)
            await auth.complete_login(
                session,
                code=body.get("code"),
                recovery_code=body.get("recoveryCode"),
                address="x",
                user_agent="t",
            )
        return JSONResponse({"id": accepted.user.id})

    async def passkey_login_options(request: Request) -> Response:
        return Response(auth.passkey_login_options(), media_type="application/json")

    async def passkey_login(request: Request) -> Response:
        credential = await request.json()
        await auth.login_with_passkey(_session(request), credential, address="x", user_agent="t")
        return JSONResponse({"user": _session(request).user_id})

    async def me(request: Request) -> Response:
        return JSONResponse({"user": _session(request).user_id})

    async def setup(request: Request) -> Response:
        started = await auth.start_totp_setup(_session(request))
        return JSONResponse({"secret": started.secret, "otpauthUrl": started.otpauth_url})

    async def confirm(request: Request) -> Response:
        code = (await request.json())["code"]
        codes = await auth.confirm_totp(_session(request), code, address="x")
        return JSONResponse({"recoveryCodes": codes})

    async def passkey_options(request: Request) -> Response:
        options = await auth.passkey_registration_options(_session(request))
        return Response(options, media_type="application/json")

    async def passkey_register(request: Request) -> Response:
        passkey = await auth.register_passkey(_session(request), await request.json(), name="K")
        return JSONResponse({"name": passkey.name})

    async def passkey_delete(request: Request) -> Response:
        ended = await auth.delete_passkey(
            _session(request), bytes.fromhex(request.query_params["id"])
        )
        return JSONResponse({"ended": ended})

    async def disable(request: Request) -> Response:
        body = await request.json()
        ended = await auth.disable_totp(
            _session(request), body.get("code"), recovery_code=body.get("recoveryCode")
        )
        return JSONResponse({"ended": ended})

    def status(code: int) -> Any:
        async def handler(request: Request, exc: Exception) -> Response:
            del request
            return JSONResponse({"error": str(exc)}, status_code=code)

        return handler

    return Starlette(
        routes=[
            Route("/login", login, methods=["POST"]),
            Route("/me", me),
            Route("/totp/setup", setup, methods=["POST"]),
            Route("/totp/confirm", confirm, methods=["POST"]),
            Route("/totp/disable", disable, methods=["POST"]),
            Route("/passkeys/options", passkey_options, methods=["POST"]),
            Route("/passkeys/login/options", passkey_login_options, methods=["POST"]),
            Route("/passkeys/login", passkey_login, methods=["POST"]),
            Route("/passkeys", passkey_register, methods=["POST"]),
            Route("/passkeys", passkey_delete, methods=["DELETE"]),
        ],
        exception_handlers={
            NotAuthenticated: status(401),
            InvalidCode: status(401),
            SecondFactorRequired: status(401),
            FactorConflict: status(409),
            TooManyAttempts: status(429),
        },
    )


@dataclass
class Env:
    """The Authenticator, its stores, clock and client, and the events it published."""

    auth: Authenticator
    users: UserStore
    sessions: MemoryStore
    factors: MemoryFactorStore
    clock: FakeClock
    client: httpx.AsyncClient
    events: list[AuthEvent] = field(default_factory=list)

    async def call(
        self, method: str, path: str, cookie: str | None = None, **kwargs: Any
    ) -> httpx.Response:
        headers = {"cookie": f"{NAME}={cookie}"} if cookie is not None else {}
        return await self.client.request(method, path, headers=headers, **kwargs)

    async def login(self, code: str | None = None, *, recovery_code: str | None = None) -> str:
        body = {"email": ALICE, "password": PASSWORD} | ({"code": code} if code else {})
        body |= {"recoveryCode": recovery_code} if recovery_code else {}
        response = await self.call("POST", "/login", json=body)
        assert response.status_code == 200, response.text
        return cookie_of(response)

    async def whoami(self, cookie: str) -> str | None:
        user: str | None = (await self.call("GET", "/me", cookie)).json()["user"]
        return user

    def code(self, secret: str, steps_ahead: int = 0) -> str:
        return pyotp.TOTP(secret).at(self.clock() + steps_ahead * STEP_SECONDS)

    async def enable(self, cookie: str) -> tuple[str, str, list[str]]:
        """Set up and confirm TOTP; return the secret, the new cookie and the recovery codes."""
        started = await self.call("POST", "/totp/setup", cookie)
        assert started.status_code == 200, started.text
        secret = started.json()["secret"]
        confirmed = await self.call(
            "POST", "/totp/confirm", cookie, json={"code": self.code(secret)}
        )
        assert confirmed.status_code == 200, confirmed.text
        return secret, cookie_of(confirmed), confirmed.json()["recoveryCodes"]


def cookie_of(response: httpx.Response) -> str:
    value = response.headers["set-cookie"].split(";")[0].split("=", 1)[1]
    assert value
    return value


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[Env]:
    clock = FakeClock(1_700_000_000.0)
    users = user_store(f"sqlite:///{tmp_path / 'users.db'}", clock=clock)
    sessions = MemoryStore(clock=clock)
    store = MemoryFactorStore()
    events: list[AuthEvent] = []
    auth = Authenticator(
        users=users,
        sessions=sessions,
        hasher=PasswordHasher.for_tests(),
        throttle=LoginThrottle(MemoryCounter(clock), clock=clock, max_per_account=3),
        clock=clock,
        hooks=[events.append],
        factors=SecondFactors(
            store=store, cipher=TotpCipher.from_keyring(KEYRING), issuer="Test", clock=clock
        ),
        passkeys=Passkeys(
            store=store,
            rp=RelyingParty(id="example.com", name="Test", origins=(ORIGIN,)),
            challenges=ChallengeKeeper(MemoryCounter(clock), KEYRING, clock=clock),
            clock=clock,
        ),
    )
    await users.create(ALICE, await auth.hasher.hash(PASSWORD), "user")
    app = SessionMiddleware(make_app(auth), store=sessions, keyring=KEYRING, clock=clock)
    # Cookies are sent by hand, per request: a jar would mix the "browsers" up.
    jar = CookieJar(policy=DefaultCookiePolicy(allowed_domains=[]))
    client = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="https://testserver", cookies=jar
    )
    async with client:
        yield Env(auth, users, sessions, store, clock, client, events)
    await users.aclose()


async def alice(env: Env) -> User:
    user = await env.users.get_by_email(ALICE)
    assert user is not None
    return user


async def test_a_password_alone_never_signs_in_an_account_with_totp(env: Env) -> None:
    """login() after authenticate(), the code never asked for: refused, and no session.

    This app's /login asks only when the request carries a code; without one it fails closed.
    """
    here = await env.login()
    await env.enable(here)
    refused = await env.client.post("/login", json={"email": ALICE, "password": PASSWORD})
    assert refused.status_code == 401
    assert refused.json() == {"error": "second factor required"}
    assert "set-cookie" not in refused.headers
    accepted = await env.auth.authenticate(ALICE, PASSWORD, address="x")
    with pytest.raises(SecondFactorRequired) as raised:
        await env.auth.login(Session(), accepted, address="x", user_agent="t")
    assert raised.value.methods == ["totp", "recovery"]


async def test_setup_returns_a_secret_and_its_url(env: Env) -> None:
    """Setup answers the secret and an otpauth URL with the issuer; the factor stays off."""
    cookie = await env.login()
    body = (await env.call("POST", "/totp/setup", cookie)).json()
    assert body["otpauthUrl"].startswith("otpauth://totp/Test:alice%40example.com?")
    assert f"secret={body['secret']}" in body["otpauthUrl"]
    user = await alice(env)
    assert env.auth.factors is not None
    assert not await env.auth.factors.totp_enabled(str(user.id))
    stored = await env.factors.get_totp(str(user.id))
    assert stored is not None
    assert body["secret"].encode() not in stored.secret  # encrypted at rest


async def test_confirm_enables_totp_keeps_this_session_and_ends_the_others(env: Env) -> None:
    """Confirming returns 10 codes, moves the epoch, keeps (and renews) this session only."""
    here, elsewhere = await env.login(), await env.login()
    user = await alice(env)
    before = await env.sessions.principal(str(user.id))
    secret, renewed, codes = await env.enable(here)
    assert len(codes) == 10
    assert renewed != here
    assert await env.whoami(renewed) == str(user.id)
    assert await env.whoami(here) is None
    assert await env.whoami(elsewhere) is None
    after = await env.sessions.principal(str(user.id))
    assert before is not None
    assert after is not None
    assert after.epoch != before.epoch
    assert any(isinstance(e, FactorEnabled) for e in env.events)
    revoked = [e for e in env.events if isinstance(e, SessionsRevoked)]
    assert [(e.count, e.why, e.address) for e in revoked] == [(1, "account-changed", "x")]
    assert await env.factors.count_recovery_codes(str(user.id)) == 10
    assert secret not in repr(env.events)


async def test_an_enrolment_that_a_revocation_overtakes_is_undone(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Signed out everywhere while the confirm runs: 401, TOTP off again, the session ended.

    Otherwise whoever held the session would leave the account behind a secret only they have,
    and the confirm's rotation would carry the revoked session over to the new epoch.
    """
    here = await env.login()
    user = await alice(env)
    secret = (await env.call("POST", "/totp/setup", here)).json()["secret"]
    set_codes = env.factors.set_recovery_codes

    async def revoked_meanwhile(user_id: str, hashes: list[str]) -> None:
        await set_codes(user_id, hashes)
        if hashes:
            await env.auth.revoke_all_sessions(user.id)

    monkeypatch.setattr(env.factors, "set_recovery_codes", revoked_meanwhile)
    confirmed = await env.call("POST", "/totp/confirm", here, json={"code": env.code(secret)})
    assert confirmed.status_code == 401
    assert not await env.factors.count_recovery_codes(str(user.id))
    assert env.auth.factors is not None
    assert await env.auth.factors.methods(str(user.id)) == []
    assert await env.whoami(here) is None
    assert "Max-Age=0" in confirmed.headers.get("set-cookie", "")


async def test_a_wrong_code_enables_nothing_and_ends_nothing(env: Env) -> None:
    """A wrong confirmation code is 401; the factor stays off and every session lives."""
    here, elsewhere = await env.login(), await env.login()
    secret = (await env.call("POST", "/totp/setup", here)).json()["secret"]
    wrong = env.code(secret, steps_ahead=5)
    response = await env.call("POST", "/totp/confirm", here, json={"code": wrong})
    assert response.status_code == 401
    assert await env.whoami(elsewhere) is not None
    assert env.auth.factors is not None
    assert not await env.auth.factors.totp_enabled(str((await alice(env)).id))


async def test_setup_while_enabled_is_a_conflict(env: Env) -> None:
    """A second setup cannot replace an enabled factor (409): disabling needs a code."""
    _, cookie, _ = await env.enable(await env.login())
    assert (await env.call("POST", "/totp/setup", cookie)).status_code == 409
    confirm = await env.call("POST", "/totp/confirm", cookie, json={"code": "123456"})
    assert confirm.status_code == 409


async def test_disable_refuses_the_replayed_code_and_takes_a_fresh_one(env: Env) -> None:
    """The code that enabled TOTP cannot disable it; the next step's code does, ending others."""
    secret, cookie, _ = await env.enable(await env.login())
    other = await env.login(code=env.code(secret, steps_ahead=1))
    replay = await env.call("POST", "/totp/disable", cookie, json={"code": env.code(secret)})
    assert replay.status_code == 401
    env.clock.advance(2 * STEP_SECONDS)  # past the step the second login used
    response = await env.call("POST", "/totp/disable", cookie, json={"code": env.code(secret)})
    assert response.status_code == 200, response.text
    renewed = cookie_of(response)
    user = await alice(env)
    assert await env.whoami(renewed) == str(user.id)
    assert await env.whoami(other) is None
    assert await env.factors.get_totp(str(user.id)) is None
    assert await env.factors.count_recovery_codes(str(user.id)) == 0
    assert any(isinstance(e, FactorDisabled) for e in env.events)


async def test_disable_codes_are_throttled_like_passwords(env: Env) -> None:
    """Wrong codes count on the account: after the limit even the right code gets 429."""
    secret, cookie, _ = await env.enable(await env.login())
    env.clock.advance(STEP_SECONDS)
    for _ in range(3):
        wrong = env.code(secret, steps_ahead=10)
        response = await env.call("POST", "/totp/disable", cookie, json={"code": wrong})
        assert response.status_code == 401
    right = await env.call("POST", "/totp/disable", cookie, json={"code": env.code(secret)})
    assert right.status_code == 429
    assert sum(isinstance(e, SecondFactorFailed) for e in env.events) == 3


async def test_a_recovery_code_disables_totp_once_and_the_set_goes_with_it(env: Env) -> None:
    """Signed in with a recovery code, another turns TOTP off; it is spent, the others gone.

    The other sessions end and this one is renewed, as with a TOTP code; the password alone
    then signs in, and a new app can be enrolled.
    """
    _, enrolling, codes = await env.enable(await env.login())
    here = await env.login(recovery_code=codes[0])
    elsewhere = await env.login(recovery_code=codes[1])
    user = await alice(env)
    response = await env.call("POST", "/totp/disable", here, json={"recoveryCode": codes[2]})
    assert response.status_code == 200, response.text
    assert response.json() == {"ended": 2}
    renewed = cookie_of(response)
    assert renewed != here
    assert await env.whoami(renewed) == str(user.id)
    assert await env.whoami(elsewhere) is None
    assert await env.whoami(enrolling) is None
    assert await env.factors.get_totp(str(user.id)) is None
    assert await env.factors.count_recovery_codes(str(user.id)) == 0
    assert env.auth.factors is not None
    assert await env.auth.factors.methods(str(user.id)) == []
    used = [e.remaining for e in env.events if isinstance(e, RecoveryCodeUsed)]
    assert used == [9, 8, 0]
    disabled = [e for e in env.events if isinstance(e, FactorDisabled)]
    assert [(e.kind, e.user_id) for e in disabled] == [("totp", user.id)]
    # The same code, and any other of the old set: TOTP is off, nothing to disable.
    for code in codes[2:4]:
        again = await env.call("POST", "/totp/disable", renewed, json={"recoveryCode": code})
        assert again.status_code == 409
    assert await env.whoami(await env.login()) == str(user.id)
    await env.enable(renewed)


async def test_a_used_recovery_code_cannot_disable_totp(env: Env) -> None:
    """A recovery code spent on a login is refused by disable (401, counted); TOTP stays on."""
    _, _, codes = await env.enable(await env.login())
    here = await env.login(recovery_code=codes[0])
    response = await env.call("POST", "/totp/disable", here, json={"recoveryCode": codes[0]})
    assert (response.status_code, response.json()) == (401, {"error": "Invalid code"})
    user = await alice(env)
    assert env.auth.factors is not None
    assert await env.auth.factors.totp_enabled(str(user.id))
    assert await env.factors.count_recovery_codes(str(user.id)) == 9
    failed = [e.kind for e in env.events if isinstance(e, SecondFactorFailed)]
    assert failed == ["recovery"]
    assert not any(isinstance(e, FactorDisabled) for e in env.events)


async def test_disable_recovery_codes_count_on_the_code_throttle(env: Env) -> None:
    """Wrong recovery codes count like wrong TOTP codes: past the limit a right one is 429."""
    _, cookie, codes = await env.enable(await env.login())
    for _ in range(3):
        wrong = await env.call(
            "POST", "/totp/disable", cookie, json={"recoveryCode": "AAAAA-AAAAA"}
        )
        assert wrong.status_code == 401
    right = await env.call("POST", "/totp/disable", cookie, json={"recoveryCode": codes[0]})
    assert right.status_code == 429
    user = await alice(env)
    assert await env.factors.count_recovery_codes(str(user.id)) == 10


async def test_disable_needs_exactly_one_kind_of_code(env: Env) -> None:
    """Neither or both of a code and a recovery code: InvalidCode, uncounted, nothing spent."""
    secret, cookie, codes = await env.enable(await env.login())
    env.clock.advance(STEP_SECONDS)
    for body in ({}, {"code": env.code(secret), "recoveryCode": codes[0]}):
        response = await env.call("POST", "/totp/disable", cookie, json=body)
        assert (response.status_code, response.json()) == (401, {"error": "Invalid code"})
    user = await alice(env)
    assert await env.factors.count_recovery_codes(str(user.id)) == 10
    assert not any(isinstance(e, SecondFactorFailed) for e in env.events)
    response = await env.call("POST", "/totp/disable", cookie, json={"code": env.code(secret)})
    assert response.status_code == 200, response.text


async def test_two_disables_with_one_recovery_code_at_once_one_wins(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two sessions send one recovery code at once, both past the TOTP-is-on check: one wins.

    The factor read waits for both, so both reach the store's atomic consume of the code.
    """
    _, _, codes = await env.enable(await env.login())
    first = await env.login(recovery_code=codes[0])
    second = await env.login(recovery_code=codes[1])
    both_read = asyncio.Barrier(2)
    read = env.factors.get_totp

    async def get_totp_together(user_id: str) -> TotpRecord | None:
        found = await read(user_id)
        async with asyncio.timeout(5):
            await both_read.wait()
        return found

    monkeypatch.setattr(env.factors, "get_totp", get_totp_together)
    answers = await asyncio.gather(
        *(
            env.call("POST", "/totp/disable", cookie, json={"recoveryCode": codes[2]})
            for cookie in (first, second)
        )
    )
    monkeypatch.undo()
    assert sorted(a.status_code for a in answers) == [200, 401]
    loser = next(a for a in answers if a.status_code == 401)
    assert loser.json() == {"error": "Invalid code"}
    user = await alice(env)
    assert await env.factors.get_totp(str(user.id)) is None
    assert sum(isinstance(e, FactorDisabled) for e in env.events) == 1
    assert [e.remaining for e in env.events if isinstance(e, RecoveryCodeUsed)] == [9, 8, 0]


async def test_one_code_at_once_twice_passes_the_second_step_once(env: Env) -> None:
    """Two concurrent second steps with the same TOTP code: exactly one passes."""
    secret, _, _ = await env.enable(await env.login())
    env.clock.advance(STEP_SECONDS)
    user = await alice(env)
    code = env.code(secret)
    results = await asyncio.gather(
        *(env.auth.verify_second_factor(user, code=code) for _ in range(2)),
        return_exceptions=True,
    )
    assert sum(r is None for r in results) == 1
    assert sum(isinstance(r, InvalidCode) for r in results) == 1


async def test_a_recovery_code_used_twice_at_once_passes_once(env: Env) -> None:
    """Two concurrent uses of one recovery code (any spelling): one passes, then it is gone."""
    _, _, codes = await env.enable(await env.login())
    user = await alice(env)
    spellings = [codes[0], codes[0].lower().replace("-", " ")]
    results = await asyncio.gather(
        *(env.auth.verify_second_factor(user, recovery_code=c) for c in spellings),
        return_exceptions=True,
    )
    assert sum(r is None for r in results) == 1
    assert sum(isinstance(r, InvalidCode) for r in results) == 1
    used = [e for e in env.events if isinstance(e, RecoveryCodeUsed)]
    assert [e.remaining for e in used] == [9]
    with pytest.raises(InvalidCode):
        await env.auth.verify_second_factor(user, recovery_code=codes[0])
    await env.auth.verify_second_factor(user, recovery_code=codes[1])


async def test_a_held_login_of_a_changed_account_spends_no_recovery_code(env: Env) -> None:
    """Signed out everywhere between the steps: the held login is refused, the code kept.

    The refusal comes before the code is checked, so the recovery code stays unused.
    """
    _, _, codes = await env.enable(await env.login())
    user = await alice(env)
    accepted = await env.auth.authenticate(ALICE, PASSWORD, address="x")
    held = Session()
    env.auth.hold_login(held, accepted)
    await env.auth.revoke_all_sessions(user.id)
    with pytest.raises(InvalidCredentials):
        await env.auth.complete_login(held, recovery_code=codes[0], address="x", user_agent="t")
    assert env.auth.pending_login(held) is None
    assert not [e for e in env.events if isinstance(e, RecoveryCodeUsed)]
    await env.auth.verify_second_factor(user, recovery_code=codes[0])


async def test_the_second_step_needs_exactly_one_kind_of_code(env: Env) -> None:
    """Neither or both of code and recovery code is refused, as is a user without TOTP."""
    user = await alice(env)
    with pytest.raises(InvalidCode):
        await env.auth.verify_second_factor(user)
    with pytest.raises(InvalidCode):
        await env.auth.verify_second_factor(user, code="123456", recovery_code="x")
    with pytest.raises(InvalidCode):
        await env.auth.verify_second_factor(user, code="123456")


async def test_reset_removes_every_factor_and_ends_every_session(env: Env) -> None:
    """An administrator's reset deletes TOTP, codes and passkeys and ends all the sessions."""
    secret, cookie, _ = await env.enable(await env.login())
    other = await env.login(code=env.code(secret, steps_ahead=1))
    user = await alice(env)
    ended = await env.auth.reset_factors(user.id, actor=None)
    assert ended == 2
    assert await env.whoami(cookie) is None
    assert await env.whoami(other) is None
    assert env.auth.factors is not None
    assert await env.auth.factors.methods(str(user.id)) == []
    assert any(isinstance(e, FactorsReset) for e in env.events)
    with pytest.raises(UserNotFound):
        await env.auth.reset_factors(999_999)


async def test_an_authenticator_without_factors_says_so(env: Env) -> None:
    """Built without ``factors``, the factor methods raise ConfigurationError."""
    bare = Authenticator(
        users=env.users, sessions=env.sessions, hasher=env.auth.hasher, throttle=None
    )
    with pytest.raises(ConfigurationError):
        await bare.reset_factors((await alice(env)).id)


async def test_adding_and_deleting_a_passkey_moves_the_epoch(env: Env) -> None:
    """Registering or deleting a passkey ends the other sessions and keeps (renews) this one."""
    here, elsewhere = await env.login(), await env.login()
    device = SoftAuthenticator()
    options = await env.call("POST", "/passkeys/options", here)
    assert options.status_code == 200, options.text
    # The challenge now lives in this session (same token, no new cookie).
    added = await env.call("POST", "/passkeys", here, json=device.create(options.text))
    assert added.status_code == 200, added.text
    here = cookie_of(added)
    assert await env.whoami(elsewhere) is None
    user = await alice(env)
    assert await env.whoami(here) == str(user.id)
    assert len(await env.factors.list_passkeys(str(user.id))) == 1
    options = await env.call("POST", "/passkeys/login/options")
    signed_in = await env.call("POST", "/passkeys/login", json=device.get(options.text))
    assert signed_in.json() == {"user": str(user.id)}
    again = cookie_of(signed_in)
    deleted = await env.call("DELETE", f"/passkeys?id={device.credential_id.hex()}", here)
    assert deleted.json() == {"ended": 1}
    assert await env.whoami(again) is None
    here = cookie_of(deleted)
    assert await env.whoami(here) == str(user.id)
    assert await env.factors.list_passkeys(str(user.id)) == []
    missing = await env.call("DELETE", f"/passkeys?id={device.credential_id.hex()}", here)
    assert missing.status_code == 409
    kinds = [(type(e).__name__, getattr(e, "kind", None)) for e in env.events]
    assert ("FactorEnabled", "passkey") in kinds
    assert ("FactorDisabled", "passkey") in kinds
