"""Two-factor authentication (TOTP) in a FastAPI app: enrolment and the two-step login.

Accounts and their second factors live in APP_DATABASE (SQLite by default); sessions and the
attempt counts in APP_STORE, the same database unless set. Needs ``sessionauth[mfa]``.
"""

# --8<-- [start:setup]
from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from sessionauth import (
    CookieConfig,
    CSRFMiddleware,
    Keyring,
    SessionMiddleware,
    csrf_token,
    open_backend,
)
from sessionauth.auth import Authenticator, Guards, LoginThrottle, PasswordHasher
from sessionauth.auth.factors import SecondFactors  # the mfa extra: pyotp, cryptography
from sessionauth.auth.totp import TotpCipher
from sessionauth.errors import SecondFactorRequired
from sessionauth.fastapi import Dependencies, session_of

DATABASE = os.environ.get("APP_DATABASE", "sqlite:///app.db")  # accounts and their factors
STORE = os.environ.get("APP_STORE", DATABASE)  # sessions, attempt counts, held logins
keyring = Keyring.from_string(os.environ["APP_SECRET"])  # also seals the TOTP secrets
accounts = open_backend(DATABASE)
store = open_backend(STORE) if STORE != DATABASE else accounts
sessions = store.session_store()
cookie = CookieConfig(secure=os.environ.get("APP_SECURE") == "1")
guards = Guards(user_id_type=int)
deps = Dependencies(guards, cookie=cookie)
# Changing what signs in (a factor on or off, new recovery codes) needs a login of the last
# 10 minutes: a session left open on a shared computer is not enough.
recent_login = Depends(deps.require_recent_auth(600))


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """The Authenticator with second factors; close every connection at shutdown."""
    app.state.auth = Authenticator(
        users=accounts.user_store(),
        sessions=sessions,
        hasher=PasswordHasher(),
        throttle=LoginThrottle(store.attempt_counter()),  # counts code guesses too
        factors=SecondFactors(
            # With the accounts, never in a session store that may lose its keys: lost
            # factors would let every account in with its password alone.
            store=accounts.factor_store(),
            cipher=TotpCipher.from_keyring(keyring),
            issuer="Example",  # the name authenticator apps show
        ),
    )
    try:
        yield
    finally:
        await store.aclose()
        await accounts.aclose()  # safe to repeat when both are one backend


async def invalid_body(request: Request, exc: Exception) -> JSONResponse:
    """A malformed body as ``{"error": ...}`` (FastAPI's own is 422 ``{"detail": [...]}``)."""
    return JSONResponse({"error": "Invalid request body"}, status_code=400)


# guards.exception_handlers answers the second factor's errors too: InvalidCode 401
# {"error": "Invalid code"}, FactorConflict 409, TooManyAttempts 429, SecondFactorRequired
# 401 {"mfaRequired": true, ...} (if a route lets it through).
app = FastAPI(
    lifespan=lifespan,
    exception_handlers={**guards.exception_handlers, RequestValidationError: invalid_body},
)
app.add_middleware(CSRFMiddleware, keyring=keyring)
app.add_middleware(SessionMiddleware, store=sessions, keyring=keyring, cookie=cookie)


def authenticator(request: Request) -> Authenticator[int]:
    """The Authenticator the lifespan made."""
    auth: Authenticator[int] = request.app.state.auth
    return auth


def address_of(request: Request) -> str:
    """The client address the throttle counts."""
    return request.client.host if request.client else "unknown"


# --8<-- [end:setup]


@app.get("/csrf")
async def get_csrf(request: Request) -> dict[str, str]:
    """A CSRF token: send it back as ``X-CSRF-Token`` on every POST."""
    return {"csrfToken": csrf_token(session_of(request), keyring)}


# --8<-- [start:login]
class Credentials(BaseModel):
    """The login form."""

    email: str
    password: str


class SecondStep(BaseModel):
    """The login's second step: exactly one of a TOTP code and a recovery code."""

    code: str | None = None
    recoveryCode: str | None = None  # noqa: N815 - the JSON field's name


