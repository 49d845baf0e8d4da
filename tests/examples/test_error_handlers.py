"""The library's exception handlers: every error it raises into a route, as ``{"error": ...}``.

The docs promise that a user source or store that cannot answer gives a 503 with
``Retry-After`` (the middleware's outage answer), and that routes need no ``try``/``except``
for failed logins. Both the module-level handlers and ``Guards.exception_handlers``, on
FastAPI and on Starlette.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from sessionauth import InvalidCredentials, StoreFull, StoreUnavailable, TooManyAttempts
from sessionauth.auth import Guards
from sessionauth.auth.guards import refusal_response
from sessionauth.errors import (
    EmailNotVerified,
    FactorConflict,
    InvalidCode,
    PasskeyRejected,
    SecondFactorRequired,
)
from sessionauth.fastapi import exception_handlers as fastapi_handlers
from sessionauth.starlette import exception_handlers as starlette_handlers

Handlers = dict[Any, Callable[[Request, Any], Coroutine[Any, Any, Response]]]
UNAVAILABLE = {"error": "Service temporarily unavailable, please retry"}


class DownUsers:
    """A user source whose database cannot answer, as the docs tell sources to report it."""

    async def get(self, user_id: int) -> None:
        raise StoreUnavailable("the accounts database cannot answer", retry_after=7)


async def _user(request: Request) -> Response:
    await DownUsers().get(1)
    raise AssertionError("unreachable")  # pragma: no cover


async def _full(request: Request) -> Response:
    raise StoreFull("out of memory")


async def _wrong_password(request: Request) -> Response:
    raise InvalidCredentials("wrong password")


async def _throttled(request: Request) -> Response:
    raise TooManyAttempts(42)


async def _bug(request: Request) -> Response:
    raise ValueError("a bug of the application")


def _raising(exc: Exception) -> Callable[[Request], Coroutine[Any, Any, Response]]:
    async def endpoint(request: Request) -> Response:
        raise exc

    return endpoint


# The second step's refusals: what each raises, and the answer the handlers must give.
FACTOR_ERRORS: dict[str, tuple[Exception, int, dict[str, Any]]] = {
    "/unverified": (EmailNotVerified("not yet"), 403, {"error": "Email not verified"}),
    "/second-factor": (
        SecondFactorRequired(["totp", "recovery"]),
        401,
        {"error": "Second factor required", "mfaRequired": True, "methods": ["totp", "recovery"]},
    ),
    "/code": (InvalidCode("Invalid code"), 401, {"error": "Invalid code"}),
    "/conflict": (
        FactorConflict("TOTP is enabled already"),
        409,
        {"error": "TOTP is enabled already"},
    ),
    "/passkey": (PasskeyRejected("the origin is wrong"), 400, {"error": "Invalid passkey"}),
}
ROUTES = {
    "/user": _user,
    "/full": _full,
    "/login": _wrong_password,
    "/throttled": _throttled,
    **{path: _raising(exc) for path, (exc, _, _) in FACTOR_ERRORS.items()},
}


def _fastapi(handlers: Handlers) -> FastAPI:
    app = FastAPI(exception_handlers=handlers)
    for path, endpoint in ROUTES.items():
        app.add_api_route(path, endpoint)
    app.add_api_route("/bug", _bug)
    return app


def _starlette(handlers: Handlers) -> Starlette:
    routes = [Route(path, endpoint) for path, endpoint in ROUTES.items()]
    return Starlette(routes=[*routes, Route("/bug", _bug)], exception_handlers=handlers)


APPS = {
    "fastapi-module": lambda: _fastapi(fastapi_handlers),
    "fastapi-guards": lambda: _fastapi(Guards(user_id_type=int).exception_handlers),
    "starlette-module": lambda: _starlette(starlette_handlers),
    "starlette-guards": lambda: _starlette(Guards(user_id_type=str).exception_handlers),
}


@pytest.fixture(params=APPS)
async def client(request: pytest.FixtureRequest) -> Any:
    transport = httpx.ASGITransport(app=APPS[request.param](), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield http


async def test_a_user_source_that_cannot_answer_is_a_503(client: httpx.AsyncClient) -> None:
    """StoreUnavailable from the user source: the middleware's 503, its Retry-After, no cache."""
    response = await client.get("/user")
    assert (response.status_code, response.json()) == (503, UNAVAILABLE)
    assert response.headers["retry-after"] == "7"
    assert response.headers["cache-control"] == "no-store"


async def test_a_full_store_is_a_503_too(client: httpx.AsyncClient) -> None:
    """StoreFull is a StoreUnavailable: the handlers cover the subclasses."""
    response = await client.get("/full")
    assert (response.status_code, response.json()) == (503, UNAVAILABLE)
    assert response.headers["retry-after"] == "1"


async def test_failed_logins_need_no_try_except(client: httpx.AsyncClient) -> None:
    """InvalidCredentials is 401, TooManyAttempts 429 with its Retry-After."""
    wrong = await client.get("/login")
    assert (wrong.status_code, wrong.json()) == (401, {"error": "Invalid credentials"})
    throttled = await client.get("/throttled")
    assert (throttled.status_code, throttled.json()) == (429, {"error": "Too many attempts"})
    assert throttled.headers["retry-after"] == "42"


@pytest.mark.parametrize("path", FACTOR_ERRORS)
async def test_second_factor_refusals_are_answered_not_500(
    client: httpx.AsyncClient, path: str
) -> None:
    """A wrong code, a missing second step, a refused passkey: their status and fixed body."""
    _, status, body = FACTOR_ERRORS[path]
    answer = await client.get(path)
    assert (answer.status_code, answer.json()) == (status, body)


async def test_other_exceptions_stay_500(client: httpx.AsyncClient) -> None:
    """The handlers answer only the library's errors; an application's bug is not hidden."""
    assert (await client.get("/bug")).status_code == 500


def test_refusal_response_raises_what_it_does_not_answer() -> None:
    """Called directly on another exception, it re-raises it rather than inventing an answer."""
    request = Request({"type": "http", "method": "GET", "path": "/", "headers": []})
    with pytest.raises(ValueError, match="a bug"):
        refusal_response(request, ValueError("a bug"))
