"""The HTML pages in a real headless Chromium against a real uvicorn server.

Each test saves what it shows (login, dashboard, account, admin) to ``$SESSIONAUTH_SCREENSHOTS``
when set (``SESSIONAUTH_SCREENSHOTS=docs/screenshots`` refreshes the README's pictures), and to a
temporary folder otherwise, so a test run never dirties the work tree.
"""

from __future__ import annotations

import os
import re
import tempfile
import uuid
from pathlib import Path
from urllib.parse import quote

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from tests.browser.conftest import LiveServer, attacker_site, create_accounts

pytestmark = pytest.mark.browser

SCREENSHOTS = Path(
    os.environ.get("SESSIONAUTH_SCREENSHOTS") or tempfile.mkdtemp(prefix="sessionauth-shots-")
)
VIEWPORT = {"width": 1100, "height": 750}
FIREFOX_MAC = "Mozilla/5.0 (Macintosh; Intel Mac OS X 14.5; rv:128.0) Gecko/20100101 Firefox/128.0"
COOKIE = "session"


def open_page(
    browser: Browser, contexts: list[BrowserContext], **options: object
) -> tuple[BrowserContext, Page]:
    context = browser.new_context(viewport=VIEWPORT, **options)  # type: ignore[arg-type]
    contexts.append(context)
    page = context.new_page()
    page.on("dialog", lambda dialog: dialog.accept())  # app.js confirms destructive actions
    return context, page


def screenshot(page: Page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=SCREENSHOTS / f"{name}.png")


def sign_in(page: Page, server: LiveServer, email: str, next_path: str = "/") -> None:
    page.goto(f"{server.url}/login?next={quote(next_path, safe='')}")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(server.password)
    page.get_by_role("button", name="Sign in", exact=True).click()
    page.wait_for_url(f"{server.url}{next_path}")


def session_cookies(context: BrowserContext) -> list[str]:
    return [cookie["value"] for cookie in context.cookies() if cookie["name"] == COOKIE]


def test_login_form_leads_to_the_dashboard_without_javascript(
    browser: Browser, contexts: list[BrowserContext], live_server: LiveServer
) -> None:
    """Anonymous → /login?next=/; a wrong password is explained; the right one shows who I am."""
    _, page = open_page(browser, contexts, java_script_enabled=False)
    page.goto(f"{live_server.url}/")
    assert page.url == f"{live_server.url}/login?next=/"
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    screenshot(page, "login")

    page.get_by_label("Email").fill(live_server.user)
    page.get_by_label("Password").fill("not the password")
    page.get_by_role("button", name="Sign in", exact=True).click()
    expect(page.get_by_role("alert")).to_have_text("Invalid email or password.")

    page.get_by_label("Email").fill(live_server.user)
    page.get_by_label("Password").fill(live_server.password)
    page.get_by_role("button", name="Sign in", exact=True).click()
    page.wait_for_url(f"{live_server.url}/")
    expect(page.get_by_role("heading", name="Welcome")).to_be_visible()
    expect(page.locator("dl.facts")).to_contain_text(live_server.user)
    expect(page.locator("dl.facts")).to_contain_text("user")
    screenshot(page, "dashboard")


def test_revoked_session_is_sent_to_login_at_its_next_navigation(
    browser: Browser, contexts: list[BrowserContext], live_server: LiveServer
) -> None:
    """Two browsers as one user; the first revokes the second on /account; it must sign in."""
    email = live_server.new_user("erin")
    _, laptop = open_page(browser, contexts)
    phone_context, phone = open_page(browser, contexts, user_agent=FIREFOX_MAC)
    sign_in(phone, live_server, email)
    sign_in(laptop, live_server, email, next_path="/account")

    rows = laptop.locator("tbody tr")
    expect(rows).to_have_count(2)
    expect(rows.filter(has_text="This device")).to_have_count(1)
    other = rows.filter(has_text="Firefox on macOS")
    expect(other).to_have_count(1)
    screenshot(laptop, "account")

    other.get_by_role("button", name=re.compile("^Revoke")).click()
    expect(laptop.get_by_role("status")).to_have_text("Session revoked: that device is signed out.")
    expect(laptop.locator("tbody tr")).to_have_count(1)

    phone.goto(f"{live_server.url}/account")
    assert phone.url == f"{live_server.url}/login?notice=expired&next=/account"
    expect(phone.get_by_role("status")).to_have_text(
        "Your session has ended. Please sign in again."
    )
    assert session_cookies(phone_context) == []  # the dead cookie was cleared too
    laptop.goto(f"{live_server.url}/account")
    assert laptop.url == f"{live_server.url}/account"


ATTACK = """<!doctype html><title>Win a prize</title>
<form method="post" action="{action}">
  <input name="csrf_token" value="{forged}">
  <input name="current_password" value="{password}">
  <input name="new_password" value="attacker's password">
  <input name="confirm_password" value="attacker's password">
</form>
<script>document.forms[0].submit()</script>"""


