"""The JSON routes of second factors: the login's code step, TOTP enrolment, recovery codes.

``POST /login`` (in :mod:`sessionauth.server.api`) answers ``mfaRequired`` for an account with
a second factor and holds the login in an anonymous session; ``POST /login/mfa`` completes it
(see :mod:`sessionauth.auth.two_step`). Enabling and disabling TOTP need a recent login
(:data:`RECENT_AUTH` seconds), and so does a new set of recovery codes: a session left open on
a shared computer must not be enough to take over or strip the account's second factor. Enabling
or disabling keeps the caller's session, with a new token (fetch ``GET /csrf-token`` again, as
after a password change), and ends the user's others; new recovery codes change no session.
"""

from __future__ import annotations

from typing import Annotated, Any, cast
from urllib.parse import urlsplit

from fastapi import APIRouter, Depends, HTTPException
from starlette.requests import Request

from sessionauth.auth.factors import DEFAULT_ISSUER, SecondFactors
from sessionauth.auth.guards import check_recent_auth, session_of
from sessionauth.auth.totp import TotpCipher
from sessionauth.csrf import csrf_token
from sessionauth.errors import InvalidCode
from sessionauth.policy import Clock, system_clock
from sessionauth.server import schemas as s
from sessionauth.server.databases import Databases
from sessionauth.server.page_context import authenticator, client_address
from sessionauth.server.settings import Settings
from sessionauth.tokens import Keyring

__all__ = ["RECENT_AUTH", "issuer_of", "router", "second_factors"]

RECENT_AUTH = 600.0
"""Seconds since the login within which TOTP may be enabled or disabled."""

router = APIRouter()


async def _recent_user(request: Request) -> str:
    """The user id if they logged in within :data:`RECENT_AUTH` (the Authenticator's clock)."""
    return check_recent_auth(session_of(request), RECENT_AUTH, authenticator(request).clock)


RecentUserId = Annotated[str, Depends(_recent_user)]


def _errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI: these statuses answer ``{"error": ...}``."""
    return {status: {"model": s.ErrorBody} for status in statuses}


def issuer_of(site_url: str) -> str:
    """The name authenticator apps show for this server: the site's host name."""
    return urlsplit(site_url).hostname or DEFAULT_ISSUER


def second_factors(
    settings: Settings, databases: Databases, keyring: Keyring, *, clock: Clock = system_clock
) -> SecondFactors:
    """The server's TOTP and recovery codes, kept with the accounts (the users' backend).

    Not in the session store: sessions may be on a Redis that a restart without persistence,
    a flush or a failover to a replica that missed writes empties. Sessions lost that way only
    sign people out; factors lost that way would let every account in with its password alone
    and bring used recovery codes back. The throttles of the code step stay with the sessions.
    TOTP secrets are sealed under ``keyring`` (the secret key's), so a copy of the database
    alone does not give the codes away.
    """
    return SecondFactors(
        store=databases.users.factor_store(),
        cipher=TotpCipher.from_keyring(keyring),
        issuer=issuer_of(settings.site_url),
        clock=clock,
    )


@router.post("/login/mfa", responses=_errors(400, 401, 403, 429))
async def login_mfa(body: s.MfaLoginBody, request: Request) -> s.LoginResult:
    """Complete a login held by ``POST /login`` with a TOTP code or a recovery code.

    401 ``Invalid code`` for a wrong, replayed or used code (the login stays held; throttled
    like passwords); 401 ``Invalid credentials`` without a held login, once it expired (5
    minutes), or if the account changed since the password step (password, factors, role,
    sessions revoked): the password step must then be done again.
    """
    auth = authenticator(request)
    session = session_of(request)
    login, principal = await auth.complete_login(
        session,
        code=body.code,
        recovery_code=body.recoveryCode,
        address=client_address(request),
        user_agent=request.headers.get("user-agent"),
    )
    token = csrf_token(session, request.app.state.keyring)
    # The reference server's users are a built-in UserStore: int ids.
    user_id = cast(int, login.user.id)
    user = s.UserSummary(id=user_id, email=login.user.email, role=principal.role)
    return s.LoginResult(user=user, csrfToken=token)


@router.post("/mfa/totp/setup", responses=_errors(401, 403, 409))
async def totp_setup(request: Request, user_id: RecentUserId) -> s.TotpSetupResult:
    """Begin enabling TOTP: a new secret, shown once (replacing a setup not confirmed).

    409 if TOTP is enabled already; 403 ``Recent authentication required`` if the login is
    older than 10 minutes.
    """
    setup = await authenticator(request).start_totp_setup(session_of(request))
    return s.TotpSetupResult(secret=setup.secret, otpauthUrl=setup.otpauth_url)


@router.post("/mfa/totp/confirm", responses=_errors(400, 401, 403, 409))
async def totp_confirm(
    body: s.MfaCodeBody, request: Request, user_id: RecentUserId
) -> s.RecoveryCodes:
    """Enable TOTP with a first code from the app; answer the 10 recovery codes, shown once.

    400 ``Invalid code`` for a code that does not match the pending secret; 409 without a
    pending setup. The user's other sessions end; this one gets a new token.
    """
    session = session_of(request)
    try:
        codes = await authenticator(request).confirm_totp(
            session, body.code, address=client_address(request)
        )
    except InvalidCode as exc:
        raise HTTPException(400, "Invalid code") from exc
    return s.RecoveryCodes(recoveryCodes=codes)


@router.post("/mfa/totp/disable", responses=_errors(400, 401, 403, 409, 429))
async def totp_disable(
    body: s.TotpDisableBody, request: Request, user_id: RecentUserId
) -> s.Revoked:
    """Disable TOTP (and its recovery codes) given a current code or a recovery code.

    Exactly one of ``code`` and ``recoveryCode`` (400 otherwise): a user who lost their app
    signs in with a recovery code, turns TOTP off with another, then sets up the new app. A
    recovery code is consumed. 401 ``Invalid code`` for a wrong or replayed code or a used
    recovery code (throttled like passwords); 409 if TOTP is not enabled. The user's other
    sessions end; this one gets a new token.
    """
    ended = await authenticator(request).disable_totp(
        session_of(request),
        body.code,
        recovery_code=body.recoveryCode,
        address=client_address(request),
    )
    return s.Revoked(revoked=ended)


@router.post("/mfa/recovery-codes", responses=_errors(401, 403, 409))
async def recovery_codes(request: Request, user_id: RecentUserId) -> s.RecoveryCodes:
    """Replace the recovery codes with 10 new ones, answered once; the old ones stop working.

    409 if TOTP is not enabled; 403 ``Recent authentication required`` if the login is older
    than 10 minutes. Sessions are kept, with the same token: what a login needs is unchanged.
    """
    codes = await authenticator(request).new_recovery_codes(
        session_of(request), address=client_address(request)
    )
    return s.RecoveryCodes(recoveryCodes=codes)
