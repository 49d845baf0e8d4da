"""The HTML side of TOTP: enrolment, recovery codes and removal, from the account page.

The account page's two-factor section (``templates/account_totp.html``) posts to these forms:

- ``POST /ui/mfa/totp/setup`` starts a setup and sends the browser to ``GET /account/totp``,
  which shows the pending secret as a QR code (inline SVG, drawn by segno: no script, no image
  request) and as text, with the form that confirms it;
- ``POST /ui/mfa/totp/confirm`` enables TOTP with a first code and answers, in its own
  response, the page with the 10 recovery codes;
- ``POST /ui/mfa/recovery-codes`` replaces the recovery codes and answers the same page;
- ``POST /ui/mfa/totp/disable`` removes TOTP given a current code, or a recovery code for a
  user who lost their app (who then sets up the new one).

The recovery codes are shown only in the response of the post that made them (``no-store``),
never kept in the session to show after a redirect: the store only ever holds their hashes.

Like the JSON routes (:mod:`sessionauth.server.mfa_api`), every one of them needs a login of
the last :data:`~sessionauth.server.mfa_api.RECENT_AUTH` seconds; an older one is sent to the
login form to sign in again (a new session, with a new authentication time), then back. Errors
of the enrolment page come back as fixed codes in its query string; those of the account page
as flash messages, as its other forms do. Neither ever shows text from the URL.
"""

from __future__ import annotations

from urllib.parse import quote

import segno
from fastapi import APIRouter
from markupsafe import Markup
from starlette.requests import Request
from starlette.responses import Response

from sessionauth.auth.guards import check_recent_auth
from sessionauth.errors import FactorConflict, InvalidCode, PermissionDenied, TooManyAttempts
from sessionauth.server.form_fields import form_fields
from sessionauth.server.mfa_api import RECENT_AUTH
from sessionauth.server.page_context import (
    authenticator,
    client_address,
    flash,
    page_user,
    see_other,
    session_of,
)
from sessionauth.server.pages import page
from sessionauth.stores.users import User

__all__ = ["SETUP_ERRORS", "SETUP_PAGE", "router"]

SETUP_PAGE = "/account/totp"
ACCOUNT = "/account"

SETUP_ERRORS = {
    "invalid": "That code does not match. Check the app shows this account, then try the "
    "current code.",
}
# Pages that show a secret or the recovery codes: no cache, no copy on disk.
_NO_STORE = {"Cache-Control": "no-store"}

router = APIRouter(include_in_schema=False)


def _recent(request: Request) -> bool:
    """Whether the session's login is recent enough to change second factors."""
    try:
        check_recent_auth(session_of(request), RECENT_AUTH, authenticator(request).clock)
    except PermissionDenied:
        return False
    return True


async def _signed_in_recently(request: Request, back_to: str) -> User | Response:
    """The user if they may change second factors now; else where to send the browser.

    An ended session goes to the login page (it says so), one too old to sign in again, and a
    server without second factors back to the account page.
    """
    user = await page_user(request)
    if user is None:
        return see_other(f"/login?notice=expired&next={quote(back_to, safe='/')}")
    if not _recent(request):
        return _sign_in_again(user, back_to)
    if authenticator(request).factors is None:
        return see_other(ACCOUNT)
    return user


def _sign_in_again(user: User, back_to: str) -> Response:
    """Send the user to the login form to confirm it is them, then back to ``back_to``."""
    return see_other(
        f"/login?notice=reauth&email={quote(user.email, safe='@')}&next={quote(back_to, safe='/')}"
    )


async def _codes(request: Request, *names: str) -> list[str]:
    """The form's code fields ``names``, trimmed and cut to 64 characters (see form_fields)."""
    fields = await form_fields(request, *names)
    return [fields[name].strip()[:64] for name in names]


def _grouped(secret: str) -> str:
    """The secret in groups of four characters, easier to type into an app by hand."""
    return " ".join(secret[i : i + 4] for i in range(0, len(secret), 4))


def _qr_svg(url: str) -> Markup:
    """The otpauth URL as an inline SVG QR code (segno's own markup, no user text in it)."""
    qr = segno.make(url, error="m")
    svg = qr.svg_inline(scale=5, svgclass="qr", lineclass=None, light="#fff", title="QR code")
    return Markup(svg)  # noqa: S704 - segno's output: the URL is encoded as modules, not text


