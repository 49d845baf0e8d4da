"""The HTML forms' endpoints: ``POST /ui/...``, each answering 303 to a page with a flash message.

They sit behind the same CSRF middleware as the API: the origin layer on every post, and the
``csrf_token`` form field whenever the browser has a session. So a form another site (or
another port of this host, which browsers count as the same *site* and send the cookie to)
submits never gets here.

Failures a user can fix (a wrong current password, a taken email, a role outside
``SESSIONAUTH_ROLES``, a change the administrator rules refuse: see
:mod:`sessionauth.auth.admin_rules`, which the API applies too) come back as flash messages on
the page the form lives on; only a missing login (303 to the login page), a missing admin
role (the 403 page) or a malformed user id (the 404 page) leave it. A failed login redirects
with a fixed error code instead of a flash, so a stranger's failed attempt never stores a
session.
"""

from __future__ import annotations

from urllib.parse import quote

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from sessionauth.auth.guards import check_recent_auth, safe_next
from sessionauth.auth.user_ids import parse_user_id
from sessionauth.errors import (
    AdminLockout,
    DuplicateUser,
    EmailNotVerified,
    InvalidCredentials,
    InvalidRole,
    PasswordPolicyError,
    PermissionDenied,
    SecondFactorRequired,
    SessionNotFound,
    TooManyAttempts,
    UserNotFound,
)
from sessionauth.server.form_fields import form_fields
from sessionauth.server.mfa_api import RECENT_AUTH
from sessionauth.server.page_context import (
    authenticator,
    client_address,
    flash,
    page_user,
    see_other,
    session_of,
    session_role,
)
from sessionauth.server.templating import render_error
from sessionauth.stores.users import ADMIN_ROLE, InvalidEmail, User

__all__ = ["offered_roles", "router"]

ACCOUNT = "/account"
ADMIN_USERS = "/admin/users"
MFA_PAGE = "/login/mfa"

router = APIRouter(prefix="/ui", include_in_schema=False)


def _to_login(page: str) -> Response:
    # A form is posted from a page that was shown signed in: its session has ended since
    # (revoked, expired, signed out elsewhere), which the login page then says.
    return see_other(f"/login?notice=expired&next={quote(page, safe='/')}")


@router.post("/login")
async def login(request: Request) -> Response:
    """Sign in from the login form, then go to its (safe) ``next`` page."""
    form = await form_fields(request, "next", "email", "password", "remember")
    target = safe_next(form["next"])
    email = form["email"]
    # The form comes back with the email filled in, so that only the password is typed again.
    retry = f"&email={quote(email, safe='@')}" if email else ""
    retry += f"&next={quote(target, safe='/')}" if target != "/" else ""
    # A checked box posts "on"; an unchecked one posts nothing.
    remember = form["remember"] == "on"
    retry += "&remember=1" if remember else ""
    auth = authenticator(request)
    address = client_address(request)
    try:
        accepted = await auth.authenticate(email, form["password"], address=address)
        await auth.login(
            session_of(request),
            accepted,
            address=address,
            user_agent=request.headers.get("user-agent"),
            remember=remember,
        )
    except SecondFactorRequired:
        # The code step completes it (sessionauth.server.mfa_pages); nothing granted yet.
        auth.hold_login(session_of(request), accepted, remember=remember)
        return see_other(MFA_PAGE + (f"?next={quote(target, safe='/')}" if target != "/" else ""))
    except (InvalidCredentials, PasswordPolicyError):
        return see_other(f"/login?error=invalid{retry}")
    except EmailNotVerified:
        return see_other(f"/login?error=unverified{retry}")
    except TooManyAttempts as exc:
        return see_other(f"/login?error=throttled&wait={exc.retry_after}{retry}")
    return see_other(target)


@router.post("/logout")
async def logout(request: Request) -> Response:
    """Sign out: the session is deleted and its cookie cleared."""
    session = session_of(request)
    if session.user_id is not None:
        await authenticator(request).logout(session, address=client_address(request))
    else:
        session.destroy()
    return see_other("/login?notice=signed-out")


