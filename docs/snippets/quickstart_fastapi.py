"""The FastAPI quickstart: login, logout, a protected route, a role check, CSRF.

Accounts live in SQLite; sessions and login attempt counts in Redis (or SQLite: set
``APP_STORE=sqlite:///app.db``).
"""

# --8<-- [start:imports]
from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException

from sessionauth import (
    CookieConfig,
    CSRFMiddleware,
    Keyring,
    SessionMiddleware,
    csrf_token,
    open_backend,
)
from sessionauth.auth import Authenticator, Guards, LoginThrottle, PasswordHasher
from sessionauth.fastapi import Dependencies, session_of

# --8<-- [end:imports]

# --8<-- [start:setup]
DATABASE = os.environ.get("APP_DATABASE", "sqlite:///app.db")  # the accounts
STORE = os.environ.get("APP_STORE", "redis://127.0.0.1:6379/0")  # sessions, attempt counts
keyring = Keyring.from_string(os.environ["APP_SECRET"])
accounts = open_backend(DATABASE)  # one connection or pool per database, shared by its views
store = open_backend(STORE) if STORE != DATABASE else accounts
sessions = store.session_store()
counter = store.attempt_counter()
# Secure cookies are dropped over plain http: keep them for https (APP_SECURE=1). One object
# for the middleware and the guards, so /docs names the cookie really set.
cookie = CookieConfig(secure=os.environ.get("APP_SECURE") == "1")
guards = Guards(user_id_type=int, login_url="/login")  # ids are ints; browsers go to GET /login
deps = Dependencies(guards, cookie=cookie)  # the guards as dependencies, with the /docs lock


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Open the user database; close every connection at shutdown."""
    app.state.auth = Authenticator(
        users=accounts.user_store(),  # its table is created on first use
        sessions=sessions,
        hasher=PasswordHasher(),
        throttle=LoginThrottle(counter),
    )
    try:
        yield
    finally:
        await store.aclose()  # closes the views it built, then the connection
        await accounts.aclose()


async def invalid_body(request: Request, exc: Exception) -> JSONResponse:
    """A malformed body as ``{"error": ...}`` (FastAPI's own is 422 ``{"detail": [...]}``)."""
    return JSONResponse({"error": "Invalid request body"}, status_code=400)


async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
    """FastAPI's own refusals as ``{"error": ...}``: 404, 405, and 400 for a body it cannot parse.

    A body of bytes that are not UTF-8, or of JSON nested too deep, never reaches the
    validation (``invalid_body``): FastAPI answers it 400 ``{"detail": ...}`` itself.
    """
    return JSONResponse({"error": exc.detail}, status_code=exc.status_code, headers=exc.headers)


# `guards.exception_handlers` answers, as {"error": ...}: the guards' 401 / 403 (browsers are
# sent to GET /login), InvalidCredentials 401, TooManyAttempts 429 and StoreUnavailable 503
# (both with Retry-After). So the routes need no try/except for them.
app = FastAPI(
    lifespan=lifespan,
    exception_handlers={
        **guards.exception_handlers,
        RequestValidationError: invalid_body,
        HTTPException: http_error,
    },
)
app.add_middleware(CSRFMiddleware, keyring=keyring)  # added first: runs inside the sessions
app.add_middleware(
    SessionMiddleware,
    store=sessions,
    keyring=keyring,
    cookie=cookie,
)


def authenticator(request: Request) -> Authenticator[int]:
    """The Authenticator the lifespan made."""
    auth: Authenticator[int] = request.app.state.auth
    return auth


# --8<-- [end:setup]


# --8<-- [start:routes]
class Credentials(BaseModel):
    """The login form."""

    email: str
    password: str


@app.get("/csrf")
async def get_csrf(request: Request) -> dict[str, str]:
    """A CSRF token: send it back as ``X-CSRF-Token`` on every POST, PUT, PATCH, DELETE."""
    return {"csrfToken": csrf_token(session_of(request), keyring)}


@app.get("/login", response_class=HTMLResponse)
async def login_page() -> str:
    """Where the guards send a browser that needs a login (with ``?next=``): your form here."""
    return "<form method=post action=/login>...</form>"


@app.post("/login")
async def login(body: Credentials, request: Request) -> dict[str, object]:
    """Check the password, then bind the session to the user (a new session token)."""
    auth = authenticator(request)
    address = request.client.host if request.client else "unknown"
    session = session_of(request)
    # A wrong password raises InvalidCredentials (401), too many TooManyAttempts (429), a
    # store that cannot answer StoreUnavailable (503); a login that lost a race with a change
    # of the account fails like a wrong password.
    accepted = await auth.authenticate(body.email, body.password, address=address)
    principal = await auth.login(
        session, accepted, address=address, user_agent=request.headers.get("user-agent")
    )
    # The session has a new token now, so the CSRF token the client held is void: send a new one.
    # The role shown is the principal's: the one the session's rights come from.
    user = {"id": accepted.user.id, "role": principal.role}
    return {"user": user, "csrfToken": csrf_token(session, keyring)}


@app.get("/me", dependencies=[Depends(deps.require_auth)])
async def me(request: Request) -> dict[str, object]:
    """Any signed-in user; 401 for anyone else."""
    user = await authenticator(request).current_user(session_of(request))
    return {"id": user.id, "email": user.email, "role": user.role}


@app.get("/admin")
async def admin(user_id: Annotated[int, Depends(deps.require_role("admin"))]) -> dict[str, str]:
    """Administrators only: 401 signed out, 403 for any other role."""
    return {"message": f"Hello, admin {user_id}"}


@app.post("/logout", dependencies=[Depends(deps.require_auth)])
async def logout(request: Request) -> dict[str, bool]:
    """End the session: its record is deleted and the cookie cleared."""
    await authenticator(request).logout(session_of(request))
    return {"success": True}


# --8<-- [end:routes]
