"""The JSON routes of passkeys: registration, the list, renaming, deletion and sign-in.

Registration is two requests: ``POST /passkeys/register/options`` answers the options for
``navigator.credentials.create()`` (the challenge stays in the session, 5 minutes, one use),
and ``POST /passkeys/register`` verifies what the browser made of them. Sign-in is the same
pair under ``/passkeys/login``, for an anonymous session too (fetch ``GET /csrf-token`` first,
as for ``POST /login``). Registering and deleting need a recent login (the TOTP routes'
:data:`~sessionauth.server.mfa_api.RECENT_AUTH`), and give the user's principal a new epoch:
every other session ends, this one stays with a new token (fetch ``GET /csrf-token`` again).

The relying party is the site of ``SESSIONAUTH_PUBLIC_URL``: its host name is the RP ID and its
origin the one origin ceremonies may come from, so browse the site under that URL.
"""

from __future__ import annotations

import binascii
from typing import Annotated, Any, cast
from urllib.parse import urlsplit

from fastapi import APIRouter, HTTPException
from fastapi import Path as PathParam
from starlette.requests import Request

from sessionauth.auth.event_hub import EventHub
from sessionauth.auth.guards import session_of
from sessionauth.auth.passkeys import ChallengeKeeper, Passkeys, RelyingParty
from sessionauth.csrf import csrf_token
from sessionauth.errors import FactorConflict, InvalidCode
from sessionauth.policy import Clock, system_clock
from sessionauth.server import passkey_schemas as p
from sessionauth.server import schemas as s
from sessionauth.server.api import UserId
from sessionauth.server.databases import Databases
from sessionauth.server.mfa_api import RecentUserId
from sessionauth.server.page_context import authenticator, client_address
from sessionauth.server.settings import Settings
from sessionauth.stores.attempts import AttemptCounter
from sessionauth.tokens import Keyring

__all__ = ["passkeys_of", "relying_party", "router"]

router = APIRouter()

_INVALID_PASSKEY = "Invalid passkey"
_NOT_FOUND = "Passkey not found"

# A credential id is at most 1023 bytes (WebAuthn §5.1): 1364 base64url characters.
CredentialId = Annotated[
    str,
    PathParam(
        min_length=1,
        max_length=1364,
        pattern=r"^[A-Za-z0-9_-]+$",
        description="The passkey's id (base64url), as GET /passkeys lists it.",
    ),
]


def _errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI: these statuses answer ``{"error": ...}``."""
    return {status: {"model": s.ErrorBody} for status in statuses}


def relying_party(settings: Settings) -> RelyingParty:
    """The site passkeys belong to: ``SESSIONAUTH_PUBLIC_URL``'s host and origin."""
    parts = urlsplit(settings.site_url)
    host = parts.hostname or "localhost"
    return RelyingParty(id=host, name=host, origins=(f"{parts.scheme}://{parts.netloc}",))


def passkeys_of(
    settings: Settings,
    databases: Databases,
    counter: AttemptCounter,
    keyring: Keyring,
    *,
    events: EventHub,
    clock: Clock = system_clock,
) -> Passkeys:
    """The server's passkeys, kept with the accounts (the users database's backend).

    Like the other factors, not in the session store: a store that loses its keys must not
    lose the passkeys' counters (see :mod:`sessionauth.stores.factors`). Challenges are
    marked used on ``counter`` (the session store's attempt counter: they live 5 minutes),
    sign-in challenges are signed under ``keyring``, and a counter that went backwards is
    published on ``events`` (the Authenticator's).
    """
    return Passkeys(
        store=databases.users.factor_store(),
        rp=relying_party(settings),
        challenges=ChallengeKeeper(counter, keyring, clock=clock),
        clock=clock,
        events=events,
    )


def _credential_id(text: str) -> bytes:
    """The bytes of a path's ``{credential_id}``; 404 for text no passkey id can be."""
    try:
        return p.unb64url(text)
    except (ValueError, binascii.Error):
        raise HTTPException(404, _NOT_FOUND) from None


@router.post("/passkeys/register/options", responses=_errors(401, 403))
async def register_options(request: Request, user_id: RecentUserId) -> p.PasskeyOptions:
    """Options for ``navigator.credentials.create()``: discoverable, user verification required.

    The user's passkeys are excluded (one authenticator is not registered twice).

    403 ``Recent authentication required`` if the login is older than 10 minutes.
    """
    del user_id
    options = await authenticator(request).passkey_registration_options(session_of(request))
    return p.PasskeyOptions.from_json(options)


