"""The guards as FastAPI dependencies that declare the session cookie as a security scheme.

Imported by :mod:`sessionauth.fastapi` (the public names are there). FastAPI itself is imported
only when FastAPI inspects a dependency (it reads the ``__signature__`` of
:class:`SecuredDependency`), so every public name imports without the ``server`` extra.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

from starlette.requests import Request

from sessionauth.auth.current_user import CurrentUser, UserLookup, UserT
from sessionauth.auth.user_guards import Guards
from sessionauth.auth.user_ids import IdT
from sessionauth.config import CookieConfig
from sessionauth.policy import Clock, system_clock

__all__ = [
    "SESSION_SCHEME",
    "Dependencies",
    "SecuredDependency",
    "require_auth",
    "require_recent_auth",
    "require_role",
]

SESSION_SCHEME = "sessionCookie"
"""The OpenAPI security scheme the dependencies declare (the reference server's name too)."""

_T = TypeVar("_T")


class SecuredDependency(Generic[_T]):
    """A FastAPI dependency: runs ``check`` and declares the session cookie's scheme.

    Args:
        check: The guard, a callable of the request.
        cookie_name: The session cookie's name, shown in the schema.
    """

    def __init__(self, check: Callable[[Request], Awaitable[_T]], cookie_name: str):
        self.check = check
        self.cookie_name = cookie_name

    async def __call__(self, request: Request, _session_cookie: object = None) -> _T:
        """Run the check (the cookie parameter only declares the scheme; it is not read)."""
        return await self.check(request)

    @property
    def __signature__(self) -> inspect.Signature:
        """The signature FastAPI reads: the request, and the cookie as a ``Security`` scheme."""
        # FastAPI is asking, so it is installed.
        from fastapi import Security
        from fastapi.security import APIKeyCookie

        scheme = APIKeyCookie(
            name=self.cookie_name,
            scheme_name=SESSION_SCHEME,
            description="The session cookie that the login sets.",
            auto_error=False,  # the guards decide, with the tutorial's answers
        )
        kind = inspect.Parameter.POSITIONAL_OR_KEYWORD
        return inspect.Signature(
            [
                inspect.Parameter("request", kind, annotation=Request),
                inspect.Parameter(
                    "_session_cookie", kind, default=Security(scheme), annotation=str | None
                ),
            ]
        )


class Dependencies(Generic[IdT]):
    """The guards of ``guards`` as FastAPI dependencies declaring the session cookie.

    Args:
        guards: The checks, with the user id type and the login page.
        cookie: The ``CookieConfig`` given to ``SessionMiddleware``: the schema shows its
            name (``session`` when not Secure, ``__Host-session`` when Secure). Pass the same
            object to both, so ``/docs`` names the cookie the middleware really sets.
        cookie_name: The session cookie's name, instead of ``cookie`` (shown in the schema;
            the guards read the session, never this value).

    Attributes:
        guards: The checks.
        cookie_name: The cookie name the schema shows.
        require_auth: Dependency: the user id, or 401.
    """

    def __init__(
        self,
        guards: Guards[IdT],
        *,
        cookie: CookieConfig | None = None,
        cookie_name: str | None = None,
    ):
        if cookie is not None and cookie_name is not None:
            raise TypeError("give cookie or cookie_name, not both")
        self.guards: Guards[IdT] = guards
        self.cookie_name = cookie.name if cookie is not None else cookie_name or "__Host-session"
        self.require_auth: SecuredDependency[IdT] = self.secured(guards.require_auth)

    def secured(self, check: Callable[[Request], Awaitable[_T]]) -> SecuredDependency[_T]:
        """Return ``check`` as a dependency that also declares the cookie scheme."""
        return SecuredDependency(check, self.cookie_name)

    def require_role(self, *roles: str) -> SecuredDependency[IdT]:
        """Dependency factory: the user id if the principal's role is one of ``roles``."""
        return self.secured(self.guards.require_role(*roles))

    def require_recent_auth(
        self, max_age: float, *, clock: Clock | None = None
    ) -> SecuredDependency[IdT]:
        """Dependency factory: the user id if they logged in within ``max_age`` seconds."""
        return self.secured(self.guards.require_recent_auth(max_age, clock=clock))

    def current_user(self, users: UserLookup[IdT, UserT]) -> SecuredDependency[UserT]:
        """Dependency: the signed-in user's own object from ``users`` (see ``CurrentUser``)."""
        return self.secured(CurrentUser(users, self.guards))


_default = Dependencies(Guards(user_id_type=str))

require_auth: SecuredDependency[str] = _default.require_auth
"""Dependency: the authenticated user's id (text), or 401."""


def require_role(*roles: str) -> SecuredDependency[str]:
    """Dependency factory: the user id (text) if the principal's role is one of ``roles``."""
    return _default.require_role(*roles)


def require_recent_auth(max_age: float, *, clock: Clock = system_clock) -> SecuredDependency[str]:
    """Dependency factory: the user id (text) if they logged in within ``max_age`` seconds."""
    return _default.require_recent_auth(max_age, clock=clock)
