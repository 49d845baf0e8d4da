"""The tutorial's read routes as plain Starlette endpoints: the requests a session serves most.

``GET /dashboard``, ``GET /admin`` and ``GET /csrf-token`` answer from the session alone. Served
through FastAPI's router they spent about 65 µs per request on dependency solving, response
validation and serialisation: more than the session layer and the Redis round trip together
(``benchmarks/README.md``). As Starlette routes placed ahead of the API router they answer
the same bodies and errors (guards raise, the app's exception handlers answer), and
:func:`document` adds them to the OpenAPI schema from the same models, so the schema stays
complete.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from sessionauth.auth.guards import check_auth, check_role, session_of
from sessionauth.csrf import csrf_token
from sessionauth.server import schemas as s

__all__ = ["ROUTES", "document"]

_ADMINS = frozenset({"admin"})
_ADMIN_AREA = b'{"message":"Admin area"}'


async def dashboard(request: Request) -> Response:
    """The signed-in user's id."""
    return JSONResponse({"userId": int(check_auth(session_of(request)))})


async def admin(request: Request) -> Response:
    """Administrators only."""
    check_role(session_of(request), _ADMINS)
    return Response(_ADMIN_AREA, media_type="application/json")


async def get_csrf_token(request: Request) -> Response:
    """A freshly masked CSRF token for this session (send it as ``X-CSRF-Token``)."""
    token = csrf_token(session_of(request), request.app.state.keyring)
    return JSONResponse({"csrfToken": token})


ROUTES = [
    Route("/dashboard", dashboard, methods=["GET"]),
    Route("/admin", admin, methods=["GET"]),
    Route("/csrf-token", get_csrf_token, methods=["GET"]),
]
"""Insert these ahead of the app's other routes."""

# path -> (operation id, summary, success model, error statuses)
_DOCS: dict[str, tuple[str, str, type[BaseModel], tuple[int, ...]]] = {
    "/dashboard": ("dashboard", "The signed-in user's id.", s.Dashboard, (401,)),
    "/admin": ("admin", "Administrators only.", s.AdminArea, (401, 403)),
    "/csrf-token": (
        "get_csrf_token",
        "A freshly masked CSRF token for this session (send it as X-CSRF-Token).",
        s.CSRFToken,
        (),
    ),
}


def _ref(model: type[BaseModel], schema: dict[str, Any]) -> dict[str, str]:
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    components.setdefault(
        model.__name__, model.model_json_schema(ref_template="#/components/schemas/{model}")
    )
    return {"$ref": f"#/components/schemas/{model.__name__}"}


def document(schema: dict[str, Any]) -> dict[str, Any]:
    """Add the hot routes to an OpenAPI schema (in place) and return it."""
    paths = schema.setdefault("paths", {})
    for path, (operation_id, summary, model, errors) in _DOCS.items():
        responses: dict[str, Any] = {
            "200": {
                "description": "Successful Response",
                "content": {"application/json": {"schema": _ref(model, schema)}},
            }
        }
        for status in errors:
            responses[str(status)] = {
                "description": "Error",
                "content": {"application/json": {"schema": _ref(s.ErrorBody, schema)}},
            }
        paths[path] = {
            "get": {"operationId": operation_id, "summary": summary, "responses": responses}
        }
    return schema
