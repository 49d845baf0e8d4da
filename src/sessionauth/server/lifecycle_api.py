"""The JSON API of the account lifecycle: sign-up, verification, email change, password reset.

Thin over :class:`~sessionauth.auth.lifecycle.AccountLifecycle`, which makes the promises:
``POST /signup`` and ``POST /password/forgot`` answer 202 ``{"success":true}`` for every
address (the mail, decided in the background, differs); ``POST /password/reset`` never signs
anyone in; a link's token that proves nothing is 400 ``{"error":"Invalid or expired link"}``.
Every route is an unsafe one behind the CSRF middleware, like the rest of the API. The pages
where a person uses them are in :mod:`sessionauth.server.lifecycle_pages`.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException
from starlette.requests import Request

from sessionauth.auth.guards import require_auth, session_of
from sessionauth.server import schemas as s
from sessionauth.server.page_context import client_address, lifecycle
from sessionauth.server.settings import Settings

__all__ = ["mail_configured", "router", "signup_open"]

router = APIRouter()

UserId = Annotated[str, Depends(require_auth)]


def _errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI: these statuses answer ``{"error": ...}``."""
    return {status: {"model": s.ErrorBody} for status in statuses}


def signup_open(request: Request) -> None:
    """Refuse sign-ups (404, as if the route did not exist) unless ``SESSIONAUTH_SIGNUP=open``."""
    settings: Settings = request.app.state.settings
    if settings.signup != "open":
        raise HTTPException(404, "Not Found")


def mail_configured(request: Request) -> None:
    """Refuse (503) a request that would mail when no mail can be sent.

    Production without ``SESSIONAUTH_SMTP_URL`` has no outbox: saying "check your inbox" would
    be a lie, so the routes that mail say the server cannot, whatever the address.
    """
    if request.app.state.outbox is None:
        raise HTTPException(503, "Account mail is not configured on this server")


Mailing = [Depends(mail_configured)]


@router.post(
    "/signup",
    status_code=202,
    dependencies=[Depends(signup_open), *Mailing],
    responses=_errors(400, 403, 404, 429),
)
async def signup(body: s.SignupBody, request: Request) -> s.Success:
    """Sign up: the same 202 for every address; a mail says what comes next.

    A new address gets an unverified account and a link to verify it; an address that has an
    account gets a note saying so. Nobody is signed in. 404 unless ``SESSIONAUTH_SIGNUP=open``.
    """
    await lifecycle(request).sign_up(body.email, body.password, address=client_address(request))
    return s.Success()


@router.post(
    "/verify/request",
    status_code=202,
    dependencies=Mailing,
    responses=_errors(401, 403, 409, 429),
)
async def request_verification(request: Request, user_id: UserId) -> s.Success:
    """Mail me a new link to verify my address (409 if it is verified already)."""
    del user_id
    await lifecycle(request).request_verification(
        session_of(request), address=client_address(request)
    )
    return s.Success()


@router.post("/verify", responses=_errors(400, 403, 409))
async def verify(body: s.TokenBody, request: Request) -> s.Success:
    """Use a verification (or email change) link's token: the address is confirmed.

    Signed in, only my own links work. 409 if a new address got an account meanwhile.
    """
    await lifecycle(request).verify_email(body.token, session=session_of(request))
    return s.Success()


@router.post("/email", status_code=202, dependencies=Mailing, responses=_errors(400, 401, 403, 429))
async def change_email(body: s.EmailChangeBody, request: Request, user_id: UserId) -> s.Success:
    """Change my address: a link goes to the new one, which replaces the old when followed.

    Needs my current password (401 if wrong, throttled like a login).
    """
    del user_id
    await lifecycle(request).request_email_change(
        session_of(request), body.email, body.password, address=client_address(request)
    )
    return s.Success()


@router.post(
    "/password/forgot", status_code=202, dependencies=Mailing, responses=_errors(400, 403, 429)
)
async def forgot_password(body: s.ForgotBody, request: Request) -> s.Success:
    """Ask for a password reset link: the same 202 for every address."""
    await lifecycle(request).forgot_password(body.email, address=client_address(request))
    return s.Success()


@router.post("/password/reset", responses=_errors(400, 403))
async def reset_password(body: s.ResetBody, request: Request) -> s.Success:
    """Set a new password with a reset link's token; every session of the account ends.

    Nobody is signed in: sign in with the new password.
    """
    await lifecycle(request).reset_password(body.token, body.password)
    return s.Success()
