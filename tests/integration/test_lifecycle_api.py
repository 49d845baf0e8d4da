"""The account lifecycle over HTTP, with every mail delivered through a real SMTP server.

The app runs in process (httpx ``ASGITransport``) with its lifespan, over SQLite; its outbox
sends to an aiosmtpd server on a loopback port (``tests/support/smtp_server.py``). A test waits
for mail by draining the lifecycle's background letters and then the outbox: when that
returns, the SMTP server has accepted every message (no sleeps, no polling).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from email.message import Message as MimeMessage
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from sessionauth.auth.passwords import PasswordHasher
from sessionauth.server.app import create_app
from sessionauth.stores.users import User
from tests.support.apps import production, server_settings
from tests.support.services import free_port
from tests.support.smtp_server import SMTPServer, smtp_server

PASSWORD = "correct horse battery"
NEW_PASSWORD = "a brand new passphrase"
BASE = "http://testserver"
ACCEPTED = {"success": True}
INVALID_LINK = {"error": "Invalid or expired link"}


@dataclass
class Site:
    """The app inside its lifespan, its SMTP server, and clients (one cookie jar each)."""

    app: FastAPI
    smtp: SMTPServer
    clients: list[httpx.AsyncClient] = field(default_factory=list)

    def client(self) -> httpx.AsyncClient:
        transport = httpx.ASGITransport(app=self.app, client=("203.0.113.5", 4000))
        client = httpx.AsyncClient(transport=transport, base_url=BASE)
        self.clients.append(client)
        return client

    async def delivered(self) -> list[MimeMessage]:
        """Every message the SMTP server accepted, once all mail in flight has been sent."""
        await self.app.state.lifecycle.drain()
        await self.app.state.outbox.join()
        return [message for _, message in self.smtp.messages]

    async def mail_to(self, address: str) -> MimeMessage:
        """The last message to ``address``."""
        found = [m for m in await self.delivered() if m["To"] == address]
        assert found, f"no mail to {address}"
        return found[-1]

    async def add_user(self, email: str, *, verified: bool = True) -> User:
        auth = self.app.state.authenticator
        password_hash = await auth.hasher.hash(PASSWORD)
        user: User = await auth.users.create(email, password_hash, verified=verified)
        return user

    async def signed_in(self, email: str, password: str = PASSWORD) -> httpx.AsyncClient:
        client = self.client()
        response = await client.post("/login", json={"email": email, "password": password})
        assert response.status_code == 200, response.text
        return client


def link_token(message: MimeMessage, path: str) -> str:
    """The token of the link to ``path`` in the message's plain-text part."""
    text = next(p for p in message.walk() if p.get_content_type() == "text/plain")
    body = text.get_payload(decode=True)
    assert isinstance(body, bytes)
    match = re.search(rf"{re.escape(BASE + path)}\?token=([A-Za-z0-9_-]+)", body.decode())
    assert match is not None, body.decode()
    return match.group(1)


async def csrf(client: httpx.AsyncClient) -> dict[str, str]:
    response = await client.get("/csrf-token")
    return {"X-CSRF-Token": response.json()["csrfToken"]}


@pytest.fixture
def smtp() -> Iterator[SMTPServer]:
    with smtp_server() as server:
        yield server


@asynccontextmanager
async def running_site(tmp_path: Path, smtp: SMTPServer, **overrides: Any) -> AsyncIterator[Site]:
    """The app with its outbox sending to ``smtp``, sign-up open, links to :data:`BASE`."""
    values: dict[str, Any] = {
        "smtp_url": f"smtp://127.0.0.1:{smtp.port}?starttls=false",
        "signup": "open",
        "public_url": BASE,
        **overrides,
    }
    app = create_app(server_settings(tmp_path, **values), hasher=PasswordHasher.for_tests())
    async with app.router.lifespan_context(app):
        site = Site(app, smtp)
        try:
            yield site
        finally:
            for client in site.clients:
                await client.aclose()


@pytest.fixture
async def site(tmp_path: Path, smtp: SMTPServer) -> AsyncIterator[Site]:
    async with running_site(tmp_path, smtp) as made:
        yield made


# -- sign-up and verification ----------------------------------------------------------------


