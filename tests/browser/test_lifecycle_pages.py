"""Sign-up, verification and password reset in a real Chromium, with mail from a real SMTP server.

The server (uvicorn in a thread, SQLite) sends its mail to an aiosmtpd server on another
loopback port; the test reads each message there and opens its link in the browser, exactly
as a person would. Verified emails are required, so the sign-up test only signs in once the
link was followed.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from email.message import Message as MimeMessage

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from sessionauth.auth.passwords import PasswordHasher
from sessionauth.server.app import create_app
from sessionauth.server.settings import Settings
from tests.browser.conftest import PASSWORD, create_accounts, serving_in_thread
from tests.browser.test_pages import open_page, screenshot
from tests.support.services import LOOPBACK, free_port
from tests.support.smtp_server import SMTPServer, smtp_server

pytestmark = pytest.mark.browser

NEW_PASSWORD = "a brand new passphrase"
MAIL_WAIT = 15.0


@dataclass(frozen=True)
class MailSite:
    """The running server, its database, and the SMTP server its mail goes to."""

    url: str
    database_url: str
    hasher: PasswordHasher
    smtp: SMTPServer

    def new_account(self, name: str) -> str:
        email = f"{name}.{uuid.uuid4().hex[:4]}@example.com"
        create_accounts(self.database_url, self.hasher, {email: "user"})
        return email

    def link_for(self, address: str, path: str) -> str:
        """The link to ``path`` in the first message to ``address`` (waits for it to arrive)."""
        message = wait_for_mail(self.smtp, address)
        text = next(p for p in message.walk() if p.get_content_type() == "text/plain")
        payload = text.get_payload(decode=True)
        assert isinstance(payload, bytes)
        match = re.search(rf"{re.escape(self.url + path)}\?token=[A-Za-z0-9_-]+", payload.decode())
        assert match is not None, payload.decode()
        return match.group(0)


def wait_for_mail(server: SMTPServer, address: str) -> MimeMessage:
    """The first message to ``address``, waiting (on the server's event) until it arrives."""
    deadline = time.monotonic() + MAIL_WAIT
    while True:
        for _, message in server.messages:
            if message["To"] == address:
                return message
        remaining = deadline - time.monotonic()
        assert remaining > 0, f"no mail to {address} within {MAIL_WAIT} s"
        # Cleared after the wait, then the list is read again: a message that arrived in
        # between is seen by that read, since the server appends before it sets the event.
        server.received.wait(remaining)
        server.received.clear()


@pytest.fixture(scope="module")
def mail_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MailSite]:
    """``create_app`` with sign-up open and verified emails required, mailing to aiosmtpd."""
    directory = tmp_path_factory.mktemp("lifecycle")
    database_url = f"sqlite:///{directory / 'sessionauth.db'}"
    hasher = PasswordHasher.for_tests()
    create_accounts(database_url, hasher, {"root@example.com": "admin"})
    port = free_port()
    with smtp_server() as smtp:
        settings = Settings(
            env="development",
            database_url=database_url,
            data_dir=directory / "data",
            secret="browser-tests-" + "s" * 40,
            signup="open",
            require_verified=True,
            public_url=f"http://{LOOPBACK}:{port}",
            smtp_url=f"smtp://{LOOPBACK}:{smtp.port}?starttls=false",
        )
        app = create_app(settings, hasher=hasher)
        with serving_in_thread(app, name="uvicorn-lifecycle", port=port) as url:
            yield MailSite(url, database_url, hasher, smtp)


def sign_in(page: Page, site: MailSite, email: str, password: str) -> None:
    page.goto(f"{site.url}/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in", exact=True).click()


