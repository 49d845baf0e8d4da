"""The guards with an application's settings: the user id type and the login page.

The module-level guards of :mod:`sessionauth.auth.guards` return the session's user id as text
and send browsers to ``/login``. :class:`Guards` is the same checks, configured once::

    guards = Guards(user_id_type=int, login_url="/signin")

    @app.get("/dashboard")
    async def dashboard(user_id: Annotated[int, Depends(guards.require_auth)]) -> ...

Its dependencies return ``user_id_type`` (typed: ``Guards[int]`` returns ``int``), its Starlette
decorators and :attr:`Guards.exception_handlers` redirect browsers to ``login_url``. Rights
come only from the session's principal, as with the module-level guards.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, Generic

from starlette.requests import Request
from starlette.responses import Response

from sessionauth.auth.guards import (
    AUTH_REQUIRED,
    Endpoint,
    check_auth,
    check_recent_auth,
    check_role,
    error_response,
    refusal_handlers,
    session_of,
)
from sessionauth.auth.user_ids import IdT, typed_user_id
from sessionauth.errors import NotAuthenticated, PermissionDenied, UserNotFound
from sessionauth.policy import Clock, system_clock
from sessionauth.session import Session

__all__ = ["Guards"]


class Guards(Generic[IdT]):
    """Authentication, role and recent-authentication guards, for FastAPI and Starlette.

    Args:
        user_id_type: ``int`` or ``str``: what the guards return for the session's user id
            (sessions store it as text). A session whose id is not of this type (``"abc"``
            with ``int``) is not authenticated.
        login_url: Where a browser that needs a login is sent (``?next=`` is added).
        clock: The time source of :meth:`require_recent_auth` and
            :meth:`recent_auth_required`.

    Attributes:
        user_id_type: The type of the ids the guards return.
        login_url: The login page browsers are redirected to.
        clock: The time source.
    """

    def __init__(
        self, *, user_id_type: type[IdT], login_url: str = "/login", clock: Clock = system_clock
    ):
        self.user_id_type: type[IdT] = user_id_type
        self.login_url = login_url
        self.clock = clock

    def user_id(self, session: Session) -> IdT:
        """Return the authenticated user's id as :attr:`user_id_type`.

        Raises:
            NotAuthenticated: If the session is anonymous, its principal disabled, or its id
                not of :attr:`user_id_type`.
        """
        return self._typed(check_auth(session))

    def _typed(self, text: str) -> IdT:
        try:
            return typed_user_id(text, self.user_id_type)
        except UserNotFound:
            raise NotAuthenticated(AUTH_REQUIRED) from None

    # -- FastAPI dependencies (any callable of the request works as one) ---------------------

    async def require_auth(self, request: Request) -> IdT:
        """FastAPI dependency: the authenticated user's id, or 401."""
        return self.user_id(session_of(request))

    def require_role(self, *roles: str) -> Callable[[Request], Awaitable[IdT]]:
        """FastAPI dependency factory: the user id if the principal's role is one of ``roles``."""
        allowed = frozenset(roles)

        async def dependency(request: Request) -> IdT:
            return self._typed(check_role(session_of(request), allowed))

        return dependency

    def require_recent_auth(
        self, max_age: float, *, clock: Clock | None = None
    ) -> Callable[[Request], Awaitable[IdT]]:
        """FastAPI dependency factory: the user id if they logged in within ``max_age`` s.

        ``clock`` replaces :attr:`clock` for this dependency.
        """
        now = clock or self.clock

        async def dependency(request: Request) -> IdT:
            return self._typed(check_recent_auth(session_of(request), max_age, now))

        return dependency

    # -- answers ------------------------------------------------------------------------------

    def error_response(
        self, request: Request, exc: NotAuthenticated | PermissionDenied
    ) -> Response:
        """The answer to a failed guard: JSON 401/403, or a redirect to :attr:`login_url`."""
        return error_response(request, exc, login_url=self.login_url)

    @property
    def exception_handlers(
        self,
    ) -> dict[Any, Callable[[Request, Any], Coroutine[Any, Any, Response]]]:
        """Register on the app: ``FastAPI(exception_handlers=guards.exception_handlers)``.

        They answer the guards' refusals (browsers sent to :attr:`login_url`), failed logins
        (401, 429) and store outages (503 with ``Retry-After``): see ``refusal_response``.
        """
        return refusal_handlers(self.login_url)

    # -- Starlette decorators -----------------------------------------------------------------

    def _guarded(self, check: Callable[[Session], object]) -> Callable[[Endpoint], Endpoint]:
        def decorate(endpoint: Endpoint) -> Endpoint:
            @functools.wraps(endpoint)
            async def guarded(request: Request) -> Response:
                try:
                    check(session_of(request))
                except (NotAuthenticated, PermissionDenied) as exc:
                    return self.error_response(request, exc)
                return await endpoint(request)

            return guarded

        return decorate

    def login_required(self, endpoint: Endpoint) -> Endpoint:
        """Starlette decorator: 401 (or a redirect to the login page) unless authenticated."""
        return self._guarded(self.user_id)(endpoint)

    def role_required(self, *roles: str) -> Callable[[Endpoint], Endpoint]:
        """Starlette decorator: 403 unless the principal's role is one of ``roles``."""
        allowed = frozenset(roles)
        return self._guarded(lambda session: self._typed(check_role(session, allowed)))

    def recent_auth_required(self, max_age: float) -> Callable[[Endpoint], Endpoint]:
        """Starlette decorator: 403 unless the user authenticated within ``max_age`` seconds."""
        return self._guarded(
            lambda session: self._typed(check_recent_auth(session, max_age, self.clock))
        )