async def test_sign_up_then_the_mailed_link_verifies_then_login_works(
    tmp_path: Path, smtp: SMTPServer
) -> None:
    """Sign-up (no session) -> mail -> POST /verify -> login, with verified emails required."""
    async with running_site(tmp_path, smtp, require_verified=True) as site:
        client = site.client()
        answer = await client.post(
            "/signup", json={"email": "New@Example.com", "password": PASSWORD}
        )
        assert (answer.status_code, answer.json()) == (202, ACCEPTED)
        assert "set-cookie" not in answer.headers  # a sign-up is not a login
        login = {"email": "new@example.com", "password": PASSWORD}
        refused = await client.post("/login", json=login)
        assert (refused.status_code, refused.json()) == (403, {"error": "Email not verified"})

        message = await site.mail_to("new@example.com")
        assert message["Subject"] == "Confirm your email address for sessionauth"
        token = link_token(message, "/verify")
        page = await client.get(f"/verify?token={token}")
        assert page.status_code == 200
        assert f'value="{token}"' in page.text  # the page's button posts it; the GET used nothing
        verified = await client.post("/verify", json={"token": token})
        assert (verified.status_code, verified.json()) == (200, ACCEPTED)
        again = await client.post("/verify", json={"token": token})
        assert (again.status_code, again.json()) == (400, INVALID_LINK)
        assert (await client.post("/login", json=login)).status_code == 200


async def test_sign_up_answers_the_same_for_a_taken_address_and_mails_its_owner(
    site: Site,
) -> None:
    """Taken or free: the same status and body; the owner's mail says the account exists."""
    await site.add_user("taken@example.com")
    answers = []
    for email in ("taken@example.com", "free@example.com"):
        response = await site.client().post("/signup", json={"email": email, "password": PASSWORD})
        answers.append((response.status_code, response.json(), "set-cookie" in response.headers))
    assert answers[0] == answers[1] == (202, ACCEPTED, False)
    exists = await site.mail_to("taken@example.com")
    assert exists["Subject"] == "You already have a sessionauth account"
    assert "token=" not in exists.as_string()
    login = await site.client().post(
        "/login", json={"email": "taken@example.com", "password": PASSWORD}
    )
    assert login.status_code == 200  # the owner's password was not replaced


async def test_sign_up_is_404_and_unlinked_unless_open(tmp_path: Path, smtp: SMTPServer) -> None:
    """SESSIONAUTH_SIGNUP=off (the default): the route and the page are 404, no link shown."""
    async with running_site(tmp_path, smtp, signup="off") as site:
        client = site.client()
        answer = await client.post("/signup", json={"email": "a@example.com", "password": PASSWORD})
        assert (answer.status_code, answer.json()) == (404, {"error": "Not found"})
        assert (await client.get("/signup")).status_code == 404
        assert 'href="/signup"' not in (await client.get("/login")).text
        assert await site.delivered() == []
        assert await site.app.state.authenticator.find_user("a@example.com") is None


async def test_verification_can_be_requested_again_while_unverified(site: Site) -> None:
    """POST /verify/request mails a new link to the signed-in user; 409 once verified."""
    await site.add_user("me@example.com", verified=False)
    client = await site.signed_in("me@example.com")
    headers = await csrf(client)
    asked = await client.post("/verify/request", headers=headers)
    assert (asked.status_code, asked.json()) == (202, ACCEPTED)
    token = link_token(await site.mail_to("me@example.com"), "/verify")
    assert (await client.post("/verify", json={"token": token}, headers=headers)).status_code == 200
    done = await client.post("/verify/request", headers=headers)
    assert (done.status_code, done.json()) == (409, {"error": "Email already verified"})
    anonymous = await site.client().post("/verify/request")
    assert anonymous.status_code == 401


async def test_an_email_change_applies_when_the_new_address_confirms(site: Site) -> None:
    """POST /email: nothing changes until the link mailed to the new address is followed."""
    await site.add_user("old@example.com")
    client = await site.signed_in("old@example.com")
    headers = await csrf(client)
    wrong = await client.post(
        "/email", json={"email": "new@example.com", "password": "wrong"}, headers=headers
    )
    assert wrong.status_code == 401
    asked = await client.post(
        "/email", json={"email": "new@example.com", "password": PASSWORD}, headers=headers
    )
    assert (asked.status_code, asked.json()) == (202, ACCEPTED)
    assert (await client.get("/me")).json()["email"] == "old@example.com"
    token = link_token(await site.mail_to("new@example.com"), "/verify")
    assert (await client.post("/verify", json={"token": token}, headers=headers)).status_code == 200
    assert (await client.get("/me")).json()["email"] == "new@example.com"
    notice = await site.mail_to("old@example.com")
    assert "new@example.com" in notice.as_string()


# -- forgotten passwords ---------------------------------------------------------------------


