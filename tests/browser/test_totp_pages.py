"""TOTP from the account page in a real Chromium: enrolment, the code login, recovery codes.

Codes are computed with pyotp from the secret the page shows, as an authenticator app would.
The server accepts each time step once, so a code after the enrolment's is the *next* step's
(``at(now + 30)``), which the ±1 step drift window accepts: no waiting for the clock.
"""

from __future__ import annotations

import re
import time

import pyotp
import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from tests.browser.conftest import LiveServer
from tests.browser.test_pages import open_page, screenshot, sign_in

pytestmark = pytest.mark.browser

INVALID = "That code is not valid. Try the current one, or a recovery code."


def signed_in(
    browser: Browser, contexts: list[BrowserContext], server: LiveServer, name: str
) -> tuple[str, Page]:
    """A new account ``name`` and a page signed in as it; return its email and the page."""
    email = server.new_user(name)
    _, page = open_page(browser, contexts)
    sign_in(page, server, email)
    return email, page


def enrol(page: Page, server: LiveServer) -> tuple[str, list[str]]:
    """Turn TOTP on from the account page; return the secret shown and the recovery codes."""
    page.goto(f"{server.url}/account")
    expect(page.locator("#totp-status")).to_have_text("Off")
    page.get_by_role("button", name="Set up an authenticator app").click()
    page.wait_for_url(f"{server.url}/account/totp")
    # The QR code is markup in the page (no image request, nothing the CSP would block).
    assert page.locator("figure.qr-figure > svg").count() == 1
    assert page.locator("figure.qr-figure svg path").count() >= 1
    secret = page.locator("#totp-secret").inner_text().replace(" ", "")
    assert re.fullmatch(r"[A-Z2-7]{32}", secret), secret
    screenshot(page, "totp-setup")
    page.get_by_label("The 6-digit code the app shows").fill(pyotp.TOTP(secret).now())
    page.get_by_role("button", name="Turn on").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Save these recovery codes now")
    codes = page.locator("#recovery-codes li").all_inner_texts()
    assert len(codes) == 10
    assert len(set(codes)) == 10
    assert all(re.fullmatch(r"[0-9A-Z]{5}-[0-9A-Z]{5}", code) for code in codes), codes
    return secret, codes


def sign_out(page: Page, server: LiveServer) -> None:
    page.get_by_role("button", name="Sign out", exact=True).click()
    page.wait_for_url(f"{server.url}/login?notice=signed-out")


