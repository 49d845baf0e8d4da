"""Instructions per authenticated request through the reference server, counted by callgrind.

The server's counterpart of ``hot_path.py`` (same method, same 10 % budget): the real
``create_app`` (development settings, sessions in ``memory://``, users in SQLite), inside its
lifespan, signs the bench contract's user in through ``POST /login`` once, then serves
``GET /dashboard`` with that cookie straight through ASGI calls. Everything the server puts
around the session on the bench contract's request is counted: its middleware, Starlette's
error layers, the router and the hot route. The store is the memory store, as in
``hot_path.py``, so the difference between the two figures is the server's own cost.

``python benchmarks/server_hot_path.py`` prints the measurement; ``--check`` compares it with
``benchmarks/server_hot_path.json`` and exits 1 if it grew by more than 10 %; ``--record
REASON`` writes a new figure. ``tests/integration/test_hot_path_budget.py`` runs ``--check``.
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path
from typing import Any

from hot_path import asgi_scope, run_cli

BUDGET_FILE = Path(__file__).with_name("server_hot_path.json")
EMAIL = "bench@example.com"
PASSWORD = "correct-horse-battery-staple-bench-password-42"


async def _serve(requests: int) -> None:
    """Sign in once, then send ``requests`` authenticated GETs into the server's ASGI app."""
    from sessionauth.auth.passwords import PasswordHasher
    from sessionauth.server.app import create_app
    from sessionauth.server.settings import Settings

    # The development server announces its bootstrap administrator: not wanted here.
    logging.disable(logging.WARNING)
    with tempfile.TemporaryDirectory() as directory:
        settings = Settings(
            env="development",
            database_url=f"sqlite:///{directory}/users.db",
            store_url="memory://",
            data_dir=Path(directory) / "data",
            secret="hot-path-" + "k" * 40,
            cookie_name="sessionId",
            absolute_timeout=86400,
        )
        hasher = PasswordHasher.for_tests()
        app = create_app(settings, hasher=hasher)
        async with app.router.lifespan_context(app):
            auth = app.state.authenticator
            await auth.users.create(EMAIL, await hasher.hash(PASSWORD), role="admin")
            await _requests(app, requests)


async def _requests(app: Any, requests: int) -> None:
    sent: list[dict[str, Any]] = []
    body = b'{"email":"%s","password":"%s"}' % (EMAIL.encode(), PASSWORD.encode())

    def receive_body(body: bytes) -> Any:
        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": body, "more_body": False}

        return receive

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    login = [
        (b"host", b"bench"),
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
    ]
    await app(asgi_scope("POST", "/login", login), receive_body(body), send)
    if sent[0]["status"] != 200:
        raise SystemExit(f"POST /login answered {sent[0]['status']}: {sent[1:]}")
    set_cookie = next(v for k, v in sent[0]["headers"] if k == b"set-cookie")
    cookie = set_cookie.split(b";", 1)[0]
    request = asgi_scope("GET", "/dashboard", [(b"host", b"bench"), (b"cookie", cookie)])
    empty = receive_body(b"")
    for _ in range(requests):
        sent.clear()
        await app(dict(request), empty, send)
        if sent[0]["status"] != 200:
            raise SystemExit(f"GET /dashboard answered {sent[0]['status']}, not 200")


if __name__ == "__main__":
    run_cli(
        __doc__,
        _serve,
        script=__file__,
        budget_file=BUDGET_FILE,
        what="authenticated request through the server",
    )
