"""Remember-me in Chromium: the box decides whether the session cookie outlives the browser.

Without "Keep me signed in" Chromium holds a session cookie (``expires == -1``: gone when the
browser closes); with it, a cookie expiring a week on. Run on each store the server can use,
since the flag travels in the stored record.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from sessionauth.auth.passwords import PasswordHasher
from sessionauth.server.app import create_app
from sessionauth.server.settings import Settings
from tests.browser.conftest import PASSWORD, USER, create_accounts, serving_in_thread
from tests.browser.test_pages import COOKIE, VIEWPORT

pytestmark = pytest.mark.browser

WEEK = 7 * 24 * 3600
STORES = [
    "memory",
    "sqlite",
    pytest.param("redis", marks=pytest.mark.redis),
    pytest.param("postgres", marks=pytest.mark.postgres),
]


@pytest.fixture(params=STORES)
def server_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The reference server on the store named by the parameter, users on SQLite."""
    database_url = f"sqlite:///{tmp_path / 'users.db'}"
    stores = {
        "memory": lambda: "memory://",
        "sqlite": lambda: f"sqlite:///{tmp_path / 'sessions.db'}",
        "redis": lambda: (
            f"{request.getfixturevalue('redis_url')}"
            f"?prefix={request.getfixturevalue('redis_run_prefix')}rm{uuid.uuid4().hex[:6]}:"
        ),
        "postgres": lambda: request.getfixturevalue("postgres_dsn"),
    }
    hasher = PasswordHasher.for_tests()
    create_accounts(database_url, hasher, {USER: "user"})
    settings = Settings(
        env="development",
        database_url=database_url,
        store_url=stores[request.param](),
        data_dir=tmp_path / "data",
        secret="browser-tests-" + "s" * 40,
    )
    with serving_in_thread(create_app(settings, hasher=hasher), name="uvicorn-remember") as url:
        yield url


def sign_in(browser: Browser, made: list[BrowserContext], url: str, *, keep: bool) -> Page:
    context = browser.new_context(viewport=VIEWPORT)
    made.append(context)
    page = context.new_page()
    page.goto(f"{url}/login")
    page.get_by_label("Email").fill(USER)
    page.get_by_label("Password").fill(PASSWORD)
    box = page.get_by_label("Keep me signed in")
    expect(box).not_to_be_checked()
    if keep:
        box.check()
    page.get_by_role("button", name="Sign in", exact=True).click()
    page.wait_for_url(f"{url}/")
    return page


def session_cookie(page: Page) -> dict[str, object]:
    (cookie,) = [c for c in page.context.cookies() if c["name"] == COOKIE]
    return dict(cookie)


def test_the_box_makes_the_cookie_outlive_the_browser(
    browser: Browser,
    contexts: list[BrowserContext],
    server_url: str,
) -> None:
    """Unchecked: a session cookie (expires -1); checked: one expiring a week on; both listed."""
    forgetful = sign_in(browser, contexts, server_url, keep=False)
    assert session_cookie(forgetful)["expires"] == -1
    kept = sign_in(browser, contexts, server_url, keep=True)
    expires = session_cookie(kept)["expires"]
    assert isinstance(expires, int | float)
    assert time.time() + WEEK - 120 < expires <= time.time() + WEEK + 1
    # Each is a working session, and the account page tells them apart.
    kept.goto(f"{server_url}/account")
    current = kept.locator("tr.current td.remembered")
    expect(current).to_have_text("Yes")
    forgetful.goto(f"{server_url}/account")
    expect(forgetful.locator("tr.current td.remembered")).to_have_text("Until the browser closes")
    expect(forgetful.locator("td.remembered")).to_have_count(2)