@pytest.mark.parametrize(
    "attacker_host",
    [
        pytest.param("127.0.0.1", id="same-site-other-port"),
        pytest.param("127.0.0.2", id="cross-site"),
    ],
)
@pytest.mark.parametrize("target", ["password", "logout"])
def test_form_posted_from_another_origin_is_rejected(
    browser: Browser,
    contexts: list[BrowserContext],
    live_server: LiveServer,
    attacker_host: str,
    target: str,
) -> None:
    """A page on another loopback origin auto-submits a form; the victim's state is unchanged.

    Another port of the same host is the same *site*, so the SameSite=Lax cookie goes along
    and only the origin layer and the CSRF token stand in the way.
    """
    email = live_server.new_user("victor")
    victim_context, victim = open_page(browser, contexts)
    sign_in(victim, live_server, email)
    cookie_before = session_cookies(victim_context)
    page = ATTACK.format(
        action=f"{live_server.url}/ui/{target}", forged="A" * 86, password=live_server.password
    )
    with attacker_site(attacker_host, {"attack": page}) as attacker:
        with victim.expect_response(f"{live_server.url}/ui/{target}") as posted:
            victim.goto(f"{attacker}/attack")
        assert posted.value.status == 403
    expect(victim.get_by_role("heading", name="Access denied")).to_be_visible()

    assert session_cookies(victim_context) == cookie_before
    victim.goto(f"{live_server.url}/")
    expect(victim.locator("dl.facts")).to_contain_text(email)  # still signed in
    _, fresh = open_page(browser, contexts)
    sign_in(fresh, live_server, email)  # the old password still works


def test_logout_clears_the_cookie(
    browser: Browser, contexts: list[BrowserContext], live_server: LiveServer
) -> None:
    """Signing out ends the session: the browser no longer holds the session cookie."""
    context, page = open_page(browser, contexts)
    sign_in(page, live_server, live_server.user)
    assert len(session_cookies(context)) == 1
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url(f"{live_server.url}/login?notice=signed-out")
    expect(page.get_by_role("status")).to_have_text("You have been signed out.")
    assert session_cookies(context) == []
    page.goto(f"{live_server.url}/account")
    assert page.url == f"{live_server.url}/login?next=/account"


def test_admin_creates_a_user_and_changes_their_role(
    browser: Browser, contexts: list[BrowserContext], live_server: LiveServer
) -> None:
    """On /admin/users an admin creates an account, then promotes it; a user gets the 403 page."""
    email = f"dave.{uuid.uuid4().hex[:4]}@example.com"
    _, page = open_page(browser, contexts)
    sign_in(page, live_server, live_server.admin, next_path="/admin/users")

    create = page.locator("form[action='/ui/admin/users']")
    create.get_by_label("Email").fill(email)
    create.get_by_label("Password").fill("a fresh password")
    create.get_by_label("Role").select_option("user")
    create.get_by_role("button", name="Create user").click()
    expect(page.get_by_role("status")).to_have_text(f"Created {email} (user).")
    row = page.locator("tbody tr", has_text=email)
    expect(row).to_contain_text("Active")

    row.get_by_label(f"Role of {email}").select_option("admin")
    row.get_by_role("button", name=re.compile("^Save")).click()
    expect(page.get_by_role("status")).to_have_text(f"{email} is now admin.")
    expect(page.get_by_label(f"Role of {email}")).to_have_value("admin")
    screenshot(page, "admin")

    _, user_page = open_page(browser, contexts)
    sign_in(user_page, live_server, live_server.user)
    response = user_page.goto(f"{live_server.url}/admin/users")
    assert response is not None
    assert response.status == 403
    expect(user_page.get_by_role("heading", name="Access denied")).to_be_visible()


# Long, unbreakable data: an email of 143 characters without a space, and a browser whose
# user agent names nothing the device names know.
LONG_EMAIL = f"{'a-very-long-mailbox-name-' * 2}x@{'subdomain.' * 8}example.com"
ODD_AGENT = "Mozilla/5.0 (X11; Linux x86_64) " + "AVeryLongBrowserNameWithoutAnySpaces" * 3 + "/1.0"


@pytest.mark.parametrize("width", [320, 390])
def test_no_page_scrolls_sideways_on_a_phone(
    browser: Browser, contexts: list[BrowserContext], live_server: LiveServer, width: int
) -> None:
    """Every page fits 320 and 390 px, with a long email and each message of the login page.

    The email (143 characters, no space) is in the login form, the dashboard, the sessions and
    the admin list; the browser's user agent is a long name no device name knows.
    """
    email = f"{width}{LONG_EMAIL}"
    create_accounts(live_server.database_url, live_server.hasher, {email: "admin"})
    context = browser.new_context(viewport={"width": width, "height": 800}, user_agent=ODD_AGENT)
    contexts.append(context)
    page = context.new_page()
    widths = {}

    def measure(name: str) -> None:
        widths[name] = page.evaluate("document.documentElement.scrollWidth")

    page.goto(f"{live_server.url}/login")
    measure("/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill("not the password")
    page.get_by_role("button", name="Sign in", exact=True).click()
    expect(page.get_by_label("Email")).to_have_value(email)
    measure("/login, failed")
    page.goto(f"{live_server.url}/login?error=throttled&wait=900&email={quote(email)}")
    measure("/login, throttled")
    page.goto(f"{live_server.url}/login?notice=expired&next=/account")
    measure("/login, session ended")
    sign_in(page, live_server, email)
    for path in ("/", "/account", "/admin/users", "/no-such-page"):
        page.goto(f"{live_server.url}{path}")
        measure(path)
    page.goto(f"{live_server.url}/admin/users?q={quote(email)}")
    expect(page.locator("tbody td.email")).to_contain_text([email])
    measure("/admin/users?q=")
    screenshot(page, f"narrow-{width}")
    assert widths == dict.fromkeys(widths, width)