def test_sign_up_then_the_mailed_link_then_sign_in(
    browser: Browser, contexts: list[BrowserContext], mail_site: MailSite
) -> None:
    """Login page -> Create an account -> mail -> open the link -> confirm -> sign in."""
    email = f"newcomer.{uuid.uuid4().hex[:4]}@example.com"
    _, page = open_page(browser, contexts)
    page.goto(f"{mail_site.url}/login")
    page.get_by_role("link", name="Create an account").click()
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_label("Repeat password").fill(PASSWORD)
    page.get_by_role("button", name="Create account").click()
    expect(page.get_by_role("status")).to_contain_text("Check your inbox")
    screenshot(page, "signup")

    # Not verified yet: the right password is refused with the reason.
    sign_in(page, mail_site, email, PASSWORD)
    expect(page.get_by_role("alert")).to_contain_text("not verified")

    page.goto(mail_site.link_for(email, "/verify"))
    expect(page.get_by_role("heading", name="Confirm your email address")).to_be_visible()
    page.get_by_role("button", name="Confirm my address").click()
    page.wait_for_url(f"{mail_site.url}/login?notice=verified")
    expect(page.get_by_role("status")).to_contain_text("confirmed")

    sign_in(page, mail_site, email, PASSWORD)
    page.wait_for_url(f"{mail_site.url}/")
    expect(page.get_by_text(f"You are signed in as {email}")).to_be_visible()


def test_forgot_then_reset_signs_every_old_session_out(
    browser: Browser, contexts: list[BrowserContext], mail_site: MailSite
) -> None:
    """Two signed-in browsers; a reset from a third; both old sessions are gone."""
    email = mail_site.new_account("forgetful")
    signed_in = []
    for _ in range(2):
        context, page = open_page(browser, contexts)
        sign_in(page, mail_site, email, PASSWORD)
        page.wait_for_url(f"{mail_site.url}/")
        signed_in.append((context, page))

    _, page = open_page(browser, contexts)
    page.goto(f"{mail_site.url}/login")
    page.get_by_role("link", name="Forgot your password?").click()
    page.get_by_label("Email").fill(email)
    page.get_by_role("button", name="Send the link").click()
    expect(page.get_by_role("status")).to_contain_text("Check your inbox")

    page.goto(mail_site.link_for(email, "/password/reset"))
    page.get_by_label("New password", exact=True).fill(NEW_PASSWORD)
    page.get_by_label("Repeat new password").fill(NEW_PASSWORD)
    screenshot(page, "reset")
    page.get_by_role("button", name="Set the password").click()
    page.wait_for_url(f"{mail_site.url}/login?notice=password-reset")

    for context, old in signed_in:
        assert context.request.get(f"{mail_site.url}/dashboard").status == 401
        old.goto(f"{mail_site.url}/account")
        assert old.url.startswith(f"{mail_site.url}/login")

    sign_in(page, mail_site, email, PASSWORD)
    expect(page.get_by_role("alert")).to_contain_text("Invalid email or password")
    sign_in(page, mail_site, email, NEW_PASSWORD)
    page.wait_for_url(f"{mail_site.url}/")


def test_a_mail_scanner_fetching_the_link_uses_nothing(
    browser: Browser, contexts: list[BrowserContext], mail_site: MailSite
) -> None:
    """GET of a reset link (as a scanner would) consumes nothing: the person's click still works."""
    email = mail_site.new_account("scanned")
    context, page = open_page(browser, contexts)
    page.goto(f"{mail_site.url}/password/forgot")
    page.get_by_label("Email").fill(email)
    page.get_by_role("button", name="Send the link").click()
    expect(page.get_by_role("status")).to_contain_text("Check your inbox")
    link = mail_site.link_for(email, "/password/reset")
    for _ in range(3):
        assert context.request.get(link).status == 200
    page.goto(link)
    page.get_by_label("New password", exact=True).fill(NEW_PASSWORD)
    page.get_by_label("Repeat new password").fill(NEW_PASSWORD)
    page.get_by_role("button", name="Set the password").click()
    page.wait_for_url(f"{mail_site.url}/login?notice=password-reset")
