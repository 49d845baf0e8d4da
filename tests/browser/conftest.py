"""A real uvicorn server of ``create_app`` and Debian's headless Chromium, for the browser tests.

The server runs in a background thread on a free loopback port over a temporary SQLite
database, with the test accounts created before it starts. Chromium is Debian's
(``/usr/bin/chromium``; Playwright's own browser download cannot work here): when it is missing
or will not start, the tests skip locally and fail under ``CI=true`` (see ``require_service``).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from sessionauth.auth.passwords import PasswordHasher
from sessionauth.server.app import create_app
from sessionauth.server.settings import Settings
from tests.support.backends import user_store
from tests.support.services import LOOPBACK, ServiceUnavailable, free_port, require_service

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PASSWORD = "correct horse battery"
USER = "alice@example.com"
ADMIN = "root@example.com"


async def _create_accounts(
    database_url: str, hasher: PasswordHasher, accounts: dict[str, str]
) -> None:
    users = user_store(database_url)
    try:
        for email, role in accounts.items():
            await users.create(email, await hasher.hash(PASSWORD), role=role)
    finally:
        await users.aclose()


def create_accounts(database_url: str, hasher: PasswordHasher, accounts: dict[str, str]) -> None:
    """Create ``{email: role}`` accounts with :data:`PASSWORD` directly in the database."""
    # A worker thread: pytest-asyncio may be running an event loop in this one.
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(asyncio.run, _create_accounts(database_url, hasher, accounts)).result()


@dataclass(frozen=True)
class LiveServer:
    """The running server: its base URL, and the accounts made before it started."""

    url: str
    database_url: str
    hasher: PasswordHasher
    password: str = PASSWORD
    user: str = USER
    admin: str = ADMIN

    def new_user(self, name: str, role: str = "user") -> str:
        """Create an account of its own for one test (same password); return its email."""
        email = f"{name}.{uuid.uuid4().hex[:4]}@example.com"
        create_accounts(self.database_url, self.hasher, {email: role})
        return email


@pytest.fixture(scope="module")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """``create_app`` served by uvicorn on a free loopback port, in a background thread."""
    directory = tmp_path_factory.mktemp("browser")
    database_url = f"sqlite:///{directory / 'sessionauth.db'}"
    hasher = PasswordHasher.for_tests()
    create_accounts(database_url, hasher, {USER: "user", ADMIN: "admin"})
    settings = Settings(
        env="development",
        database_url=database_url,
        data_dir=directory / "data",
        secret="browser-tests-" + "s" * 40,
    )
    with serving_in_thread(create_app(settings, hasher=hasher), name="uvicorn") as base:
        yield LiveServer(base, database_url, hasher)


@contextlib.contextmanager
def serving_in_thread(app: Any, *, name: str, port: int | None = None) -> Iterator[str]:
    """Serve ``app`` with uvicorn (lifespan on) on a loopback port in a thread; yield its URL.

    The in-process server lets a browser test reach the same objects the test prepared (its
    fast hasher, its accounts); it stops when the block ends. ``port`` (default: a free one)
    lets an app be told its own URL before it starts (the links it mails).
    """
    port = free_port() if port is None else port
    config = uvicorn.Config(app, host=LOOPBACK, port=port, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name=name, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            pytest.fail("the uvicorn server did not start")
        time.sleep(0.02)  # a poll with a hard deadline: uvicorn has no started event
    try:
        yield f"http://{LOOPBACK}:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


class _AttackerPages(BaseHTTPRequestHandler):
    """Serves ``/<name>``: a page that auto-submits a form to the victim server."""

    pages: dict[str, str] = {}  # noqa: RUF012 - set per server, see attacker_site()

    def do_GET(self) -> None:
        body = self.pages.get(self.path.lstrip("/"))
        if body is None:
            self.send_error(404)
            return
        data = body.encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        """Keep the test output quiet."""


@contextlib.contextmanager
def attacker_site(host: str, pages: dict[str, str]) -> Iterator[str]:
    """Serve ``pages`` from another loopback origin (``host`` on a free port); yield its URL."""
    handler = type("Attacker", (_AttackerPages,), {"pages": pages})
    httpd = ThreadingHTTPServer((host, 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, name="attacker", daemon=True)
    thread.start()
    try:
        yield f"http://{host}:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


def _launch(playwright: Any) -> Any:
    if not Path(CHROMIUM).exists():
        raise ServiceUnavailable(f"{CHROMIUM} is not installed (apt-get install chromium)")
    from playwright.sync_api import Error

    try:
        return playwright.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True
        )
    except Error as exc:
        raise ServiceUnavailable(f"Chromium did not start: {exc}") from exc


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Debian's headless Chromium, driven by Playwright's sync API."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = require_service("Chromium", lambda: _launch(playwright))
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def contexts(browser: Any) -> Iterator[list[Any]]:
    """Browser contexts (separate cookie jars, as separate browsers) made by the test, closed after.

    A test appends each ``BrowserContext`` it makes (``open_page`` in ``test_pages`` does).
    """
    made: list[Any] = []
    yield made
    for context in made:
        context.close()
