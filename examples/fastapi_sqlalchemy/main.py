"""A FastAPI application with its own SQLAlchemy users table; sessions in Redis.

The accounts are the application's (an ``accounts`` table it owns, with a column of its own,
``display_name``); sessionauth reads them through a small user source and keeps the sessions,
the principals (the rights in force) and the login attempt counts in Redis.

Run it (from this folder, with ``pip install 'sessionauth[redis]' fastapi uvicorn
'sqlalchemy[asyncio]' aiosqlite``)::

    export APP_SECRET=$(python -c 'import secrets; print(secrets.token_urlsafe(48))')
    python main.py add-user alice@example.com admin    # asks for a password
    uvicorn main:app
"""

# No `from __future__ import annotations`: SQLAlchemy and FastAPI read the annotations at
# runtime, and this file is also loaded by path (by the tests), outside sys.modules.
# --8<-- [start:imports]
import asyncio
import getpass
import os
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Annotated, Literal

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse
from pydantic import BaseModel
from sqlalchemy import String, select, update
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from starlette.exceptions import HTTPException

from sessionauth import (
    CookieConfig,
    CSRFMiddleware,
    Keyring,
    SessionMiddleware,
    StoreUnavailable,
    csrf_token,
    open_backend,
)
from sessionauth.auth import Authenticator, Guards, LoginThrottle, PasswordHasher, normalize_email
from sessionauth.fastapi import Dependencies, session_of

DATABASE = os.environ.get("APP_DATABASE", "sqlite+aiosqlite:///example.db")  # the accounts
STORE = os.environ.get("APP_STORE", "redis://127.0.0.1:6379/0")  # sessions, attempt counts
# --8<-- [end:imports]


# --8<-- [start:model]
class Base(DeclarativeBase):
    """The application's models."""


class Account(Base):
    """The application's user: the five attributes sessionauth reads, and its own."""

    __tablename__ = "accounts"
    # AUTOINCREMENT: an id is never reused, so no old session can name a new account.
    __table_args__ = ({"sqlite_autoincrement": True},)

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)  # stored normalised
    password_hash: Mapped[str]
    role: Mapped[str] = mapped_column(default="user")
    disabled: Mapped[bool] = mapped_column(default=False)
    display_name: Mapped[str] = mapped_column(default="")  # the application's own column


# --8<-- [end:model]


# --8<-- [start:source]
@contextmanager
def reachable() -> Iterator[None]:
    """Turn "the database cannot answer" into StoreUnavailable (a 503, never a 500)."""
    try:
        yield
    except OperationalError as exc:
        raise StoreUnavailable("the accounts database cannot answer") from exc


class SQLAlchemyUsers:
    """The accounts table as a sessionauth UserSource[Account]: by id, by email, rehashes."""

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession]):
        self.sessionmaker = sessionmaker

    async def get(self, user_id: int) -> Account | None:
        """The account with this id, or None."""
        with reachable():
            async with self.sessionmaker() as db:
                return await db.get(Account, user_id)

    async def get_by_email(self, email: str) -> Account | None:
        """The account with this (normalised) email, or None."""
        with reachable():
            async with self.sessionmaker() as db:
                return await db.scalar(select(Account).where(Account.email == email))

    async def set_password(self, user_id: int, password_hash: str, *, replacing: str) -> bool:
        """Replace the hash ``replacing`` (an upgrade at login, a change, a reset); say whether.

        The condition is in the one UPDATE, so a change that lost a race never overwrites
        the one that won (an administrator's reset, say).
        """
        with reachable():
            async with self.sessionmaker.begin() as db:
                change = (
                    update(Account)
                    .where(Account.id == user_id, Account.password_hash == replacing)
                    .values(password_hash=password_hash)
                    .returning(Account.id)
                )
                return await db.scalar(change) is not None


# --8<-- [end:source]


# --8<-- [start:setup]
keyring = Keyring.from_string(os.environ["APP_SECRET"])
engine = create_async_engine(DATABASE)
sessionmaker = async_sessionmaker(engine, expire_on_commit=False)
users = SQLAlchemyUsers(sessionmaker)
store = open_backend(STORE)
sessions = store.session_store()

