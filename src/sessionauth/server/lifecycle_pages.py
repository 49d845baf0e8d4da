"""The account lifecycle's pages and their forms: sign up, confirm an address, reset a password.

``GET /signup``, ``/verify``, ``/password/forgot`` and ``/password/reset`` are the pages; their
forms post to ``/ui/...`` and answer with a 303, like every form (see
:mod:`sessionauth.server.ui_forms`). A link from a mail opens a page whose button posts the
token: a GET never uses one, because mail scanners and link previews fetch links before the
person does.

Anonymous forms report back with fixed codes in the query string (``?notice=sent``,
``?error=throttled``), never with a flash message: a stranger's form post must not store a
session, and a crafted link cannot put words of its choosing on the page. The forms of a
signed-in user (ask for a new verification link, change the address) use flash messages on
the account page.
"""

from __future__ import annotations

from urllib.parse import quote

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from sessionauth.errors import (
    AlreadyVerified,
    DuplicateUser,
    InvalidCredentials,
    InvalidEmail,
    InvalidToken,
    PasswordPolicyError,
    TooManyAttempts,
)
from sessionauth.server.form_fields import form_fields
from sessionauth.server.page_context import (
    authenticator,
    client_address,
    flash,
    lifecycle,
    page_user,
    see_other,
    session_of,
)
from sessionauth.server.pages import page
from sessionauth.server.settings import Settings
from sessionauth.server.templating import render_error

__all__ = ["router"]

ACCOUNT = "/account"
# The longest token a page puts in its form: real ones are 43 characters.
_MAX_TOKEN = 256

router = APIRouter(include_in_schema=False)

NOTICES = {
    "sent": "Check your inbox: we sent a message to that address. It may take a minute.",
}
ERRORS = {
    "email": "That is not a usable email address.",
    "mismatch": "The two passwords do not match.",
    "throttled": "Too many requests for this address. Wait a while, then try again.",
    "invalid": "This link is invalid, was used already, or has expired.",
}


def _token(text: str | None) -> str:
    """A token to put in a form: what the link carried, if it can be one."""
    if text and len(text) <= _MAX_TOKEN and text.isascii() and text.isprintable():
        return text
    return ""


def _signup_open(request: Request) -> bool:
    settings: Settings = request.app.state.settings
    return settings.signup == "open"


def _no_mail(request: Request) -> Response | None:
    """The 503 page for a form that would mail when no mail can be sent (else ``None``)."""
    if request.app.state.outbox is None:
        return render_error(request, 503, "This server cannot send email: ask its administrators.")
    return None


def _error(request: Request, code: str | None) -> str | None:
    if code == "password":
        policy = authenticator(request).hasher.policy
        return f"The password must be {policy.min_length} to {policy.max_length} characters."
    return ERRORS.get(code or "")


def _typed_email(email: str | None) -> str:
    if email and len(email) <= 254 and "@" in email and email.isprintable():
        return email
    return ""


@router.get("/signup")
async def signup_page(
    request: Request, error: str | None = None, notice: str | None = None, email: str | None = None
) -> Response:
    """The sign-up form (404 unless ``SESSIONAUTH_SIGNUP=open``)."""
    if not _signup_open(request):
        return render_error(request, 404, "There is nothing at this address.")
    return page(
        request,
        "signup.html",
        await page_user(request),
        title="Create an account",
        active="signup",
        error=_error(request, error),
        notice=NOTICES.get(notice or ""),
        email=_typed_email(email),
        min_password=authenticator(request).hasher.policy.min_length,
    )


@router.post("/ui/signup")
async def signup(request: Request) -> Response:
    """Sign up from the form: the same "check your inbox" for every address."""
    if not _signup_open(request):
        return render_error(request, 404, "There is nothing at this address.")
    if (refused := _no_mail(request)) is not None:
        return refused
    form = await form_fields(request, "email", "password", "confirm_password")
    email, password = form["email"], form["password"]
    retry = f"&email={quote(email, safe='@')}" if _typed_email(email) else ""
    if password != form["confirm_password"]:
        return see_other(f"/signup?error=mismatch{retry}")
    try:
        await lifecycle(request).sign_up(email, password, address=client_address(request))
    except InvalidEmail:
        return see_other(f"/signup?error=email{retry}")
    except PasswordPolicyError:
        return see_other(f"/signup?error=password{retry}")
    except TooManyAttempts:
        return see_other(f"/signup?error=throttled{retry}")
    return see_other("/signup?notice=sent")


