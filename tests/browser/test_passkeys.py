"""Passkeys in Debian's Chromium with the DevTools virtual authenticator.

WebAuthn needs a secure context and an RP ID that is a domain, never an IP address: the server
is browsed as ``http://localhost:PORT`` (a secure context) and told that URL as its public one,
which makes ``localhost`` its RP ID and that origin the one it accepts.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from sessionauth.auth.passwords import PasswordHasher
from sessionauth.server.app import create_app
from sessionauth.server.settings import Settings
from tests.browser.conftest import PASSWORD, USER, create_accounts, serving_in_thread
from tests.support.services import free_port

pytestmark = pytest.mark.browser

AUTHENTICATOR = {
    "protocol": "ctap2",
    "transport": "internal",
    "hasResidentKey": True,
    "hasUserVerification": True,
    "isUserVerified": True,
}


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The server at ``http://localhost:PORT``, which is also its public URL."""
    directory = tmp_path_factory.mktemp("passkeys")
    database_url = f"sqlite:///{directory / 'sessionauth.db'}"
    hasher = PasswordHasher.for_tests()
    create_accounts(database_url, hasher, {USER: "user"})
    port = free_port()
    url = f"http://localhost:{port}"
    settings = Settings(
        env="development",
        database_url=database_url,
        data_dir=directory / "data",
        secret="browser-passkeys-" + "s" * 40,
        public_url=url,
    )
    with serving_in_thread(create_app(settings, hasher=hasher), name="uvicorn", port=port):
        yield url


@pytest.fixture
def browsing(browser: Browser) -> Iterator[tuple[BrowserContext, Page, Any, str]]:
    """A page with a virtual platform authenticator (resident keys, user verification)."""
    context = browser.new_context()
    page = context.new_page()
    page.on("dialog", lambda dialog: dialog.accept())  # deleting asks first
    cdp = context.new_cdp_session(page)
    cdp.send("WebAuthn.enable")
    added = cdp.send("WebAuthn.addVirtualAuthenticator", {"options": AUTHENTICATOR})
    try:
        yield context, page, cdp, added["authenticatorId"]
    finally:
        context.close()


def _sign_out(page: Page, site: str) -> None:
    page.get_by_role("button", name="Sign out", exact=True).click()
    page.wait_for_url(f"{site}/login**")


def test_register_sign_in_and_revoke_a_passkey(
    site: str, browsing: tuple[BrowserContext, Page, Any, str]
) -> None:
    """Add a passkey on /account, sign in with it alone, delete it: it no longer signs in."""
    _, page, cdp, authenticator_id = browsing
    page.goto(f"{site}/login")
    page.get_by_label("Email").fill(USER)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in", exact=True).click()
    page.wait_for_url(f"{site}/")

    page.goto(f"{site}/account")
    section = page.locator("#passkeys")
    expect(section.locator("#passkeys-empty")).to_be_visible()
    section.get_by_label("Name of the new passkey").fill("Chromium")
    section.get_by_role("button", name="Add a passkey").click()
    expect(section.locator("#passkeys-status")).to_contain_text("Passkey added")
    expect(section.get_by_label("Passkey name")).to_have_value("Chromium")
    expect(section.locator(".passkey-last-used")).to_have_text("Never")
    stored = cdp.send("WebAuthn.getCredentials", {"authenticatorId": authenticator_id})
    assert [c["isResidentCredential"] for c in stored["credentials"]] == [True]

    section.get_by_label("Passkey name").fill("My laptop")
    section.get_by_role("button", name="Rename").click()
    expect(section.locator("#passkeys-status")).to_contain_text("Passkey renamed")

    _sign_out(page, site)
    page.get_by_role("button", name="Sign in with a passkey").click()
    page.wait_for_url(f"{site}/")
    expect(page.locator("main")).to_contain_text(f"You are signed in as {USER}")

    page.goto(f"{site}/account")
    expect(section.get_by_label("Passkey name")).to_have_value("My laptop")
    expect(section.locator(".passkey-last-used")).not_to_have_text("Never")
    section.get_by_role("button", name="Delete").click()
    expect(section.locator("#passkeys-status")).to_contain_text("Passkey deleted")
    expect(section.locator("#passkeys-empty")).to_be_visible()

    # The authenticator still holds the credential; the server no longer accepts it.
    _sign_out(page, site)
    page.get_by_role("button", name="Sign in with a passkey").click()
    expect(page.locator("#passkey-login-error")).to_have_text("Invalid passkey")
    assert page.url.startswith(f"{site}/login")
    page.goto(f"{site}/")
    assert page.url.startswith(f"{site}/login")
