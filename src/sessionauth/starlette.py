"""Starlette adapters: the guards as endpoint decorators.

::

    from starlette.routing import Route
    from sessionauth.starlette import login_required, role_required

    @login_required
    async def dashboard(request: Request) -> Response: ...

    @role_required("admin")
    async def admin(request: Request) -> Response: ...

    routes = [Route("/dashboard", dashboard), Route("/admin", admin)]

For integer ids or another login page, use the decorators of
:class:`~sessionauth.auth.Guards` (``guards = Guards(user_id_type=int, login_url="/signin")``,
then ``@guards.login_required``); :class:`~sessionauth.auth.CurrentUser` gives the signed-in
user's own object (``await current_user(request)``, then also ``request.user``).

A failed check answers at once (401 JSON, or a login redirect for a browser; 403); routes
that raise themselves (``CurrentUser``, the Authenticator's ``InvalidCredentials``,
``TooManyAttempts``, a ``StoreUnavailable``) need :data:`exception_handlers` on the app: 401,
403, 429 and 503 as ``{"error": ...}``. The decorators are thin layers over the
framework-free checks of :mod:`sessionauth.auth.guards`.
"""

from sessionauth.auth.guards import (
    error_response,
    exception_handlers,
    login_required,
    recent_auth_required,
    role_required,
    session_of,
)

__all__ = [
    "error_response",
    "exception_handlers",
    "login_required",
    "recent_auth_required",
    "role_required",
    "session_of",
]