async def test_a_reset_ends_every_session_and_signs_nobody_in(site: Site) -> None:
    """forgot -> mail -> reset: both old sessions are 401, no cookie set, the new password works."""
    await site.add_user("me@example.com")
    phone, laptop = await site.signed_in("me@example.com"), await site.signed_in("me@example.com")
    asked = await site.client().post("/password/forgot", json={"email": "me@example.com"})
    assert (asked.status_code, asked.json()) == (202, ACCEPTED)
    token = link_token(await site.mail_to("me@example.com"), "/password/reset")

    stranger = site.client()
    reset = await stranger.post("/password/reset", json={"token": token, "password": NEW_PASSWORD})
    assert (reset.status_code, reset.json()) == (200, ACCEPTED)
    assert "set-cookie" not in reset.headers
    assert (await stranger.get("/dashboard")).status_code == 401
    for old in (phone, laptop):
        assert (await old.get("/dashboard")).status_code == 401
    old_login = {"email": "me@example.com", "password": PASSWORD}
    assert (await site.client().post("/login", json=old_login)).status_code == 401
    new_login = {"email": "me@example.com", "password": NEW_PASSWORD}
    assert (await site.client().post("/login", json=new_login)).status_code == 200
    reused = await stranger.post("/password/reset", json={"token": token, "password": PASSWORD})
    assert (reused.status_code, reused.json()) == (400, INVALID_LINK)


async def test_two_concurrent_resets_with_one_link_exactly_one_wins(site: Site) -> None:
    """asyncio.gather of two POST /password/reset with one token: one 200, one 400."""
    await site.add_user("me@example.com")
    await site.client().post("/password/forgot", json={"email": "me@example.com"})
    token = link_token(await site.mail_to("me@example.com"), "/password/reset")
    passwords = ["first new password", "second new password"]
    answers = await asyncio.gather(
        *(
            site.client().post("/password/reset", json={"token": token, "password": password})
            for password in passwords
        )
    )
    assert sorted(a.status_code for a in answers) == [200, 400]
    winner = passwords[[a.status_code for a in answers].index(200)]
    login = {"email": "me@example.com", "password": winner}
    assert (await site.client().post("/login", json=login)).status_code == 200


async def test_forgot_answers_the_same_for_every_address_and_mails_only_accounts(
    site: Site,
) -> None:
    """Known, unknown: the same 202 body; only the account's owner gets mail."""
    await site.add_user("me@example.com")
    for email in ("me@example.com", "nobody@example.com"):
        answer = await site.client().post("/password/forgot", json={"email": email})
        assert (answer.status_code, answer.json()) == (202, ACCEPTED)
    assert [m["To"] for m in await site.delivered()] == ["me@example.com"]


async def test_mail_to_one_address_is_throttled_whoever_asks(site: Site) -> None:
    """The fourth mail to one address within the hour is a 429 with Retry-After."""
    for _ in range(3):
        answer = await site.client().post("/password/forgot", json={"email": "v@example.com"})
        assert answer.status_code == 202
    refused = await site.client().post(
        "/signup", json={"email": "v@example.com", "password": PASSWORD}
    )
    assert refused.status_code == 429
    assert int(refused.headers["retry-after"]) > 0


# -- the mail server is down -----------------------------------------------------------------


async def test_an_smtp_outage_changes_no_answer(tmp_path: Path) -> None:
    """Nothing listens on the SMTP port: sign-up and forgot answer exactly as before."""
    dead = SMTPServer(port=free_port(), client_tls=None)  # type: ignore[arg-type]
    async with running_site(tmp_path, dead) as site:
        await site.add_user("taken@example.com")
        answers = set()
        for email in ("taken@example.com", "free@example.com"):
            for path, body in (
                ("/signup", {"email": email, "password": PASSWORD}),
                ("/password/forgot", {"email": email}),
            ):
                response = await site.client().post(path, json=body)
                answers.add((response.status_code, response.text))
        assert answers == {(202, '{"success":true}')}
        assert await site.app.state.authenticator.users.get_by_email("free@example.com")


async def test_without_mail_the_mailing_routes_say_so(tmp_path: Path) -> None:
    """Production without SESSIONAUTH_SMTP_URL: 503 for every address, and no link to them."""
    settings = production(tmp_path, signup="open", public_url="https://auth.example.com")
    app = create_app(settings, hasher=PasswordHasher.for_tests())
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport,
            base_url="https://testserver",
            headers={"Origin": "https://testserver"},
        ) as client:
            for path, body in (
                ("/signup", {"email": "a@example.com", "password": PASSWORD}),
                ("/password/forgot", {"email": "a@example.com"}),
            ):
                answer = await client.post(path, json=body)
                assert answer.status_code == 503, answer.text
                assert answer.json() == {"error": "Account mail is not configured on this server"}
            assert "/password/forgot" not in (await client.get("/login")).text