@router.post("/password")
async def change_password(request: Request) -> Response:
    """Change my password; every other session of mine is signed out."""
    user = await page_user(request)
    if user is None:
        return _to_login(ACCOUNT)
    form = await form_fields(request, "new_password", "confirm_password", "current_password")
    new_password = form["new_password"]
    if new_password != form["confirm_password"]:
        flash(request, "error", "The new passwords do not match.")
        return see_other(ACCOUNT)
    try:
        revoked = await authenticator(request).change_password(
            session_of(request),
            form["current_password"],
            new_password,
            address=client_address(request),
        )
    except InvalidCredentials:
        flash(request, "error", "Your current password is not correct.")
    except PasswordPolicyError as exc:
        flash(request, "error", f"The new password was refused: {exc}.")
    else:
        others = f"{revoked} other session{'' if revoked == 1 else 's'}"
        flash(request, "success", f"Password changed. {others} signed out.")
    return see_other(ACCOUNT)


@router.post("/sessions/revoke-others")
async def revoke_other_sessions(request: Request) -> Response:
    """Sign out every session of mine but this one."""
    user = await page_user(request)
    if user is None:
        return _to_login(ACCOUNT)
    revoked = await authenticator(request).revoke_other_sessions(
        session_of(request), address=client_address(request)
    )
    flash(request, "success", f"Signed out {revoked} other session{'' if revoked == 1 else 's'}.")
    return see_other(ACCOUNT)


@router.post("/sessions/{handle}/revoke")
async def revoke_session(request: Request, handle: str) -> Response:
    """Sign out one other session of mine, named by its handle."""
    user = await page_user(request)
    if user is None:
        return _to_login(ACCOUNT)
    if handle == session_of(request).handle:
        flash(request, "info", "To end the session on this device, use Sign out.")
        return see_other(ACCOUNT)
    try:
        await authenticator(request).revoke_session(
            user.id, handle, address=client_address(request)
        )
    except SessionNotFound:
        flash(request, "error", "That session had already ended.")
    else:
        flash(request, "success", "Session revoked: that device is signed out.")
    return see_other(ACCOUNT)


# -- admin ----------------------------------------------------------------------------------


async def _admin(request: Request) -> User | Response:
    """Return the signed-in admin, or the answer for anyone else."""
    user = await page_user(request)
    if user is None:
        return _to_login(ADMIN_USERS)
    if session_role(request) != ADMIN_ROLE:
        return render_error(request, 403, "Only administrators can manage users.")
    return user


async def _target(request: Request, user_id: str) -> tuple[User, User] | Response:
    """Return the signed-in admin and the user the form is about, or the answer instead."""
    admin = await _admin(request)
    if not isinstance(admin, User):
        return admin
    try:
        target_id = parse_user_id(user_id)
    except UserNotFound:
        return render_error(request, 404, "There is no user with that id.")
    try:
        target = await authenticator(request).get_user(target_id)
    except UserNotFound:
        flash(request, "error", "That user no longer exists.")
        return see_other(ADMIN_USERS)
    return admin, target


def offered_roles(roles: frozenset[str]) -> list[str]:
    """The configured roles in the order the page offers them: ``admin`` last, not preselected."""
    return sorted(roles, key=lambda role: (role == ADMIN_ROLE, role))


@router.post("/admin/users")
async def create_user(request: Request) -> Response:
    """Create an account with an email, a password and a role."""
    admin = await _admin(request)
    if not isinstance(admin, User):
        return admin
    form = await form_fields(request, "email", "role", "password")
    email, role = form["email"], form["role"]
    try:
        created = await authenticator(request).create_user(
            email, form["password"], role, actor=admin.id
        )
    except InvalidRole as exc:
        flash(request, "error", f"{exc}.")
    except PasswordPolicyError as exc:
        flash(request, "error", f"The password was refused: {exc}.")
    except InvalidEmail as exc:
        flash(request, "error", f"That email address was refused: {exc}.")
    except DuplicateUser:
        flash(request, "error", "A user with that email already exists.")
    else:
        flash(request, "success", f"Created {created.email} ({created.role}).")
    return see_other(ADMIN_USERS)