@app.post("/login")
async def login(body: Credentials, request: Request) -> dict[str, object]:
    """The password step: signed in, or the login held until its second factor."""
    auth = authenticator(request)
    session = session_of(request)
    accepted = await auth.authenticate(body.email, body.password, address=address_of(request))
    try:
        await auth.login(
            session,
            accepted,
            address=address_of(request),
            user_agent=request.headers.get("user-agent"),
        )
    except SecondFactorRequired as exc:
        # The password was right, and the account has a second factor: keep the login in an
        # anonymous session (it grants nothing) for POST /login/mfa. The session got a new
        # token, so the client needs a new CSRF token.
        auth.hold_login(session, accepted)
        return {
            "success": False,
            "mfaRequired": True,
            "methods": exc.methods,  # ["totp", "recovery"]
            "csrfToken": csrf_token(session, keyring),
        }
    return {"success": True, "csrfToken": csrf_token(session, keyring)}


@app.post("/login/mfa")
async def login_mfa(body: SecondStep, request: Request) -> dict[str, object]:
    """The code step: a TOTP code or a recovery code completes the held login."""
    session = session_of(request)
    # InvalidCode (401) keeps the login held for another try; InvalidCredentials (401) means
    # no held login (none, expired, or the account changed since the password step).
    await authenticator(request).complete_login(
        session,
        code=body.code,
        recovery_code=body.recoveryCode,
        address=address_of(request),
        user_agent=request.headers.get("user-agent"),
    )
    return {"success": True, "csrfToken": csrf_token(session, keyring)}


# --8<-- [end:login]


# --8<-- [start:enrol]
class Code(BaseModel):
    """A current code from the authenticator app."""

    code: str


@app.post("/mfa/totp/setup", dependencies=[recent_login])
async def totp_setup(request: Request) -> dict[str, str]:
    """A new secret for the authenticator app (409 if TOTP is on already)."""
    setup = await authenticator(request).start_totp_setup(session_of(request))
    return {"secret": setup.secret, "otpauthUrl": setup.otpauth_url}  # show as a QR code


@app.post("/mfa/totp/confirm", dependencies=[recent_login])
async def totp_confirm(body: Code, request: Request) -> dict[str, object]:
    """The app's first code turns TOTP on; the 10 recovery codes are shown this once."""
    session = session_of(request)
    codes = await authenticator(request).confirm_totp(
        session, body.code, address=address_of(request)
    )
    # The user's other sessions ended; this one has a new token, hence a new CSRF token.
    return {"recoveryCodes": codes, "csrfToken": csrf_token(session, keyring)}


@app.post("/mfa/recovery-codes", dependencies=[recent_login])
async def recovery_codes(request: Request) -> dict[str, object]:
    """Ten new recovery codes; the old ones stop working (409 if TOTP is off)."""
    auth = authenticator(request)
    codes = await auth.new_recovery_codes(session_of(request), address=address_of(request))
    return {"recoveryCodes": codes}


@app.post("/mfa/totp/disable", dependencies=[recent_login])
async def totp_disable(body: SecondStep, request: Request) -> dict[str, object]:
    """TOTP off, given a current code or (the app lost) a recovery code.

    The other sessions end, this one gets a new token. Neither or both: InvalidCode, 401.
    """
    session = session_of(request)
    ended = await authenticator(request).disable_totp(
        session, body.code, recovery_code=body.recoveryCode, address=address_of(request)
    )
    return {"revoked": ended, "csrfToken": csrf_token(session, keyring)}


# --8<-- [end:enrol]


@app.get("/me", dependencies=[Depends(deps.require_auth)])
async def me(request: Request) -> dict[str, object]:
    """The signed-in user; 401 for anyone else (a held login too)."""
    user = await authenticator(request).current_user(session_of(request))
    return {"id": user.id, "email": user.email}


@app.post("/logout", dependencies=[Depends(deps.require_auth)])
async def logout(request: Request) -> dict[str, bool]:
    """End the session."""
    await authenticator(request).logout(session_of(request))
    return {"success": True}
