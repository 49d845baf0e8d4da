"""The session cookie and the CSRF token in the OpenAPI schema, as security schemes.

The schema declares two ``apiKey`` schemes: the session cookie (under the name the settings
give it) and the ``X-CSRF-Token`` header. Each operation that needs a signed-in session lists
the cookie, and those with an unsafe method list the token with it (both are needed at once);
operations open to anyone (``POST /login``, ``/healthz``, ``/csrf-token``…) list nothing.

Which operations need a session is read from the API's routes: a route needs one when
a guard (:data:`~sessionauth.server.api.UserId`, :data:`~sessionauth.server.api.AdminId`,
:data:`~sessionauth.server.mfa_api.RecentUserId`) is among its dependencies, however deep;
the few routes that check the session in their body are named here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, get_args

from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from starlette.routing import BaseRoute

from sessionauth.server import api, mfa_api

__all__ = ["CSRF_SCHEME", "SESSION_SCHEME", "declare_security", "session_operations"]

SESSION_SCHEME = "sessionCookie"
"""The security scheme of the session cookie."""
CSRF_SCHEME = "csrfToken"
"""The security scheme of the CSRF token header."""

_UNSAFE = frozenset({"post", "put", "patch", "delete"})
# Routes that check the session in their body rather than through a guard dependency: the hot
# routes (plain Starlette, see hot_routes.py) and GET /me (which loads the user).
_CHECKED_INSIDE = frozenset({("get", "/dashboard"), ("get", "/admin"), ("get", "/me")})


def _guards() -> frozenset[Callable[..., Any]]:
    """The dependencies that demand a session: those of the three guards."""
    return frozenset(
        get_args(alias)[1].dependency for alias in (api.UserId, api.AdminId, mfa_api.RecentUserId)
    )


def _needs_guard(dependant: Dependant, guards: frozenset[Callable[..., Any]]) -> bool:
    return any(
        dependency.call in guards or _needs_guard(dependency, guards)
        for dependency in dependant.dependencies
    )


def session_operations(
    routes: Iterable[BaseRoute] = api.router.routes,
) -> frozenset[tuple[str, str]]:
    """Return the ``(method, path)`` pairs, method lower-cased, that need a signed-in session.

    Args:
        routes: The API's routes, as declared (the server includes its router unprefixed).
    """
    guards = _guards()
    found = set(_CHECKED_INSIDE)
    for route in routes:
        if isinstance(route, APIRoute) and _needs_guard(route.dependant, guards):
            found.update((method.lower(), route.path_format) for method in route.methods or ())
    return frozenset(found)


def declare_security(
    schema: dict[str, Any], *, cookie_name: str, operations: frozenset[tuple[str, str]]
) -> dict[str, Any]:
    """Add the two schemes to ``schema`` and the requirements to ``operations`` (in place).

    Args:
        schema: The OpenAPI document.
        cookie_name: The session cookie's name (``__Host-session`` with Secure).
        operations: The ``(method, path)`` pairs that need a session.

    Returns:
        ``schema``.
    """
    schemes = schema.setdefault("components", {}).setdefault("securitySchemes", {})
    schemes[SESSION_SCHEME] = {
        "type": "apiKey",
        "in": "cookie",
        "name": cookie_name,
        "description": "The session cookie that POST /login sets.",
    }
    schemes[CSRF_SCHEME] = {
        "type": "apiKey",
        "in": "header",
        "name": "X-CSRF-Token",
        "description": "A token from GET /csrf-token (or the login answer's csrfToken).",
    }
    for path, methods in schema.get("paths", {}).items():
        for method, operation in methods.items():
            if (method, path) not in operations:
                continue
            requirement: dict[str, list[str]] = {SESSION_SCHEME: []}
            if method in _UNSAFE:
                requirement[CSRF_SCHEME] = []
            operation["security"] = [requirement]
    return schema
