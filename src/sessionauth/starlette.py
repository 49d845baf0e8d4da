"""Starlette adapters: the guards as endpoint decorators.

::

    from starlette.routing import Route
    from sessionauth.starlette import login_required, role_required

    @login_required
    async def dashboard(request: Request) -> Response: ...

    @role_required("admin")
    async def admin(request: Request) -> Response: ...

    routes = [Route("/dashboard", dashboard), Route("/admin", admin)]

A failed check answers at once (401 JSON, or a login redirect for a browser; 403); routes
that raise the guards' exceptions themselves need :data:`exception_handlers` on the app. They
are thin layers over the framework-free checks of :mod:`sessionauth.auth.guards`.
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
