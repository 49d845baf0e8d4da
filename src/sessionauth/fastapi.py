"""FastAPI adapters: the guards as dependencies that declare the session cookie in OpenAPI.

::

    from fastapi import Depends, FastAPI
    from sessionauth.fastapi import exception_handlers, require_auth, require_role

    app = FastAPI(exception_handlers=exception_handlers)

    @app.get("/dashboard")
    async def dashboard(user_id: str = Depends(require_auth)) -> dict[str, str]:
        return {"userId": user_id}

``exception_handlers`` answers, as ``{"error": ...}``, the guards' 401 (or a redirect of a
browser to ``/login``) and 403, ``InvalidCredentials`` (401), ``TooManyAttempts`` (429) and
``StoreUnavailable`` (503), both with ``Retry-After``, so routes need no ``try``/``except``.

Each dependency declares the ``sessionCookie`` security scheme (an ``apiKey`` in a cookie), so
``/docs`` shows the lock on the routes that need a session (pass the middleware's
``CookieConfig`` as ``Dependencies(guards, cookie=cookie)`` so it names the right cookie).
For integer ids, another login page or your own user objects, make :class:`Dependencies` from
:class:`~sessionauth.auth.Guards` (``Dependencies(Guards(user_id_type=int))``). The checks are
the framework-free ones of :mod:`sessionauth.auth.guards`; FastAPI is imported only when it
inspects a dependency, so this module imports without it.
"""

from sessionauth.auth.fastapi_dependencies import (
    Dependencies,
    SecuredDependency,
    require_auth,
    require_recent_auth,
    require_role,
)
from sessionauth.auth.guards import error_response, exception_handlers, session_of

__all__ = [
    "Dependencies",
    "SecuredDependency",
    "error_response",
    "exception_handlers",
    "require_auth",
    "require_recent_auth",
    "require_role",
    "session_of",
]
