"""FastAPI adapters: the guards as dependencies, and the handlers that turn them into answers.

::

    from fastapi import Depends, FastAPI
    from sessionauth.fastapi import exception_handlers, require_auth, require_role

    app = FastAPI(exception_handlers=exception_handlers)

    @app.get("/dashboard")
    async def dashboard(user_id: str = Depends(require_auth)) -> dict[str, str]:
        return {"userId": user_id}

They are thin layers over the framework-free checks of :mod:`sessionauth.auth.guards`; this
module imports nothing from FastAPI itself.
"""

from sessionauth.auth.guards import (
    error_response,
    exception_handlers,
    require_auth,
    require_recent_auth,
    require_role,
    session_of,
)

__all__ = [
    "error_response",
    "exception_handlers",
    "require_auth",
    "require_recent_auth",
    "require_role",
    "session_of",
]
