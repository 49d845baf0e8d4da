"""The admin list in a real headless Chromium: search by email and pages, on a phone's width.

A module of its own, so its server (the ``live_server`` fixture is per module) holds the many
accounts paging needs without pushing other tests' rows off the first page.
"""

from __future__ import annotations

from urllib.parse import quote

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser.conftest import LiveServer, create_accounts

pytestmark = pytest.mark.browser

PHONE = {"width": 390, "height": 844}
PAGER = [f"pager-{n:02}@example.com" for n in range(60)]
LITERAL = "100%_off@example.com"


def fits_the_screen(page: Page) -> bool:
    return bool(page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"))


def emails_shown(page: Page) -> list[str]:
    return [text.strip() for text in page.locator("tbody td.email").all_inner_texts()]


def test_an_admin_searches_and_pages_through_users_on_a_phone(
    browser: Browser, live_server: LiveServer
) -> None:
    """Search keeps matches only (`%` literally); Next/Previous walk pages of 50; no side scroll."""
    create_accounts(
        live_server.database_url,
        live_server.hasher,
        {**dict.fromkeys(PAGER, "user"), LITERAL: "user", "pagerx@other.example": "user"},
    )
    context = browser.new_context(viewport=PHONE)
    try:
        page = context.new_page()
        page.goto(f"{live_server.url}/login?next={quote('/admin/users', safe='')}")
        page.get_by_label("Email").fill(live_server.admin)
        page.get_by_label("Password").fill(live_server.password)
        page.get_by_role("button", name="Sign in", exact=True).click()
        page.wait_for_url(f"{live_server.url}/admin/users")

        page.get_by_label("Search by email").fill("PAGER-")
        page.get_by_role("button", name="Search").click()
        expect(page.get_by_role("heading", name="Users matching “PAGER-”")).to_be_visible()
        assert emails_shown(page) == PAGER[:50]
        pages = page.get_by_role("navigation", name="Pages of users")
        expect(pages.get_by_role("link", name="Previous")).to_have_count(0)
        assert fits_the_screen(page)

        pages.get_by_role("link", name="Next").click()
        assert emails_shown(page) == PAGER[50:]
        expect(pages.get_by_role("link", name="Next")).to_have_count(0)
        expect(page.get_by_label("Search by email")).to_have_value("PAGER-")
        assert fits_the_screen(page)

        pages.get_by_role("link", name="Previous").click()
        assert emails_shown(page) == PAGER[:50]
        expect(pages.get_by_role("link", name="Previous")).to_have_count(0)

        page.get_by_label("Search by email").fill("%")
        page.get_by_role("button", name="Search").click()
        assert emails_shown(page) == [LITERAL]
        expect(page.get_by_role("navigation", name="Pages of users")).to_have_count(0)
        assert fits_the_screen(page)

        page.get_by_role("link", name="Clear").click()
        expect(page.get_by_role("heading", name="All users")).to_be_visible()
        expect(page.get_by_label("Search by email")).to_have_value("")
        assert len(emails_shown(page)) == 50  # 64 accounts: a full first page, then more
        assert fits_the_screen(page)
    finally:
        context.close()