@router.post("/admin/users/{user_id}/role")
async def set_role(request: Request, user_id: str) -> Response:
    """Change a user's role; it applies at once to every session of theirs."""
    found = await _target(request, user_id)
    if not isinstance(found, tuple):
        return found
    admin, target = found
    role = (await form_fields(request, "role"))["role"]
    try:
        updated = await authenticator(request).set_role(target.id, role, actor=admin.id)
    except UserNotFound:
        flash(request, "error", "That user no longer exists.")
    except (InvalidRole, AdminLockout) as exc:
        flash(request, "error", f"{exc}.")
    else:
        flash(request, "success", f"{updated.email} is now {updated.role}.")
    return see_other(ADMIN_USERS)


@router.post("/admin/users/{user_id}/disable")
async def set_disabled(request: Request, user_id: str) -> Response:
    """Disable a user (signing them out everywhere) or enable them again."""
    found = await _target(request, user_id)
    if not isinstance(found, tuple):
        return found
    admin, target = found
    disabled = (await form_fields(request, "disabled"))["disabled"] != "false"
    try:
        updated = await authenticator(request).set_disabled(target.id, disabled, actor=admin.id)
    except UserNotFound:
        flash(request, "error", "That user no longer exists.")
    except AdminLockout as exc:
        flash(request, "error", f"{exc}.")
    else:
        state = "disabled and signed out everywhere" if updated.disabled else "enabled"
        flash(request, "success", f"{updated.email} is {state}.")
    return see_other(ADMIN_USERS)


@router.post("/admin/users/{user_id}/delete")
async def delete_user(request: Request, user_id: str) -> Response:
    """Delete a user and revoke all their sessions."""
    found = await _target(request, user_id)
    if not isinstance(found, tuple):
        return found
    admin, target = found
    try:
        await authenticator(request).delete_user(target.id, actor=admin.id)
    except UserNotFound:
        flash(request, "error", "That user no longer exists.")
    except AdminLockout as exc:
        flash(request, "error", f"{exc}.")
    else:
        flash(request, "success", f"Deleted {target.email}.")
    return see_other(ADMIN_USERS)


@router.post("/admin/users/{user_id}/revoke-sessions")
async def revoke_user_sessions(request: Request, user_id: str) -> Response:
    """Sign a user out everywhere (for the admin themselves: everywhere else)."""
    admin = await _admin(request)
    if not isinstance(admin, User):
        return admin
    auth = authenticator(request)
    if user_id == str(admin.id):  # the one spelling of the admin's id (see parse_user_id)
        revoked = await auth.revoke_other_sessions(
            session_of(request), address=client_address(request)
        )
        flash(request, "success", f"Signed out {revoked} of your other sessions.")
        return see_other(ADMIN_USERS)
    found = await _target(request, user_id)
    if not isinstance(found, tuple):
        return found
    _, target = found
    revoked = await auth.revoke_all_sessions(target.id, actor=admin.id)
    flash(request, "success", f"Signed {target.email} out of {revoked} session(s).")
    return see_other(ADMIN_USERS)


@router.post("/admin/users/{user_id}/reset-mfa")
async def reset_user_factors(request: Request, user_id: str) -> Response:
    """Remove every second factor of a user (a lost authenticator); they are signed out.

    Like disabling TOTP, it needs a login within ``RECENT_AUTH``: an administrator's session
    left open must not strip second factors. Never the administrator's own: they disable
    theirs with a code (``POST /mfa/totp/disable``). Another administrator's is allowed, as
    disabling that administrator is.
    """
    admin = await _admin(request)
    if not isinstance(admin, User):
        return admin
    if user_id == str(admin.id):  # the one spelling of the admin's id (see parse_user_id)
        flash(request, "error", "Turn off your own two-factor sign-in on your account page.")
        return see_other(ADMIN_USERS)
    try:
        check_recent_auth(session_of(request), RECENT_AUTH, authenticator(request).clock)
    except PermissionDenied:
        flash(
            request,
            "error",
            "Sign in again to reset second factors: your last sign-in is over 10 minutes old.",
        )
        return see_other(ADMIN_USERS)
    found = await _target(request, user_id)
    if not isinstance(found, tuple):
        return found
    _, target = found
    revoked = await authenticator(request).reset_factors(target.id, actor=admin.id)
    flash(
        request,
        "success",
        f"Removed the second factors of {target.email}; {revoked} session(s) signed out.",
    )
    return see_other(ADMIN_USERS)