def _recovery_page(request: Request, user: User, codes: list[str], *, renewed: bool) -> Response:
    """The one response that shows recovery codes."""
    return page(
        request,
        "totp_recovery.html",
        user,
        title="Recovery codes",
        active="account",
        codes=codes,
        renewed=renewed,
        headers=_NO_STORE,
    )


@router.get(SETUP_PAGE)
async def setup_page(request: Request, error: str | None = None) -> Response:
    """The pending setup: QR code, secret, and the form that confirms it with a first code."""
    user = await _signed_in_recently(request, SETUP_PAGE)
    if isinstance(user, Response):
        return user
    setup = await authenticator(request).pending_totp_setup(session_of(request))
    if setup is None:
        # Enabled already, or never started: the account page says which and offers a start.
        return see_other(ACCOUNT)
    return page(
        request,
        "totp_setup.html",
        user,
        title="Set up two-factor authentication",
        active="account",
        qr=_qr_svg(setup.otpauth_url),
        secret=_grouped(setup.secret),
        error=SETUP_ERRORS.get(error or ""),
        headers=_NO_STORE,
    )


@router.post("/ui/mfa/totp/setup")
async def setup_form(request: Request) -> Response:
    """Start a setup (a new secret, replacing one not confirmed) and show it."""
    user = await _signed_in_recently(request, ACCOUNT)
    if isinstance(user, Response):
        return user
    try:
        await authenticator(request).start_totp_setup(session_of(request))
    except FactorConflict:
        flash(request, "info", "Two-factor authentication is already on.")
        return see_other(ACCOUNT)
    return see_other(SETUP_PAGE)


@router.post("/ui/mfa/totp/confirm")
async def confirm_form(request: Request) -> Response:
    """Enable TOTP with the first code; answer the recovery codes, shown this once."""
    user = await _signed_in_recently(request, SETUP_PAGE)
    if isinstance(user, Response):
        return user
    (code,) = await _codes(request, "code")
    try:
        codes = await authenticator(request).confirm_totp(
            session_of(request), code, address=client_address(request)
        )
    except InvalidCode:
        return see_other(f"{SETUP_PAGE}?error=invalid")
    except FactorConflict:
        flash(request, "error", "There is no setup to confirm. Start again.")
        return see_other(ACCOUNT)
    return _recovery_page(request, user, codes, renewed=False)


@router.post("/ui/mfa/recovery-codes")
async def recovery_codes_form(request: Request) -> Response:
    """Replace the recovery codes; answer the new ones, shown this once."""
    user = await _signed_in_recently(request, ACCOUNT)
    if isinstance(user, Response):
        return user
    try:
        codes = await authenticator(request).new_recovery_codes(
            session_of(request), address=client_address(request)
        )
    except FactorConflict:
        flash(request, "error", "Recovery codes come with two-factor authentication: turn it on.")
        return see_other(ACCOUNT)
    return _recovery_page(request, user, codes, renewed=True)


@router.post("/ui/mfa/totp/disable")
async def disable_form(request: Request) -> Response:
    """Turn TOTP off given a current code or a recovery code; the user's other sessions end."""
    user = await _signed_in_recently(request, ACCOUNT)
    if isinstance(user, Response):
        return user
    code, recovery = await _codes(request, "code", "recovery_code")
    if bool(code) == bool(recovery):
        flash(request, "error", "Type the current code from your app or a recovery code, not both.")
        return see_other(ACCOUNT)
    try:
        ended = await authenticator(request).disable_totp(
            session_of(request),
            code or None,
            recovery_code=recovery or None,
            address=client_address(request),
        )
    except InvalidCode:
        flash(request, "error", "That code is not valid. Two-factor authentication is still on.")
    except TooManyAttempts:
        flash(request, "error", "Too many failed attempts. Wait a few minutes, then try again.")
    except FactorConflict:
        flash(request, "info", "Two-factor authentication is already off.")
    else:
        others = f"{ended} other session{'' if ended == 1 else 's'}"
        flash(request, "success", f"Two-factor authentication is off. {others} signed out.")
    return see_other(ACCOUNT)
