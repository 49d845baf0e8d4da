"""The HTML pages: ``/login``, ``/`` (dashboard), ``/account`` and ``/admin/users``.

The JSON API keeps the tutorial's exact paths (``POST /login``, ``GET /admin``…), so the pages
take only paths the API leaves free, and their forms post to ``/ui/...``
(:mod:`sessionauth.server.ui_forms`), each answering with a 303 back to a page and a flash
message. Everything works without JavaScript; ``/static/app.js`` only adds confirmations.

Every page renders a fresh masked CSRF token into its forms' ``csrf_token`` field. A page that
needs a login redirects an anonymous visitor to ``/login?next=<the page>``; the login page
honours ``next`` only through :func:`~sessionauth.auth.guards.safe_next`, so it can never send
anyone to another site.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from sessionauth.auth.guards import safe_next
from sessionauth.auth.session_admin import DEFAULT_PAGE
from sessionauth.server import ui_forms
from sessionauth.server.page_context import (
    authenticator,
    csrf_value,
    login_redirect,
    page_user,
    pop_flashes,
    session_of,
    session_role,
)
from sessionauth.server.templating import render, render_error, time_ago
from sessionauth.stores.base import MAX_PAGE
from sessionauth.stores.users import MAX_EMAIL_LENGTH, User

__all__ = ["ADMIN_PAGE_SIZE", "ADMIN_ROLE", "page", "router"]

ADMIN_ROLE = "admin"
ADMIN_PAGE_SIZE = 50
"""Accounts per page of ``/admin/users``."""
# A bound longer than this many digits cannot be an id (they fit in 63 bits).
_MAX_ID_DIGITS = 19

# Fixed messages chosen by a code in the query string: the login page never echoes text from
# the URL, so a crafted link cannot put words of an attacker's choosing on it. (The email field
# is filled from the URL, escaped, as what the user typed; the wait is a number.)
LOGIN_ERRORS = {
    "invalid": "Invalid email or password.",
    "unverified": "Your email address is not verified yet. Confirm it first, then sign in.",
    "throttled": "Too many failed attempts. Wait a few minutes, then try again.",
    "unavailable": "Signing in is briefly unavailable. Please try again in a moment.",
}
LOGIN_NOTICES = {
    "signed-out": "You have been signed out.",
    "expired": "Your session has ended. Please sign in again.",
    "verified": "Your email address is confirmed. Sign in to continue.",
    "password-reset": "Your password was changed and every session signed out. Sign in with it.",
    "reauth": "To change your sign-in settings, confirm it is you: sign in again.",
}

router = APIRouter(include_in_schema=False)


def page(
    request: Request,
    template: str,
    user: User | None,
    *,
    status: int = 200,
    headers: dict[str, str] | None = None,
    **context: Any,
) -> Response:
    """Render a page with what every page shows: the user, their flashes, a CSRF token."""
    return render(
        template,
        {
            "user": user,
            "csrf": csrf_value(request),
            "flashes": pop_flashes(request),
            **context,
        },
        status=status,
        headers=headers,
    )


def _login_error(error: str | None, wait: str | None) -> str | None:
    """The fixed message for ``error``; for a throttled login, with the wait in it."""
    if error == "throttled" and wait is not None and wait.isdigit() and 0 < int(wait) <= 86400:
        seconds = int(wait)
        minutes = -(-seconds // 60)
        when = f"{seconds} seconds" if seconds < 60 else f"{minutes} minute" + "s" * (minutes > 1)
        return f"Too many failed attempts. Try again in {when}."
    return LOGIN_ERRORS.get(error or "")


def _typed_email(email: str | None) -> str:
    """The email to fill the form with: what the user typed, if it looks like one."""
    if email and len(email) <= 254 and "@" in email and email.isprintable():
        return email
    return ""


@router.get("/login")
async def login_page(
    request: Request,
    next: str | None = None,
    error: str | None = None,
    notice: str | None = None,
    email: str | None = None,
    wait: str | None = None,
    remember: str | None = None,
) -> Response:
    """The sign-in form; ``next`` (a same-site path) is where a successful login goes."""
    session = session_of(request)
    user = await page_user(request) if session.user_id is not None else None
    signed_in = (
        f"You are signed in as {user.email}; signing in again replaces that." if user else None
    )
    return page(
        request,
        "login.html",
        user,
        title="Sign in",
        active="login",
        next=safe_next(next),
        error=_login_error(error, wait),
        notice=LOGIN_NOTICES.get(notice or "") or signed_in,
        email=_typed_email(email),
        signup=request.app.state.settings.signup == "open",
        mail=request.app.state.outbox is not None,
        remember=remember == "1",
    )


@router.get("/")
async def dashboard_page(request: Request) -> Response:
    """Who am I: email, role, when I signed in, and where to go next."""
    user = await page_user(request)
    if user is None:
        return login_redirect(request)
    signed_in = session_of(request).meta.get("auth")
    return page(
        request,
        "dashboard.html",
        user,
        title="Dashboard",
        active="dashboard",
        signed_in=signed_in if isinstance(signed_in, int | float) else None,
    )


@router.get("/account")
async def account_page(
    request: Request, cursor: str | None = None, limit: str | None = None
) -> Response:
    """My sessions, newest first, a page at a time (with revocation); the password change form.

    ``limit`` (1 to 100, else the default 20) and ``cursor`` page as ``GET /sessions`` does.
    """
    user = await page_user(request)
    if user is None:
        return login_redirect(request)
    auth = authenticator(request)
    size = int(limit) if limit is not None and limit.isdigit() and len(limit) < 4 else 0
    size = size if 1 <= size <= MAX_PAGE else DEFAULT_PAGE
    listing = await auth.list_sessions(
        user.id, current=session_of(request).handle, limit=size, cursor=cursor
    )
    now = auth.clock()
    return page(
        request,
        "account.html",
        user,
        title="Account",
        active="account",
        sessions=listing.sessions,
        others=sum(1 for info in listing.sessions if not info.current),
        older=f"/account?limit={size}&cursor={quote(listing.next_cursor, safe='')}"
        if listing.next_cursor is not None
        else None,
        ago=lambda moment: time_ago(moment, now),
        min_password=auth.hasher.policy.min_length,
        factors=await _factors(request, user.id),
        totp_offered=auth.factors is not None,
        recovery_left=await _recovery_left(request, user.id),
    )


async def _factors(request: Request, user_id: int) -> list[str]:
    """The second factors a user signs in with (none without the mfa wiring)."""
    factors = authenticator(request).factors
    return list(await factors.methods(str(user_id))) if factors is not None else []


async def _recovery_left(request: Request, user_id: int) -> int:
    """How many unused recovery codes a user has."""
    factors = authenticator(request).factors
    return await factors.store.count_recovery_codes(str(user_id)) if factors is not None else 0


def _page_bound(text: str | None) -> int | None:
    """An ``after``/``before`` of the query string: an id in plain digits, else ``None``."""
    if text is None or not (text.isascii() and text.isdigit()) or len(text) > _MAX_ID_DIGITS:
        return None
    return int(text) or None


def _admin_link(search: str, **bound: int) -> str:
    """The URL of one page of the admin list, keeping the search."""
    query = {"q": search} if search else {}
    return f"/admin/users?{urlencode({**query, **bound})}"


@router.get("/admin/users")
async def admin_users_page(request: Request) -> Response:
    """Users, with their role, status and number of live sessions: searched and paged.

    ``?q=`` keeps the accounts whose email contains it; pages of :data:`ADMIN_PAGE_SIZE`
    follow each other by id (``?after=``/``?before=``, see
    :meth:`~sessionauth.stores.users.UserStore.page`), so the list stays cheap with any
    number of accounts. A malformed bound shows the first page.
    """
    user = await page_user(request)
    if user is None:
        return login_redirect(request)
    if session_role(request) != ADMIN_ROLE:
        return render_error(request, 403, "This page is for administrators only.")
    auth = authenticator(request)
    search = request.query_params.get("q", "")[:MAX_EMAIL_LENGTH]
    after = _page_bound(request.query_params.get("after"))
    before = None if after else _page_bound(request.query_params.get("before"))
    found = await auth.page_users(
        search=search, after=after or 0, before=before, limit=ADMIN_PAGE_SIZE
    )
    rows = [
        {
            "user": each,
            "sessions": await auth.count_sessions(each.id),
            "factors": await _factors(request, each.id),
        }
        for each in found.users
    ]
    return page(
        request,
        "admin_users.html",
        user,
        title="Users",
        active="admin",
        rows=rows,
        search=search,
        previous_url=None
        if found.previous_before is None
        else _admin_link(search, before=found.previous_before),
        next_url=None if found.next_after is None else _admin_link(search, after=found.next_after),
        roles=ui_forms.offered_roles(auth.roles),
        min_password=auth.hasher.policy.min_length,
    )


router.include_router(ui_forms.router)