# Secure cookies are dropped over plain http: keep them for https (APP_SECURE=1). One object
# for the middleware and the OpenAPI scheme, so /docs names the cookie really set.
cookie = CookieConfig(secure=os.environ.get("APP_SECURE") == "1")
guards = Guards(user_id_type=int, login_url="/login")  # ids are ints; browsers go to GET /login
deps = Dependencies(guards, cookie=cookie)  # declares the session cookie: the lock in /docs
current_user = deps.current_user(users)  # Depends(current_user) -> Account
AdminId = Annotated[int, Depends(deps.require_role("admin"))]


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Create the table if need be; close the engine and the store at shutdown."""
    async with engine.begin() as connection:
        await connection.run_sync(Base.metadata.create_all)
    app.state.auth = Authenticator(
        users=users,  # the application's own users
        sessions=sessions,
        hasher=app.state.hasher,
        throttle=LoginThrottle(store.attempt_counter()),
    )
    try:
        yield
    finally:
        await store.aclose()
        await engine.dispose()


async def invalid_body(request: Request, exc: Exception) -> JSONResponse:
    """A malformed body as ``{"error": ...}`` (FastAPI's own is 422 ``{"detail": [...]}``)."""
    return JSONResponse({"error": "Invalid request body"}, status_code=400)


async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
    """FastAPI's own refusals as ``{"error": ...}``: 404, 405, and 400 for a body it cannot parse.

    A body of bytes that are not UTF-8, or of JSON nested too deep, never reaches the
    validation (``invalid_body``): FastAPI answers it 400 ``{"detail": ...}`` itself.
    """
    return JSONResponse({"error": exc.detail}, status_code=exc.status_code, headers=exc.headers)


# 401 and 403 from the guards (browsers sent to GET /login), 401 for InvalidCredentials, 429
# with Retry-After for TooManyAttempts, 503 with Retry-After for StoreUnavailable: all
# {"error": ...}, so the routes need no try/except for them.
app = FastAPI(
    lifespan=lifespan,
    exception_handlers={
        **guards.exception_handlers,
        RequestValidationError: invalid_body,
        HTTPException: http_error,
    },
)
app.state.hasher = PasswordHasher()  # argon2id; replace before startup to tune it
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


@app.get("/login", response_class=HTMLResponse)
async def login_page() -> str:
    """Where guards send browsers (with ?next=); a real app renders its form here."""
    return "<form method=post action=/login>...</form>"


@app.get("/csrf")
async def get_csrf(request: Request) -> dict[str, str]:
    """A CSRF token: send it back as ``X-CSRF-Token`` on every POST, PATCH, DELETE."""
    return {"csrfToken": csrf_token(session_of(request), keyring)}


@app.post("/login")
async def login(body: Credentials, request: Request) -> dict[str, object]:
    """Check the password, then store a new session (rights: the principal's)."""
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
    user = {"id": accepted.user.id, "role": principal.role}
    return {"user": user, "csrfToken": csrf_token(session, keyring)}


@app.get("/me")
async def me(account: Annotated[Account, Depends(current_user)]) -> dict[str, object]:
    """The signed-in user's own Account object (its role grants nothing by itself)."""
    return {"id": account.id, "email": account.email, "displayName": account.display_name}


@app.get("/admin")
async def admin(user_id: AdminId) -> dict[str, object]:
    """Administrators only: the principal's role, read with the session."""
    return {"message": "Admin area", "userId": user_id}


@app.post("/logout", dependencies=[Depends(deps.require_auth)])
async def logout(request: Request) -> dict[str, bool]:
    """End the session: its record is deleted and the cookie cleared."""
    await authenticator(request).logout(session_of(request))
    return {"success": True}


class PasswordChange(BaseModel):
    """The password form."""

    current_password: str
    new_password: str


@app.post("/password", dependencies=[Depends(deps.require_auth)])
async def change_password(body: PasswordChange, request: Request) -> dict[str, object]:
    """Change my password: my other sessions end, this one gets a new token."""
    auth, session = authenticator(request), session_of(request)
    address = request.client.host if request.client else "unknown"
    # A wrong current password raises InvalidCredentials: 401, as at login.
    ended = await auth.change_password(
        session, body.current_password, body.new_password, address=address
    )
    return {"revoked": ended, "csrfToken": csrf_token(session, keyring)}


# --8<-- [end:routes]


# --8<-- [start:admin]
class AccountChange(BaseModel):
    """What an administrator may change."""

    role: Literal["admin", "user"] | None = None
    disabled: bool | None = None
    password: str | None = None


@app.patch("/users/{user_id}", response_model=None)
async def change_account(
    user_id: int, body: AccountChange, admin_id: AdminId, request: Request
) -> dict[str, bool] | JSONResponse:
    """Change an account in the application's own table, then tell sessionauth."""
    auth = authenticator(request)
    new_hash = await auth.hasher.hash(body.password) if body.password is not None else None
    async with sessionmaker.begin() as db:
        account = await db.get(Account, user_id)
        if account is None:
            return JSONResponse({"error": "No such user"}, status_code=404)
        if body.role is not None:
            account.role = body.role
        if body.disabled is not None:
            account.disabled = body.disabled
        if new_hash is not None:
            account.password_hash = new_hash
    # Until principal_changed() returns, the old rights stand: call it after every change of
    # role, disabled or password. end_sessions is required, so each call says what it does:
    if new_hash is not None or account.disabled:
        # A new password or a disable: every session of the account ends.
        await auth.principal_changed(user_id, end_sessions=True)
    else:
        # A role change: the sessions stay, with the new role from their next request on.
        await auth.principal_changed(user_id, end_sessions=False)
    return {"success": True}


@app.delete("/users/{user_id}", response_model=None)
async def delete_account(
    user_id: int, admin_id: AdminId, request: Request
) -> dict[str, bool] | JSONResponse:
    """Delete an account, then end its sessions (a deleted account always ends them)."""
    async with sessionmaker.begin() as db:
        account = await db.get(Account, user_id)
        if account is None:
            return JSONResponse({"error": "No such user"}, status_code=404)
        await db.delete(account)
    await authenticator(request).principal_changed(user_id, end_sessions=True)
    return {"success": True}


# --8<-- [end:admin]


async def add_user(email: str, password: str, role: str = "user") -> int:
    """Create an account (creating the table if need be); return its id."""
    async with engine.begin() as connection:
        await connection.run_sync(Base.metadata.create_all)
    password_hash = await app.state.hasher.hash(password)
    async with sessionmaker.begin() as db:
        account = Account(email=normalize_email(email), password_hash=password_hash, role=role)
        db.add(account)
    return account.id


if __name__ == "__main__" and sys.argv[1:2] == ["add-user"]:
    new_id = asyncio.run(add_user(sys.argv[2], getpass.getpass(), *sys.argv[3:4]))
    print(f"created user {new_id}")
