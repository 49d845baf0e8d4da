"""A Starlette application on SQLite: login, logout, a protected route, a role check, CSRF.

Everything lives in one SQLite file: the accounts, the sessions and the login attempt counts.

Run it (from this folder, with ``pip install sessionauth uvicorn``)::

    export APP_SECRET=$(python -c 'import secrets; print(secrets.token_urlsafe(48))')
    python app.py add-user alice@example.com admin     # asks for the password twice
    uvicorn app:app
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import os
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from sessionauth import (
    CookieConfig,
    CSRFMiddleware,
    Keyring,
    SessionAuthError,
    SessionMiddleware,
    csrf_token,
    open_backend,
)
from sessionauth.auth import Authenticator, LoginThrottle, PasswordHasher
from sessionauth.starlette import (
    exception_handlers,
    login_required,
    role_required,
    session_of,
)

DATABASE = os.environ.get("APP_DATABASE", "sqlite:///example.db")
ROLES = ("admin", "user")  # the Authenticator's default roles


def authenticator(request: Request) -> Authenticator[int]:
    """The application's Authenticator, made by the lifespan."""
    auth: Authenticator[int] = request.app.state.auth
    return auth


class BadBody(Exception):
    """The request body is not the JSON object the route reads (answered 400 by `bad_body`)."""


async def json_strings(request: Request, *names: str) -> dict[str, str]:
    """Read the body as a JSON object and return its fields ``names``, each a string.

    Starlette's ``request.json()`` raises on a body that is not JSON and returns whatever
    JSON it is (an array, a string, a number for a field): each route reading it must check
    it, or a client's typo becomes a 500. This is that check, once.

    Raises:
        BadBody: For a body that is not UTF-8 JSON (or nests too deep to parse), is not an
            object, or lacks one of ``names`` as a string.
    """
    try:
        body = await request.json()
    # JSONDecodeError and UnicodeDecodeError are ValueErrors; very deep nesting is a
    # RecursionError of the parser, still only a bad body.
    except (ValueError, RecursionError):
        raise BadBody("The body must be JSON") from None
    if not isinstance(body, dict):
        raise BadBody("The body must be a JSON object")
    wrong = [name for name in names if not isinstance(body.get(name), str)]
    if wrong:
        raise BadBody(f"These fields must be strings: {', '.join(wrong)}")
    return {name: body[name] for name in names}


async def bad_body(request: Request, exc: Exception) -> Response:
    """A body `json_strings` refused, as 400 ``{"error": ...}``."""
    return JSONResponse({"error": str(exc)}, status_code=400)


async def get_csrf(request: Request) -> Response:
    """A CSRF token for this client: send it back as ``X-CSRF-Token`` on every POST."""
    return JSONResponse({"csrfToken": csrf_token(session_of(request), request.app.state.keyring)})


async def login_page(request: Request) -> Response:
    """Where the guards send a browser that needs a login (with ``?next=``): your form here."""
    return HTMLResponse("<form method=post action=/login>...</form>")


async def login(request: Request) -> Response:
    """Check the email and password, then bind the session to the user (a new token)."""
    body = await json_strings(request, "email", "password")  # BadBody: 400
    auth = authenticator(request)
    address = request.client.host if request.client else "unknown"
    # A wrong password raises InvalidCredentials (401), too many TooManyAttempts (429), a
    # store that cannot answer StoreUnavailable (503): `exception_handlers` answers them.
    accepted = await auth.authenticate(body["email"], body["password"], address=address)
    session = session_of(request)
    principal = await auth.login(
        session, accepted, address=address, user_agent=request.headers.get("user-agent")
    )
    # The login gave the session a new token, so earlier CSRF tokens no longer verify.
    token = csrf_token(session, request.app.state.keyring)
    user = {"id": accepted.user.id, "role": principal.role}  # the role the rights come from
    return JSONResponse({"user": user, "csrfToken": token})


@login_required
async def me(request: Request) -> Response:
    """The signed-in user (401 for anyone else)."""
    user = await authenticator(request).current_user(session_of(request))
    return JSONResponse({"id": user.id, "email": user.email, "role": user.role})


@role_required("admin")
async def admin(request: Request) -> Response:
    """Administrators only (401 when signed out, 403 for other roles)."""
    return JSONResponse({"message": "Admin area"})


@login_required
async def logout(request: Request) -> Response:
    """End the session: its record is deleted and the cookie cleared."""
    await authenticator(request).logout(session_of(request))
    return JSONResponse({"success": True})


def create_app(*, database: str = DATABASE, secret: str, secure: bool = False) -> Starlette:
    """Build the application.

    Args:
        database: A ``sqlite:///`` URL for accounts, sessions and attempt counts.
        secret: Signs the cookies; comma-separated to rotate keys (the first is current).
        secure: Secure cookies: turn on when the site is served over HTTPS.
    """
    keyring = Keyring.from_string(secret)
    # One SQLite connection serves the sessions, the attempt counts and the accounts.
    backend = open_backend(database)
    sessions = backend.session_store()

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        app.state.keyring = keyring
        app.state.auth = Authenticator(
            users=backend.user_store(),
            sessions=sessions,
            hasher=PasswordHasher(),
            throttle=LoginThrottle(backend.attempt_counter()),
        )
        try:
            yield
        finally:
            await backend.aclose()

    return Starlette(
        routes=[
            Route("/csrf", get_csrf),
            Route("/login", login_page, methods=["GET"]),
            Route("/login", login, methods=["POST"]),
            Route("/logout", logout, methods=["POST"]),
            Route("/me", me),
            Route("/admin", admin),
        ],
        middleware=[
            # Over plain http (local development) the cookie cannot be Secure.
            Middleware(
                SessionMiddleware,
                store=sessions,
                keyring=keyring,
                cookie=CookieConfig(secure=secure),
            ),
            Middleware(CSRFMiddleware, keyring=keyring),
        ],
        lifespan=lifespan,
        # Every refusal, outage and bad body as {"error": ...}.
        exception_handlers={**exception_handlers, BadBody: bad_body},
    )


async def add_user(email: str, password: str, role: str, *, database: str = DATABASE) -> int:
    """Create an account with an argon2id hash of ``password``; return its id."""
    async with open_backend(database) as backend:
        password_hash = await PasswordHasher().hash(password)
        user = await backend.user_store().create(email, password_hash, role=role)
    return user.id


def main(argv: list[str]) -> int:
    """``add-user EMAIL ROLE``: ask for the password, create the account; errors in one line."""
    parser = argparse.ArgumentParser(prog="app.py", description="Create an account.")
    parser.add_argument("command", choices=["add-user"])
    parser.add_argument("email")
    parser.add_argument("role", choices=ROLES)
    args = parser.parse_args(argv)  # a usage line and exit 2 for missing or bad arguments
    try:
        password = getpass.getpass("Password (8 characters or more): ")
        if getpass.getpass("Password again: ") != password:
            print("error: the two passwords differ", file=sys.stderr)
            return 1
        new_id = asyncio.run(add_user(args.email, password, args.role))
    except SessionAuthError as exc:  # a bad email or database URL, a short password, a duplicate
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except (EOFError, KeyboardInterrupt):
        print("\ncancelled", file=sys.stderr)
        return 1
    print(f"created user {new_id}")
    return 0


if __name__ == "__main__":  # python app.py add-user EMAIL ROLE: needs no APP_SECRET
    sys.exit(main(sys.argv[1:]))

app = create_app(secret=os.environ["APP_SECRET"], secure=os.environ.get("APP_SECURE") == "1")
