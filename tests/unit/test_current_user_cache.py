"""CurrentUser reads its source once per request, and two instances never share that read."""

from __future__ import annotations

from dataclasses import dataclass

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from sessionauth.auth import CurrentUser, Guards
from sessionauth.middleware import SessionMiddleware
from sessionauth.stores.memory import MemoryStore
from sessionauth.tokens import Keyring


@dataclass(frozen=True)
class Row:
    """A user of one source."""

    source: str
    disabled: bool = False


class Source:
    """Users by text id, counting reads."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.reads = 0

    async def get(self, user_id: str) -> Row | None:
        self.reads += 1
        return Row(self.name) if user_id == "u1" else None


async def test_two_current_users_over_different_sources_each_return_their_own() -> None:
    """Customers then staff in one request: each its own source's object, each read once."""
    guards = Guards(user_id_type=str)
    customers, staff = Source("customers"), Source("staff")
    customer, employee = CurrentUser(customers, guards), CurrentUser(staff, guards)

    async def login(request: Request) -> Response:
        request.scope["session"].set_user("u1")
        return JSONResponse({})

    async def both(request: Request) -> Response:
        first, second = await customer(request), await employee(request)
        again = await customer(request), await employee(request)
        assert again == (first, second)
        return JSONResponse([first.source, second.source])

    app = Starlette(routes=[Route("/login", login, methods=["POST"]), Route("/both", both)])
    wrapped = SessionMiddleware(app, store=MemoryStore(), keyring=Keyring(["c" * 40]))
    transport = httpx.ASGITransport(app=wrapped)
    async with httpx.AsyncClient(transport=transport, base_url="https://t") as client:
        await client.post("/login")
        response = await client.get("/both")
    assert response.json() == ["customers", "staff"]
    assert (customers.reads, staff.reads) == (1, 1)
