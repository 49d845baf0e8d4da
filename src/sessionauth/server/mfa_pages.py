"""The HTML side of the two-step login: ``GET /login/mfa`` and its form, ``POST /ui/login/mfa``.

The login form (:mod:`sessionauth.server.ui_forms`) holds the login of an account with a
second factor exactly as ``POST /login`` does (an anonymous session that grants nothing) and
sends the browser here for the code. Errors come back as fixed codes in the query string, like
the login page's, never as text from the URL.
"""

from __future__ import annotations

from urllib.parse import quote

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from sessionauth.auth.guards import safe_next
from sessionauth.errors import InvalidCode, InvalidCredentials, TooManyAttempts
from sessionauth.server.form_fields import form_fields
from sessionauth.server.page_context import (
    authenticator,
    client_address,
    login_redirect,
    see_other,
    session_of,
)
from sessionauth.server.pages import page
from sessionauth.server.ui_forms import MFA_PAGE

__all__ = ["MFA_ERRORS", "router"]

MFA_ERRORS = {
    "invalid": "That code is not valid. Try the current one, or a recovery code.",
    "throttled": "Too many failed attempts. Wait a few minutes, then try again.",
}

router = APIRouter(include_in_schema=False)


@router.get(MFA_PAGE)
async def mfa_page(request: Request, next: str | None = None, error: str | None = None) -> Response:
    """The code form of a held login; without one, on to ``next`` or to the login page."""
    target = safe_next(next)
    held = authenticator(request).pending_login(session_of(request))
    if held is None:
        return _nothing_held(request, target)
    return page(
        request,
        "login_mfa.html",
        None,
        title="Two-factor authentication",
        active="login",
        next=target,
        error=MFA_ERRORS.get(error or ""),
    )


@router.post("/ui" + MFA_PAGE)
async def mfa_form(request: Request) -> Response:
    """Complete the held login with the typed TOTP or recovery code."""
    form = await form_fields(request, "next", "code", "recovery_code")
    target = safe_next(form["next"])
    code = form["code"].strip()[:64]
    recovery = form["recovery_code"].strip()[:64]
    again = f"{MFA_PAGE}?next={quote(target, safe='/')}&error="
    try:
        await authenticator(request).complete_login(
            session_of(request),
            code=code or None,
            recovery_code=None if code else recovery or None,
            address=client_address(request),
            user_agent=request.headers.get("user-agent"),
        )
    except InvalidCode:
        return see_other(again + "invalid")
    except TooManyAttempts:
        return see_other(again + "throttled")
    except InvalidCredentials:
        return _nothing_held(request, target)
    return see_other(target)


def _nothing_held(request: Request, target: str) -> Response:
    """No login waits for a code: a signed-in browser goes on to ``target``, others sign in.

    Only a browser whose session ended is told so (:func:`login_redirect`); one still signed in
    (it finished this login in another tab, or came here by hand) has nothing to do here.
    """
    if session_of(request).user_id is not None:
        return see_other(target)
    return login_redirect(request, target)
