"""Benchmark app: Starlette + sessionauth's SessionMiddleware, speaking the bench contract.

The contract is ../../../shared/bench/README.md's: POST /login (bcrypt cost 10), GET /dashboard,
GET /admin, POST /logout, cookie ``sessionId`` on plain HTTP with a 24 h lifetime. The session
store comes from ``BENCH_STORE_URL`` (default: ``REDIS_URL``), so the same app measures every
store: ``redis://``, ``sqlite:///path``, ``postgresql://``.

Only library code runs per request: no reference-server routes, no CSRF (the contract's clients
send no token), as the peers do. Rights come from the user's principal, read with the session in
the same store command (the always-current authorization check): the login installs it and
stores the session under its epoch, as ``Authenticator.login`` does, without a users database.
"""

from __future__ import annotations

import os
import secrets
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import bcrypt
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from sessionauth import CookieConfig, Keyring, SessionMiddleware, TimeoutPolicy, open_store
from sessionauth.auth.passwords import PasswordHasher
from sessionauth.principal import Principal, new_epoch
from sessionauth.tokens import new_token, storage_id

REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
STORE_URL = os.environ.get("BENCH_STORE_URL") or REDIS_URL
EMAIL = os.environ.get("BENCH_EMAIL", "bench@example.com")
PASSWORD = os.environ.get("BENCH_PASSWORD", "correct-horse-battery-staple-bench-password-42")

USER = {"id": 1, "email": EMAIL, "role": "admin"}
# The contract's bcrypt (cost 10), verified by the library's hasher: in its own low-priority
# threads, one per usable core, so a burst of logins cannot starve the requests being served.
PASSWORD_HASH = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=10)).decode()
HASHER = PasswordHasher()


def unauthorized() -> JSONResponse:
    return JSONResponse({"error": "Authentication required"}, status_code=401)


async def login(request: Request) -> JSONResponse:
    try:
        body = await request.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        body = {}
    password = body.get("password")
    if (
        body.get("email") != USER["email"]
        or not isinstance(password, str)
        or not (await HASHER.verify(password, PASSWORD_HASH))[0]
    ):
        return JSONResponse({"error": "Invalid credentials"}, status_code=401)
    # As Authenticator.login does: the principal (installed once), then the session stored
    # eagerly under its epoch; the middleware sets the cookie and deletes the pre-login record.
    user_id = str(USER["id"])
    principal = await store.install_principal(
        user_id, Principal(epoch=new_epoch(), role=str(USER["role"]))
    )
    token = new_token(user_id)
    sid = storage_id(token)
    record = request.session.login_record(
        user_id, token=token, meta={}, epoch=principal.epoch, now=time.time()
    )
    stored = await store.create(sid, record)
    assert stored is not None  # noqa: S101 - a user's record always has a principal
    request.session.adopt(token, sid, record, stored)
    return JSONResponse({"success": True, "user": {**USER, "role": stored.role}})


async def dashboard(request: Request) -> JSONResponse:
    user_id = request.session.user_id
    if user_id is None:
        return unauthorized()
    return JSONResponse({"userId": int(user_id)})


async def admin(request: Request) -> JSONResponse:
    if request.session.user_id is None:
        return unauthorized()
    principal = request.session.principal
    if principal is None or principal.role != "admin":
        return JSONResponse({"error": "Insufficient permissions"}, status_code=403)
    return JSONResponse({"message": "Admin area"})


async def logout(request: Request) -> JSONResponse:
    request.session.destroy()
    return JSONResponse({"success": True})


store = open_store(STORE_URL)


@asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    yield
    await store.aclose()


app = SessionMiddleware(
    Starlette(
        routes=[
            Route("/login", login, methods=["POST"]),
            Route("/dashboard", dashboard, methods=["GET"]),
            Route("/admin", admin, methods=["GET"]),
            Route("/logout", logout, methods=["POST"]),
        ],
        lifespan=lifespan,
    ),
    store=store,
    keyring=Keyring([os.environ.get("BENCH_SECRET") or secrets.token_urlsafe(48)]),
    cookie=CookieConfig(secure=False, name="sessionId"),
    policy=TimeoutPolicy(idle_timeout=86400, absolute_timeout=86400),
)
