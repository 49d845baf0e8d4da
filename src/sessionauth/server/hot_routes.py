"""The tutorial's read routes, answered inside the session layer: the requests served most.

``GET /dashboard``, ``GET /admin`` and ``GET /csrf-token`` answer from the session alone. Served
through FastAPI's router they spent about 65 µs per request on dependency solving, response
validation and serialisation: more than the session layer and the Redis round trip together
(``benchmarks/README.md``). :class:`HotRouteMiddleware`, installed right inside
``SessionMiddleware``, answers their GET and HEAD requests itself, so they also skip the layers
that have nothing to do for them: the CSRF check (a safe method), the body limit (no body is
read), Starlette's exception layer and the router. A guard's refusal is answered with
:func:`~sessionauth.auth.guards.error_response`, as the app's handler for it does; anything else
raised reaches Starlette's error layer, as before. Their bodies are encoded by msgspec and sent
as the two ASGI messages a ``Response`` would send, without building one: Starlette's
``JSONResponse`` alone cost a fifth of the server's time per request in process (its
``json.dumps`` builds an encoder per call). :data:`ROUTES` keeps them in the router too,
for its answers to other methods (405), and :func:`document` adds them to the OpenAPI schema
from the same models, so the schema stays complete.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import msgspec
from pydantic import BaseModel
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from sessionauth.auth.guards import (
    check_auth,
    check_role,
    error_response,
    session_in_scope,
)
from sessionauth.csrf import csrf_token
from sessionauth.errors import NotAuthenticated, PermissionDenied
from sessionauth.server import schemas as s
from sessionauth.session import Session

__all__ = ["ROUTES", "HotRouteMiddleware", "document"]

_ADMINS = frozenset({"admin"})
_ADMIN_AREA = b'{"message":"Admin area"}'
_JSON = "application/json"
_JSON_TYPE = (b"content-type", _JSON.encode())
# Starlette's JSONResponse calls json.dumps with non-default options, which builds an encoder
# per call: 3.6 us a response, more than the session layer's checks. msgspec encodes the same
# compact UTF-8 JSON in 0.14 us.
_encode = msgspec.json.encode


def _dashboard(session: Session, scope: Scope) -> bytes:
    """The signed-in user's id."""
    return _encode({"userId": int(check_auth(session))})


def _admin(session: Session, scope: Scope) -> bytes:
    """Administrators only."""
    check_role(session, _ADMINS)
    return _ADMIN_AREA


def _csrf_token(session: Session, scope: Scope) -> bytes:
    """A freshly masked CSRF token for this session (send it as ``X-CSRF-Token``)."""
    return _encode({"csrfToken": csrf_token(session, scope["app"].state.keyring)})


# Each answer's body, from the session (and the app, through the scope), or a guard's refusal.
_BODIES: dict[str, Callable[[Session, Scope], bytes]] = {
    "/dashboard": _dashboard,
    "/admin": _admin,
    "/csrf-token": _csrf_token,
}
# What a Starlette route for GET serves.
_READS = frozenset({"GET", "HEAD"})


def _endpoint(body: Callable[[Session, Scope], bytes]) -> Callable[[Request], Awaitable[Response]]:
    """The router's endpoint for a hot route: the same body, as a Starlette response."""

    async def endpoint(request: Request) -> Response:
        return Response(body(session_in_scope(request.scope), request.scope), media_type=_JSON)

    return endpoint


class HotRouteMiddleware:
    """Answers GET and HEAD requests for the hot routes; passes everything else to ``app``.

    Install it right inside ``SessionMiddleware`` (it reads ``scope["session"]``) and outside
    the CSRF middleware, which checks unsafe methods only.

    Args:
        app: The rest of the application.
    """

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one ASGI connection: a hot route's read here, any other request in ``app``."""
        # Under a root path the router, which strips it, finds them.
        if scope["type"] == "http" and scope["method"] in _READS and not scope.get("root_path"):
            body = _BODIES.get(scope["path"])
            if body is not None:
                try:
                    content = body(session_in_scope(scope), scope)
                except (NotAuthenticated, PermissionDenied) as exc:
                    await error_response(Request(scope, receive), exc)(scope, receive, send)
                    return
                # What Response(content, media_type=...) sends, without building one.
                headers = [(b"content-length", b"%d" % len(content)), _JSON_TYPE]
                await send({"type": "http.response.start", "status": 200, "headers": headers})
                await send({"type": "http.response.body", "body": content})
                return
        await self.app(scope, receive, send)


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


ROUTES = [
    Route(path, _endpoint(body), methods=["GET"], name=_DOCS[path][0])
    for path, body in _BODIES.items()
]
"""The same endpoints as router routes: add these to the app's router."""


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
