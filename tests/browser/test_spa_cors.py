"""examples/spa_cors in Chromium: a front end on one origin, the reference API on another."""

from __future__ import annotations

import contextlib
import functools
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect

from sessionauth.auth.passwords import PasswordHasher
from sessionauth.server.app import create_app
from sessionauth.server.settings import Settings
from tests.browser.conftest import PASSWORD, USER, create_accounts, serving_in_thread
from tests.support.examples import ROOT
from tests.support.services import LOOPBACK

pytestmark = pytest.mark.browser


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """Keep the test output quiet."""


@dataclass(frozen=True)
class Origins:
    """Where the front end is served, and where the API answers."""

    front: str
    api: str


@contextlib.contextmanager
def static_site(directory: Path) -> Iterator[str]:
    """Serve ``directory`` on a free loopback port; yield its origin."""
    handler = functools.partial(_Quiet, directory=str(directory))
    httpd = ThreadingHTTPServer((LOOPBACK, 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, name="spa", daemon=True)
    thread.start()
    try:
        yield f"http://{LOOPBACK}:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


@pytest.fixture(scope="module")
def origins(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Origins]:
    """The example's files on one origin, the reference server trusting it on another."""
    directory = tmp_path_factory.mktemp("spa")
    database_url = f"sqlite:///{directory / 'sessionauth.db'}"
    hasher = PasswordHasher.for_tests()
    create_accounts(database_url, hasher, {USER: "user"})
    with static_site(ROOT / "examples" / "spa_cors") as front:
        settings = Settings(
            env="development",
            database_url=database_url,
            data_dir=directory / "data",
            secret="spa-example-" + "s" * 40,
            allowed_origins=front,
        )
        app = create_app(settings, hasher=hasher)
        with serving_in_thread(app, name="uvicorn-spa") as api:
            yield Origins(front=front, api=api)


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context()
    try:
        yield context.new_page()
    finally:
        context.close()


def test_spa_signs_in_reads_me_and_signs_out(page: Page, origins: Origins) -> None:
    """The page on another origin logs in (CSRF + CORS), shows /me, logs out; a reload agrees."""
    api_calls: list[str] = []
    page.on("request", lambda request: api_calls.append(f"{request.method} {request.url}"))
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(f"{origins.front}/index.html?api={origins.api}")
    expect(page.locator("#login")).to_be_visible()
    page.fill("#email", USER)
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    expect(page.locator("#who")).to_have_text(USER)
    expect(page.locator("#role")).to_have_text("user")
    # The session survives a reload: the cookie went to the API's origin.
    page.reload()
    expect(page.locator("#who")).to_have_text(USER)
    page.click("#logout")
    expect(page.locator("#login")).to_be_visible()
    expect(page.locator("#error")).to_have_text("")
    page.reload()
    expect(page.locator("#login")).to_be_visible()
    assert errors == []
    api = origins.api
    assert f"GET {api}/csrf-token" in api_calls
    assert f"POST {api}/login" in api_calls
    assert f"POST {api}/logout" in api_calls


def test_spa_wrong_password_shows_the_api_error(page: Page, origins: Origins) -> None:
    """A wrong password shows the API's own message and leaves the visitor signed out."""
    page.goto(f"{origins.front}/index.html?api={origins.api}")
    page.fill("#email", USER)
    page.fill("#password", "not the password")
    page.click("button[type=submit]")
    expect(page.locator("#error")).to_have_text("Invalid credentials")
    expect(page.locator("#account")).to_be_hidden()


def test_untrusted_origin_cannot_sign_in(page: Page, origins: Origins, tmp_path: Path) -> None:
    """The same page from an origin not in SESSIONAUTH_ALLOWED_ORIGINS cannot use the API."""
    (tmp_path / "index.html").write_bytes((ROOT / "examples/spa_cors/index.html").read_bytes())
    (tmp_path / "app.js").write_bytes((ROOT / "examples/spa_cors/app.js").read_bytes())
    with static_site(tmp_path) as stranger:
        page.goto(f"{stranger}/index.html?api={origins.api}")
        page.fill("#email", USER)
        page.fill("#password", PASSWORD)
        page.click("button[type=submit]")
        expect(page.locator("#error")).not_to_have_text("")
        expect(page.locator("#account")).to_be_hidden()