def password_step(page: Page, server: LiveServer, email: str) -> None:
    """The login form's password step, for an account that then needs a code."""
    page.goto(f"{server.url}/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(server.password)
    page.get_by_role("button", name="Sign in", exact=True).click()
    page.wait_for_url(f"{server.url}/login/mfa")


def use_recovery_code(page: Page, code: str) -> None:
    """Submit ``code`` on the login's second step as the recovery code."""
    page.get_by_label("Or a recovery code").fill(code)
    page.get_by_role("button", name="Verify").click()


def recovered(
    browser: Browser, contexts: list[BrowserContext], server: LiveServer, name: str
) -> tuple[str, Page, list[str]]:
    """A user who enrolled, signed out and signed back in with recovery code 0: on /account."""
    email, page = signed_in(browser, contexts, server, name)
    _, codes = enrol(page, server)
    sign_out(page, server)
    password_step(page, server, email)
    use_recovery_code(page, codes[0])
    page.wait_for_url(f"{server.url}/")
    page.goto(f"{server.url}/account")
    return email, page, codes


def test_enrol_then_sign_in_with_a_code_and_with_a_recovery_code(
    browser: Browser, contexts: list[BrowserContext], live_server: LiveServer
) -> None:
    """Enrolment from the page; a code from the shown secret signs in; a recovery code, once."""
    email, page = signed_in(browser, contexts, live_server, "totp")
    secret, codes = enrol(page, live_server)
    page.get_by_role("link", name="I have saved them").click()
    expect(page.locator("#totp-status")).to_have_text("On")
    expect(page.locator("#recovery-left")).to_have_text("10")
    sign_out(page, live_server)

    password_step(page, live_server, email)
    # The next step's code: the enrolment's step was accepted and cannot be replayed.
    page.get_by_label("Code from your authenticator app").fill(
        pyotp.TOTP(secret).at(time.time() + 30)
    )
    page.get_by_role("button", name="Verify").click()
    page.wait_for_url(f"{live_server.url}/")
    expect(page.get_by_text(email).first).to_be_visible()
    sign_out(page, live_server)

    password_step(page, live_server, email)
    use_recovery_code(page, codes[3])
    page.wait_for_url(f"{live_server.url}/")
    sign_out(page, live_server)

    password_step(page, live_server, email)
    use_recovery_code(page, codes[3])
    page.wait_for_url(f"{live_server.url}/login/mfa?next=/&error=invalid")
    expect(page.get_by_role("alert")).to_have_text(INVALID)
    use_recovery_code(page, codes[4])
    page.wait_for_url(f"{live_server.url}/")
    page.goto(f"{live_server.url}/account")
    expect(page.locator("#recovery-left")).to_have_text("8")


def test_recovery_codes_are_counted_and_renewed_from_the_account_page(
    browser: Browser, contexts: list[BrowserContext], live_server: LiveServer
) -> None:
    """One recovery code used leaves 9; new codes replace the set: an old one is refused."""
    email, page, codes = recovered(browser, contexts, live_server, "renew")
    expect(page.locator("#recovery-left")).to_have_text("9")

    page.get_by_role("button", name="New recovery codes").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Save these recovery codes now")
    fresh = page.locator("#recovery-codes li").all_inner_texts()
    assert len(fresh) == 10
    assert not set(fresh) & set(codes)
    page.goto(f"{live_server.url}/account")
    expect(page.locator("#recovery-left")).to_have_text("10")
    sign_out(page, live_server)

    password_step(page, live_server, email)
    use_recovery_code(page, codes[1])
    page.wait_for_url(f"{live_server.url}/login/mfa?next=/&error=invalid")
    use_recovery_code(page, fresh[0])
    page.wait_for_url(f"{live_server.url}/")


def test_disable_with_a_code_then_the_password_suffices(
    browser: Browser, contexts: list[BrowserContext], live_server: LiveServer
) -> None:
    """A wrong code leaves TOTP on; a current one turns it off; the next login is password only."""
    email, page = signed_in(browser, contexts, live_server, "disable")
    secret, _ = enrol(page, live_server)
    page.goto(f"{live_server.url}/account")
    page.get_by_label("Current code from your app").fill("000000")
    page.get_by_role("button", name="Turn off").click()
    page.wait_for_url(f"{live_server.url}/account")
    expect(page.get_by_role("alert")).to_contain_text("That code is not valid")
    expect(page.locator("#totp-status")).to_have_text("On")

    page.get_by_label("Current code from your app").fill(pyotp.TOTP(secret).at(time.time() + 30))
    page.get_by_role("button", name="Turn off").click()
    page.wait_for_url(f"{live_server.url}/account")
    expect(page.locator("#totp-status")).to_have_text("Off")
    sign_out(page, live_server)

    sign_in(page, live_server, email)
    assert page.url == f"{live_server.url}/"


def test_app_lost_a_recovery_code_turns_totp_off_then_the_password_suffices(
    browser: Browser, contexts: list[BrowserContext], live_server: LiveServer
) -> None:
    """Signed in with a recovery code, another one turns TOTP off on the account page."""
    email, page, codes = recovered(browser, contexts, live_server, "lost")
    expect(page.locator("#totp-status")).to_have_text("On")
    disable = page.get_by_role("form", name="Turn off two-factor authentication")
    disable.get_by_label("Or a recovery code").fill(codes[1])
    disable.get_by_role("button", name="Turn off").click()
    page.wait_for_url(f"{live_server.url}/account")
    expect(page.get_by_role("status")).to_contain_text("Two-factor authentication is off.")
    expect(page.locator("#totp-status")).to_have_text("Off")
    sign_out(page, live_server)

    sign_in(page, live_server, email)
    assert page.url == f"{live_server.url}/"


def test_wrong_first_code_keeps_the_setup_and_says_so(
    browser: Browser, contexts: list[BrowserContext], live_server: LiveServer
) -> None:
    """A wrong code on the enrolment page shows the fixed error, the same secret, TOTP still off."""
    _, page = signed_in(browser, contexts, live_server, "wrong")
    page.goto(f"{live_server.url}/account")
    page.get_by_role("button", name="Set up an authenticator app").click()
    page.wait_for_url(f"{live_server.url}/account/totp")
    secret = page.locator("#totp-secret").inner_text()
    wrong = f"{(int(pyotp.TOTP(secret.replace(' ', '')).now()) + 1) % 1000000:06d}"
    page.get_by_label("The 6-digit code the app shows").fill(wrong)
    page.get_by_role("button", name="Turn on").click()
    page.wait_for_url(f"{live_server.url}/account/totp?error=invalid")
    expect(page.get_by_role("alert")).to_contain_text("That code does not match")
    assert page.locator("#totp-secret").inner_text() == secret
    page.goto(f"{live_server.url}/account")
    expect(page.locator("#totp-status")).to_have_text("Off")


def test_the_totp_pages_fit_a_phone(
    browser: Browser, contexts: list[BrowserContext], live_server: LiveServer
) -> None:
    """At 320 px the account page (off and on), the enrolment page and the codes page fit."""
    email = live_server.new_user("phone")
    context = browser.new_context(viewport={"width": 320, "height": 800})
    contexts.append(context)
    page = context.new_page()
    sign_in(page, live_server, email)
    widths = {}

    def measure(name: str) -> None:
        widths[name] = page.evaluate("document.documentElement.scrollWidth")

    page.goto(f"{live_server.url}/account")
    measure("account, off")
    page.get_by_role("button", name="Set up an authenticator app").click()
    page.wait_for_url(f"{live_server.url}/account/totp")
    measure("enrolment")
    secret = page.locator("#totp-secret").inner_text().replace(" ", "")
    page.get_by_label("The 6-digit code the app shows").fill(pyotp.TOTP(secret).now())
    page.get_by_role("button", name="Turn on").click()
    expect(page.locator("#recovery-codes li")).to_have_count(10)
    measure("recovery codes")
    page.goto(f"{live_server.url}/account")
    expect(page.locator("#totp-status")).to_have_text("On")
    measure("account, on")
    assert widths == dict.fromkeys(widths, 320)
