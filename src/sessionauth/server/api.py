"""The JSON API of DESIGN.md section 7: the tutorial's routes, kept exact, and the rest.

Every unsafe route runs behind the CSRF middleware (origin layer, then the token from
``GET /csrf-token`` in ``X-CSRF-Token`` once the browser has a session), and the API's bodies
must be JSON. Guards come from :mod:`sessionauth.auth.guards`; the role they check is the
principal's, read with the session, so a role change applies to every live session at once.
Errors are raised as domain exceptions and turned into ``{"error": ...}`` by
:mod:`sessionauth.server.handlers`.
The tutorial's three read routes live in :mod:`sessionauth.server.hot_routes`.
"""

from __future__ import annotations

import asyncio
import hmac
from typing import Annotated, Any, cast

from fastapi import APIRouter, Depends, HTTPException, Query
from fastapi import Path as PathParam
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from sessionauth.auth.guards import require_auth, require_role, session_of
from sessionauth.auth.session_admin import DEFAULT_PAGE
from sessionauth.auth.user_ids import parse_user_id
from sessionauth.csrf import csrf_token
from sessionauth.errors import SecondFactorRequired, StoreUnavailable
from sessionauth.server import schemas as s
from sessionauth.server.handlers import outage_log
from sessionauth.server.metrics import CONTENT_TYPE, Metrics
from sessionauth.server.page_context import authenticator, client_address
from sessionauth.server.readiness import Readiness
from sessionauth.server.settings import Settings
from sessionauth.stores.base import MAX_PAGE
from sessionauth.stores.users import MAX_PAGE as MAX_USERS_PAGE

__all__ = ["ADMIN", "router"]

ADMIN = "admin"

router = APIRouter()

UserId = Annotated[str, Depends(require_auth)]
AdminId = Annotated[str, Depends(require_role(ADMIN))]
Handle = Annotated[str, PathParam(min_length=1, max_length=128)]
Limit = Annotated[int, Query(ge=1, le=MAX_PAGE, description="Sessions per page.")]
Cursor = Annotated[
    str | None,
    Query(description="The previous page's nextCursor; any other value gives an empty page."),
]


def _target_id(
    user_id: Annotated[
        str, PathParam(description="The user's id, 1 to 2**63-1 in plain ASCII digits.")
    ],
) -> int:
    """The ``{user_id}`` of the path, in its one spelling (anything else is 404)."""
    return parse_user_id(user_id)


TargetId = Annotated[int, Depends(_target_id)]