@router.post("/passkeys/register", responses=_errors(400, 401, 403))
async def register(
    body: p.PasskeyRegisterBody, request: Request, user_id: RecentUserId
) -> p.PasskeyResult:
    """Verify the new credential (origin, RP ID, challenge, user verification) and keep it.

    400 ``Invalid passkey`` without a current challenge (none, expired, used) or for a
    credential that fails verification or is registered already. The user's other sessions
    end; this one gets a new token.
    """
    del user_id
    try:
        passkey = await authenticator(request).register_passkey(
            session_of(request), body.credential, name=body.name, address=client_address(request)
        )
    except (InvalidCode, ValueError) as exc:  # PasskeyRejected is a ValueError
        raise HTTPException(400, _INVALID_PASSKEY) from exc
    return p.PasskeyResult(passkey=p.PasskeyOut.of(passkey))


@router.get("/passkeys", responses=_errors(401))
async def list_passkeys(request: Request, user_id: UserId) -> p.PasskeyList:
    """My passkeys, oldest first (never their public keys or counters)."""
    del user_id
    found = await authenticator(request).list_passkeys(session_of(request))
    return p.PasskeyList(passkeys=[p.PasskeyOut.of(key) for key in found])


@router.patch("/passkeys/{credential_id}", responses=_errors(400, 401, 403, 404))
async def rename(
    body: p.PasskeyRenameBody, request: Request, credential_id: CredentialId, user_id: UserId
) -> p.PasskeyResult:
    """Rename one of my passkeys (trimmed to 64 printable characters)."""
    del user_id
    raw = _credential_id(credential_id)
    try:
        renamed = await authenticator(request).rename_passkey(session_of(request), raw, body.name)
    except FactorConflict:
        raise HTTPException(404, _NOT_FOUND) from None
    return p.PasskeyResult(passkey=p.PasskeyOut.of(renamed))


@router.delete("/passkeys/{credential_id}", responses=_errors(400, 401, 403, 404))
async def delete(request: Request, credential_id: CredentialId, user_id: RecentUserId) -> s.Revoked:
    """Delete one of my passkeys: it signs nobody in any more.

    The user's other sessions end (answered as ``revoked``); this one gets a new token. 403
    ``Recent authentication required`` if the login is older than 10 minutes.
    """
    del user_id
    raw = _credential_id(credential_id)
    try:
        ended = await authenticator(request).delete_passkey(
            session_of(request), raw, address=client_address(request)
        )
    except FactorConflict:
        raise HTTPException(404, _NOT_FOUND) from None
    return s.Revoked(revoked=ended)


@router.post("/passkeys/login/options")
async def login_options(request: Request) -> p.PasskeyOptions:
    """Options for ``navigator.credentials.get()``: a discoverable sign-in, no account named.

    User verification is required. Anonymous, and nothing is stored: the challenge is signed,
    valid 5 minutes, for one use.
    """
    options = authenticator(request).passkey_login_options()
    return p.PasskeyOptions.from_json(options)


@router.post("/passkeys/login", responses=_errors(400, 401, 403, 429))
async def login(body: p.PasskeyLoginBody, request: Request) -> s.LoginResult:
    """Sign in with a passkey: both factors at once, so no ``mfaRequired`` step follows.

    Answers like ``POST /login`` (``csrfToken`` is bound to the new session). 401 ``Invalid
    passkey`` for any failure (no or used challenge, unknown or deleted passkey, bad signature,
    no user verification, a sign counter that went backwards, a disabled account), throttled
    per client address like passwords (429); 401 ``Invalid credentials`` if the account
    changed during the sign-in; 403 ``Email not verified`` as for ``POST /login``.
    """
    auth = authenticator(request)
    session = session_of(request)
    try:
        accepted, principal = await auth.login_with_passkey(
            session,
            body.credential,
            address=client_address(request),
            user_agent=request.headers.get("user-agent"),
            remember=body.remember,
        )
    except InvalidCode as exc:
        raise HTTPException(401, _INVALID_PASSKEY) from exc
    token = csrf_token(session, request.app.state.keyring)
    # The reference server's users are a built-in UserStore: int ids.
    user = s.UserSummary(
        id=cast(int, accepted.user.id), email=accepted.user.email, role=principal.role
    )
    return s.LoginResult(user=user, csrfToken=token)
