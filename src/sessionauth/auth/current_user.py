"""The application's own user object for the request: ``Depends(current_user)``.

:class:`CurrentUser` loads the signed-in user from the application's users (any object with an
async ``get(user_id)``, such as a :class:`~sessionauth.auth.user_source.UserSource`) and returns
the application's object, typed::

    guards = Guards(user_id_type=int)
    current_user = CurrentUser(MyUsers(), guards)

    @app.get("/me")
    async def me(user: Annotated[MyUser, Depends(current_user)]) -> ...

In Starlette, ``user = await current_user(request)``; afterwards ``request.user`` is that
object too (unless another middleware set ``request.user`` already).

The object's ``role`` grants nothing: rights come from the session's principal, which the
guards check (a route that needs a role takes ``Depends(guards.require_role(...))``).
"""

from __future__ import annotations

from typing import Generic, Protocol, TypeVar

from starlette.requests import Request

from sessionauth.auth.guards import AUTH_REQUIRED, session_of
from sessionauth.auth.user_guards import Guards
from sessionauth.auth.user_ids import IdT
from sessionauth.errors import NotAuthenticated

__all__ = ["CurrentUser", "HasDisabled", "UserLookup"]

# Where loaded users are kept for the rest of the request (one users read per request), keyed
# by the CurrentUser instance: two instances over different sources must not share a result.
_SCOPE_KEY = "sessionauth.users"


class HasDisabled(Protocol):
    """A user object: all :class:`CurrentUser` reads of it is whether it is disabled."""

    @property
    def disabled(self) -> bool:
        """A disabled user has no session."""
        ...


UserT = TypeVar("UserT", bound=HasDisabled)
UserT_co = TypeVar("UserT_co", bound=HasDisabled, covariant=True)
IdT_contra = TypeVar("IdT_contra", contravariant=True)


class UserLookup(Protocol[IdT_contra, UserT_co]):
    """Finds a user by id (every :class:`~sessionauth.auth.user_source.UserSource` does)."""

    async def get(self, user_id: IdT_contra) -> UserT_co | None:
        """Return the user with this id, or ``None``."""
        ...


class CurrentUser(Generic[IdT, UserT]):
    """A dependency (any callable of the request) returning the signed-in application user.

    Args:
        users: Where the application's users are found by id.
        guards: Checks the session (a user, a principal that is not disabled) and gives the
            id as the users' id type.

    Attributes:
        users: Where users are found.
        guards: The session check.
    """

    def __init__(self, users: UserLookup[IdT, UserT], guards: Guards[IdT]):
        self.users: UserLookup[IdT, UserT] = users
        self.guards: Guards[IdT] = guards

    async def __call__(self, request: Request) -> UserT:
        """Return the signed-in user; read once per request.

        Raises:
            NotAuthenticated: If the session is anonymous or disabled, or its user is gone
                or disabled (such a session, which outlived its account, ends on the spot).
        """
        loaded: dict[object, object] = request.scope.setdefault(_SCOPE_KEY, {})
        cached = loaded.get(self)
        if cached is not None:
            user: UserT = cached  # type: ignore[assignment]  # only this instance stored it
            return user
        session = session_of(request)
        found = await self.users.get(self.guards.user_id(session))
        if found is None or found.disabled:
            session.destroy()
            raise NotAuthenticated(AUTH_REQUIRED)
        loaded[self] = found
        request.scope.setdefault("user", found)
        return found
