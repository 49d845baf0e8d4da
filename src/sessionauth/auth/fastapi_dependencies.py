"""The guards as FastAPI dependencies that declare the session cookie as a security scheme.

Imported by :mod:`sessionauth.fastapi` (the public names are there); the only module of the
library, with that one, that needs FastAPI.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Generic, TypeVar

from fastapi import Security
from fastapi.security import APIKeyCookie
from starlette.requests import Request

from sessionauth.auth.current_user import CurrentUser, UserLookup, UserT
from sessionauth.auth.user_guards import Guards
from sessionauth.auth.user_ids import IdT
from sessionauth.policy import Clock, system_clock

__all__ = [
    "SESSION_SCHEME",
    "Dependencies",
    "require_auth",
    "require_recent_auth",
    "require_role",
]

SESSION_SCHEME = "sessionCookie"
"""The OpenAPI security scheme the dependencies declare (the reference server's name too)."""

_T = TypeVar("_T")


class Dependencies(Generic[IdT]):
    """The guards of ``guards`` as FastAPI dependencies declaring the session cookie.

    Args:
        guards: The checks, with the user id type and the login page.
        cookie_name: The session cookie's name, as ``CookieConfig`` sets it (shown in the
            schema; the guards read the session, never this value).

    Attributes:
        guards: The checks.
        cookie: The ``APIKeyCookie`` security scheme.
        require_auth: Dependency: the user id, or 401.
    """

    def __init__(self, guards: Guards[IdT], *, cookie_name: str = "__Host-session"):
        self.guards: Guards[IdT] = guards
        self.cookie: APIKeyCookie = APIKeyCookie(
            name=cookie_name,
            scheme_name=SESSION_SCHEME,
            description="The session cookie that the login sets.",
            auto_error=False,  # the guards decide, with the tutorial's answers
        )
        self.require_auth: Callable[..., Awaitable[IdT]] = self.secured(guards.require_auth)

    def secured(self, check: Callable[[Request], Awaitable[_T]]) -> Callable[..., Awaitable[_T]]:
        """Return ``check`` as a dependency that also declares the cookie scheme."""
        cookie: Any = Security(self.cookie)

        async def dependency(request: Request, _session_cookie: str | None = cookie) -> _T:
            return await check(request)

        return dependency

    def require_role(self, *roles: str) -> Callable[..., Awaitable[IdT]]:
        """Dependency factory: the user id if the principal's role is one of ``roles``."""
        return self.secured(self.guards.require_role(*roles))

    def require_recent_auth(
        self, max_age: float, *, clock: Clock | None = None
    ) -> Callable[..., Awaitable[IdT]]:
        """Dependency factory: the user id if they logged in within ``max_age`` seconds."""
        return self.secured(self.guards.require_recent_auth(max_age, clock=clock))

    def current_user(self, users: UserLookup[IdT, UserT]) -> Callable[..., Awaitable[UserT]]:
        """Dependency: the signed-in user's own object from ``users`` (see ``CurrentUser``)."""
        return self.secured(CurrentUser(users, self.guards))


_default = Dependencies(Guards(user_id_type=str))

require_auth = _default.require_auth
"""Dependency: the authenticated user's id (text), or 401."""
require_role = _default.require_role
"""Dependency factory: the user id (text) if the principal's role is one of ``roles``."""


def require_recent_auth(
    max_age: float, *, clock: Clock = system_clock
) -> Callable[..., Awaitable[str]]:
    """Dependency factory: the user id (text) if they logged in within ``max_age`` seconds."""
    return _default.require_recent_auth(max_age, clock=clock)
