"""The reference server's OpenAPI schema declares the session cookie and the CSRF header."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

from tests.support.apps import running_app

COOKIE = {"sessionCookie": []}
COOKIE_AND_CSRF = {"sessionCookie": [], "csrfToken": []}
# Every operation that needs a signed-in session, and what it requires.
SESSION_OPERATIONS = {
    ("get", "/dashboard"): COOKIE,
    ("get", "/admin"): COOKIE,
    ("get", "/me"): COOKIE,
    ("get", "/sessions"): COOKIE,
    ("get", "/users"): COOKIE,
    ("post", "/logout"): COOKIE_AND_CSRF,
    ("post", "/api/transfer"): COOKIE_AND_CSRF,
    ("delete", "/sessions/{handle}"): COOKIE_AND_CSRF,
    ("post", "/sessions/revoke-others"): COOKIE_AND_CSRF,
    ("post", "/password"): COOKIE_AND_CSRF,
    ("post", "/users"): COOKIE_AND_CSRF,
    ("delete", "/users/{user_id}"): COOKIE_AND_CSRF,
    ("patch", "/users/{user_id}"): COOKIE_AND_CSRF,
    ("post", "/users/{user_id}/revoke-sessions"): COOKIE_AND_CSRF,
    ("post", "/verify/request"): COOKIE_AND_CSRF,
    ("post", "/email"): COOKIE_AND_CSRF,
    ("post", "/mfa/totp/setup"): COOKIE_AND_CSRF,
    ("post", "/mfa/totp/confirm"): COOKIE_AND_CSRF,
    ("post", "/mfa/totp/disable"): COOKIE_AND_CSRF,
    ("post", "/mfa/recovery-codes"): COOKIE_AND_CSRF,
    ("get", "/passkeys"): COOKIE,
    ("post", "/passkeys/register/options"): COOKIE_AND_CSRF,
    ("post", "/passkeys/register"): COOKIE_AND_CSRF,
    ("patch", "/passkeys/{credential_id}"): COOKIE_AND_CSRF,
    ("delete", "/passkeys/{credential_id}"): COOKIE_AND_CSRF,
}


async def served_schema(tmp_path: Path, **overrides: Any) -> dict[str, Any]:
    async with running_app(tmp_path, **overrides) as app:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            schema: dict[str, Any] = (await client.get("/openapi.json")).json()
    return schema


async def test_the_schema_declares_the_cookie_and_the_csrf_header(tmp_path: Path) -> None:
    """Two apiKey schemes: the session cookie by the configured name, X-CSRF-Token header."""
    schema = await served_schema(tmp_path, cookie_name="app_session")
    schemes = schema["components"]["securitySchemes"]
    assert {key: schemes["sessionCookie"][key] for key in ("type", "in", "name")} == {
        "type": "apiKey",
        "in": "cookie",
        "name": "app_session",
    }
    assert {key: schemes["csrfToken"][key] for key in ("type", "in", "name")} == {
        "type": "apiKey",
        "in": "header",
        "name": "X-CSRF-Token",
    }


async def test_the_cookie_scheme_names_the_default_cookie(tmp_path: Path) -> None:
    """Without a configured name, the scheme names the cookie the middleware really sets."""
    schema = await served_schema(tmp_path)
    async with running_app(tmp_path) as app:
        expected = app.state.settings.cookie().name
    assert schema["components"]["securitySchemes"]["sessionCookie"]["name"] == expected


async def test_exactly_the_routes_that_need_a_session_require_the_cookie(tmp_path: Path) -> None:
    """Guarded routes list the cookie (unsafe ones the CSRF token too); open routes nothing."""
    schema = await served_schema(tmp_path)
    declared = {
        (method, path): operation["security"]
        for path, operations in schema["paths"].items()
        for method, operation in operations.items()
        if "security" in operation
    }
    assert declared == {key: [value] for key, value in SESSION_OPERATIONS.items()}
    for open_route in (
        "/login",
        "/healthz",
        "/readyz",
        "/csrf-token",
        "/metrics",
        "/signup",
        "/verify",
        "/password/forgot",
        "/password/reset",
        "/login/mfa",
        "/passkeys/login/options",
        "/passkeys/login",
    ):
        for operation in schema["paths"][open_route].values():
            assert "security" not in operation, open_route
    assert "security" not in schema  # no global requirement that would cover /login


async def test_the_declared_requirement_matches_what_anonymous_reads_get(tmp_path: Path) -> None:
    """A GET without path parameters answers anonymous 401 exactly when it lists the cookie."""
    async with running_app(tmp_path) as app:
        schema = app.openapi()
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            for path, operations in schema["paths"].items():
                if "get" not in operations or "{" in path or path == "/metrics":
                    continue
                response = await client.get(path, headers={"accept": "application/json"})
                needs_session = "security" in operations["get"]
                assert (response.status_code == 401) == needs_session, path
                if needs_session:
                    assert "401" in operations["get"]["responses"], path