def _errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI: these statuses answer ``{"error": ...}``."""
    return {status: {"model": s.ErrorBody} for status in statuses}


# -- the tutorial's routes ------------------------------------------------------------------


@router.post("/login", responses=_errors(400, 401, 403, 415, 429, 503))
async def login(body: s.LoginBody, request: Request) -> s.LoginResult | s.MfaRequired:
    """Sign in: a new session (new token, fresh lifetime) bound to the user.

    ``user.role`` is the role in force for the new session (the principal's). With
    ``SESSIONAUTH_REQUIRE_VERIFIED``, the right password of an account whose email is not
    confirmed gets 403 ``Email not verified`` (a wrong one the usual 401). For an account with
    a second factor the answer is ``{"success": false, "mfaRequired": true, "methods": [...]}``
    and the session holds the login, granting nothing, until ``POST /login/mfa``.
    """
    auth = authenticator(request)
    address = client_address(request)
    accepted = await auth.authenticate(body.email, body.password, address=address)
    session = session_of(request)
    try:
        principal = await auth.login(
            session,
            accepted,
            address=address,
            user_agent=request.headers.get("user-agent"),
            remember=body.remember,
        )
    except SecondFactorRequired as exc:
        auth.hold_login(session, accepted, remember=body.remember)
        token = csrf_token(session, request.app.state.keyring)
        return s.MfaRequired(methods=exc.methods, csrfToken=token)
    # Login regenerated the session, so tokens fetched before it no longer verify: hand out one
    # for the new session at once.
    token = csrf_token(session, request.app.state.keyring)
    # The reference server's users are a built-in UserStore: int ids.
    user_id = cast(int, accepted.user.id)
    user = s.UserSummary(id=user_id, email=accepted.user.email, role=principal.role)
    return s.LoginResult(user=user, csrfToken=token)


@router.post("/logout", responses=_errors(401, 403))
async def logout(request: Request, user_id: UserId) -> s.Success:
    """Sign out: the session is deleted and its cookie cleared."""
    del user_id
    await authenticator(request).logout(session_of(request), address=client_address(request))
    return s.Success()


@router.delete("/users/{user_id}", responses=_errors(400, 401, 403, 404, 409))
async def delete_user(request: Request, admin_id: AdminId, user_id: TargetId) -> s.Success:
    """Delete a user; every session of theirs ends at once.

    409 for your own account, or the last enabled administrator.
    """
    await authenticator(request).delete_user(user_id, actor=int(admin_id))
    return s.Success()


@router.post("/api/transfer", responses=_errors(400, 401, 403))
async def transfer(body: s.TransferBody, user_id: UserId) -> s.TransferResult:
    """The tutorial's example of a state-changing request (it moves no money)."""
    del user_id
    return s.TransferResult(amount=body.amount)


# -- my account -----------------------------------------------------------------------------


@router.get("/me", responses=_errors(401))
async def me(request: Request) -> s.UserSummary:
    """The signed-in user, read from the user database."""
    return s.UserSummary.of(await authenticator(request).current_user(session_of(request)))


@router.get("/sessions", responses=_errors(400, 401))
async def list_sessions(
    request: Request, user_id: UserId, limit: Limit = DEFAULT_PAGE, cursor: Cursor = None
) -> s.SessionList:
    """My live sessions, newest first, ``limit`` (1 to 100) at a time; ``current`` marks this one.

    Pass ``nextCursor`` back as ``cursor`` for the next (older) page; it is ``null`` on the last.
    """
    listing = await authenticator(request).list_sessions(
        int(user_id), current=session_of(request).handle, limit=limit, cursor=cursor
    )
    return s.SessionList(
        sessions=[s.SessionOut.of(info) for info in listing.sessions],
        nextCursor=listing.next_cursor,
    )


@router.delete("/sessions/{handle}", responses=_errors(400, 401, 403, 404))
async def revoke_session(request: Request, handle: Handle, user_id: UserId) -> s.Success:
    """Sign out one of my sessions (this one included) by its handle."""
    session = session_of(request)
    auth = authenticator(request)
    if handle == session.handle:
        await auth.logout(session, address=client_address(request))
    else:
        await auth.revoke_session(int(user_id), handle, address=client_address(request))
    return s.Success()


@router.post("/sessions/revoke-others", responses=_errors(401, 403))
async def revoke_other_sessions(request: Request, user_id: UserId) -> s.Revoked:
    """Sign out every session of mine but this one."""
    del user_id
    revoked = await authenticator(request).revoke_other_sessions(
        session_of(request), address=client_address(request)
    )
    return s.Revoked(revoked=revoked)


@router.post("/password", responses=_errors(400, 401, 403))
async def change_password(body: s.PasswordBody, request: Request, user_id: UserId) -> s.Revoked:
    """Change my password: my other sessions end, this one gets a new token."""
    del user_id
    revoked = await authenticator(request).change_password(
        session_of(request),
        body.current_password,
        body.new_password,
        address=client_address(request),
    )
    return s.Revoked(revoked=revoked)


# -- administration -------------------------------------------------------------------------


@router.get("/users", responses=_errors(400, 401, 403))
async def list_users(
    request: Request,
    admin_id: AdminId,
    q: Annotated[str, Query(max_length=254, description="Part of the email, any case.")] = "",
    limit: Annotated[int, Query(ge=1, le=MAX_USERS_PAGE)] = MAX_USERS_PAGE,
    cursor: Annotated[
        str | None, Query(pattern=r"^[1-9][0-9]{0,18}$", description="A nextCursor.")
    ] = None,
) -> s.UserList:
    """Accounts, oldest first, a page at a time; ``q`` keeps those whose email contains it.

    Follow ``nextCursor`` (with the same ``q`` and ``limit``) until it is null. Every
    character of ``q`` matches literally (``%`` and ``_`` too).
    """
    del admin_id
    page = await authenticator(request).page_users(
        search=q, after=0 if cursor is None else int(cursor), limit=limit
    )
    return s.UserList(
        users=[s.UserDetail.of(u) for u in page.users],
        nextCursor=None if page.next_after is None else str(page.next_after),
    )


@router.post("/users", status_code=201, responses=_errors(400, 401, 403, 409))
async def create_user(body: s.NewUserBody, request: Request, admin_id: AdminId) -> s.UserResult:
    """Create an account; the role must be one of ``SESSIONAUTH_ROLES`` (else 400)."""
    user = await authenticator(request).create_user(
        body.email, body.password, role=body.role, actor=int(admin_id)
    )
    return s.UserResult(user=s.UserDetail.of(user))


@router.patch("/users/{user_id}", responses=_errors(400, 401, 403, 404, 409))
async def update_user(
    body: s.UserPatchBody, request: Request, admin_id: AdminId, user_id: TargetId
) -> s.UserResult:
    """Change a user's role (applies to their live sessions at once) or disable them.

    The role must be one of ``SESSIONAUTH_ROLES`` (else 400). Demoting or disabling your own
    account, or the last enabled administrator, is 409.
    """
    if body.role is None and body.disabled is None:
        raise HTTPException(400, "Nothing to change: give role and/or disabled")
    auth = authenticator(request)
    user = None
    if body.role is not None:
        user = await auth.set_role(user_id, body.role, actor=int(admin_id))
    if body.disabled is not None:
        user = await auth.set_disabled(user_id, body.disabled, actor=int(admin_id))
    assert user is not None  # noqa: S101 - one of the two branches ran
    return s.UserResult(user=s.UserDetail.of(user))


@router.post("/users/{user_id}/revoke-sessions", responses=_errors(400, 401, 403, 404))
async def revoke_user_sessions(request: Request, admin_id: AdminId, user_id: TargetId) -> s.Revoked:
    """End every session of a user."""
    auth = authenticator(request)
    await auth.get_user(user_id)  # 404 for a user that does not exist
    return s.Revoked(revoked=await auth.revoke_all_sessions(user_id, actor=int(admin_id)))


# -- operations -----------------------------------------------------------------------------


@router.get("/healthz")
async def healthz() -> s.Health:
    """The process is up (touches no store)."""
    return s.Health()


@router.get("/readyz", response_model=s.Ready, responses=_errors(503))
async def readyz(request: Request) -> Response:
    """Ready to serve: 503 unless both stores serve reads; ``degraded`` when something else fails.

    The conditions (a full store, a failing sweep, …) come from
    :mod:`sessionauth.server.readiness`: they leave the worker in the load balancer.
    """
    auth = authenticator(request)
    checks = {"session store": auth.sessions.ping(), "user database": auth.user_store().ping()}
    results = await asyncio.gather(*checks.values(), return_exceptions=True)
    down = [name for name, result in zip(checks, results, strict=True) if result is not None]
    for result in results:
        if result is not None and not isinstance(result, StoreUnavailable):
            raise result
    if down:
        outage_log(request).failed(next(r for r in results if isinstance(r, StoreUnavailable)))
        return JSONResponse(
            {"error": f"Not ready: {' and '.join(down)} unavailable"},
            status_code=503,
            headers={"Retry-After": "1", "Cache-Control": "no-store"},
        )
    outage_log(request).succeeded()
    readiness: Readiness = request.app.state.readiness
    return JSONResponse(readiness.report(), headers={"Cache-Control": "no-store"})


@router.get(
    "/metrics",
    response_class=Response,
    responses={
        200: {"content": {CONTENT_TYPE: {}}, "description": "Prometheus text format"},
        401: {"description": "SESSIONAUTH_METRICS_TOKEN is set and was not given as a Bearer"},
        404: {"description": "Production without SESSIONAUTH_METRICS_TOKEN: not served"},
    },
)
async def metrics(request: Request) -> Response:
    """Prometheus metrics of this process (see :mod:`sessionauth.server.metrics`).

    With ``SESSIONAUTH_METRICS_TOKEN`` set, only for ``Authorization: Bearer <token>``; without
    it, open in development and not served in production (login and error rates are nobody
    else's business).
    """
    settings: Settings = request.app.state.settings
    if settings.metrics_access == "off":
        raise HTTPException(404, "Not Found")
    token = settings.metrics_token
    if token is not None:
        given = request.headers.get("authorization", "").encode()
        expected = b"Bearer " + token.get_secret_value().encode()
        if not hmac.compare_digest(given, expected):
            raise HTTPException(
                401, "Metrics need the metrics token", headers={"WWW-Authenticate": "Bearer"}
            )
    registry: Metrics = request.app.state.metrics
    body, media_type = registry.render()
    return Response(body, media_type=media_type)