@router.get("/verify")
async def verify_page(
    request: Request, token: str | None = None, error: str | None = None
) -> Response:
    """A mailed verification link lands here: a button confirms (the GET uses nothing)."""
    shown = _token(token)
    return page(
        request,
        "verify.html",
        await page_user(request),
        title="Confirm your email address",
        active="verify",
        token=shown,
        error=ERRORS["invalid"] if error == "invalid" or not shown else None,
    )


@router.post("/ui/verify")
async def verify(request: Request) -> Response:
    """Confirm the address of the link; signed in, back to the account page."""
    token = (await form_fields(request, "token"))["token"]
    session = session_of(request)
    try:
        await lifecycle(request).verify_email(token, session=session)
    except InvalidToken:
        return see_other("/verify?error=invalid")
    except DuplicateUser:
        if session.user_id is None:
            return see_other("/verify?error=invalid")
        flash(request, "error", "That address got an account of its own meanwhile.")
        return see_other(ACCOUNT)
    if session.user_id is None:
        return see_other("/login?notice=verified")
    flash(request, "success", "Your email address is confirmed.")
    return see_other(ACCOUNT)


@router.get("/password/forgot")
async def forgot_page(
    request: Request, error: str | None = None, notice: str | None = None
) -> Response:
    """The "forgot your password" form."""
    return page(
        request,
        "forgot.html",
        await page_user(request),
        title="Forgot your password?",
        active="forgot",
        error=_error(request, error),
        notice=NOTICES.get(notice or ""),
    )


@router.post("/ui/password/forgot")
async def forgot(request: Request) -> Response:
    """Ask for a reset link: the same "check your inbox" for every address."""
    if (refused := _no_mail(request)) is not None:
        return refused
    email = (await form_fields(request, "email"))["email"]
    try:
        await lifecycle(request).forgot_password(email, address=client_address(request))
    except InvalidEmail:
        return see_other("/password/forgot?error=email")
    except TooManyAttempts:
        return see_other("/password/forgot?error=throttled")
    return see_other("/password/forgot?notice=sent")


@router.get("/password/reset")
async def reset_page(
    request: Request, token: str | None = None, error: str | None = None
) -> Response:
    """A mailed reset link lands here: the form for the new password."""
    shown = _token(token)
    return page(
        request,
        "reset.html",
        await page_user(request),
        title="Choose a new password",
        active="reset",
        token=shown,
        error=_error(request, error) or (None if shown else ERRORS["invalid"]),
        min_password=authenticator(request).hasher.policy.min_length,
    )


@router.post("/ui/password/reset")
async def reset(request: Request) -> Response:
    """Set the new password; every session of the account ends, and nobody is signed in."""
    form = await form_fields(request, "token", "password", "confirm_password")
    token, password = form["token"], form["password"]
    again = f"/password/reset?token={quote(_token(token), safe='')}"
    if password != form["confirm_password"]:
        return see_other(f"{again}&error=mismatch")
    try:
        await lifecycle(request).reset_password(token, password)
    except PasswordPolicyError:
        return see_other(f"{again}&error=password")
    except InvalidToken:
        return see_other("/password/reset?error=invalid")
    return see_other("/login?notice=password-reset")


# -- the account page's forms ---------------------------------------------------------------


@router.post("/ui/verify/request")
async def request_verification(request: Request) -> Response:
    """Mail me a new link to confirm my address."""
    if await page_user(request) is None:
        return see_other(f"/login?notice=expired&next={ACCOUNT}")
    try:
        await lifecycle(request).request_verification(
            session_of(request), address=client_address(request)
        )
    except AlreadyVerified:
        flash(request, "info", "Your email address is confirmed already.")
    except TooManyAttempts:
        flash(request, "error", ERRORS["throttled"])
    else:
        flash(request, "success", "We sent you a new link. Check your inbox.")
    return see_other(ACCOUNT)


@router.post("/ui/email")
async def change_email(request: Request) -> Response:
    """Change my address: a link goes to the new one, which replaces the old when followed."""
    if await page_user(request) is None:
        return see_other(f"/login?notice=expired&next={ACCOUNT}")
    form = await form_fields(request, "email", "password")
    try:
        await lifecycle(request).request_email_change(
            session_of(request),
            form["email"],
            form["password"],
            address=client_address(request),
        )
    except InvalidEmail as exc:
        flash(request, "error", f"That email address was refused: {exc}.")
    except (InvalidCredentials, PasswordPolicyError):
        flash(request, "error", "Your current password is not correct.")
    except TooManyAttempts:
        flash(request, "error", ERRORS["throttled"])
    else:
        flash(request, "success", "Check the inbox of the new address: follow its link.")
    return see_other(ACCOUNT)
