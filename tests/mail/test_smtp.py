"""SMTP delivery against a real server (aiosmtpd): TLS modes, login, timeouts, outages."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
import time
from collections.abc import AsyncIterator

import pytest

from sessionauth.errors import ConfigurationError
from sessionauth.mail import MailError, Message, SMTPMailer, parse_smtp_url
from tests.support.services.ports import free_port
from tests.support.smtp_server import PASSWORD, USER, smtp_server

MESSAGE = Message(to="alice@example.com", subject="Hello", text="link: TOKEN", html="<p>TOKEN</p>")
CREDENTIALS = f"{USER}:{PASSWORD.replace(' ', '%20')}"


async def test_starttls_with_login_delivers() -> None:
    """smtp:// upgrades with STARTTLS, logs in, and the server gets both bodies."""
    with smtp_server(tls="starttls", auth=True) as server:
        mailer = SMTPMailer(
            f"smtp://{CREDENTIALS}@127.0.0.1:{server.port}",
            sender="app@example.com",
            tls_context=server.client_tls,
        )
        await mailer.send(MESSAGE)
    assert server.logins == [USER]
    [(envelope, mime)] = server.messages
    assert envelope.mail_from == "app@example.com"
    assert envelope.rcpt_tos == ["alice@example.com"]
    assert mime["Subject"] == "Hello"
    assert mime.is_multipart()


async def test_implicit_tls_with_login_delivers() -> None:
    """smtps:// speaks TLS from the first byte."""
    with smtp_server(tls="implicit", auth=True) as server:
        mailer = SMTPMailer(
            f"smtps://{CREDENTIALS}@127.0.0.1:{server.port}",
            sender="app@example.com",
            tls_context=server.client_tls,
        )
        await mailer.send(MESSAGE)
    assert server.logins == [USER]
    assert len(server.messages) == 1


async def test_starttls_is_required_not_optional() -> None:
    """smtp:// to a server without STARTTLS fails instead of sending in the clear."""
    with smtp_server(tls="none") as server:
        mailer = SMTPMailer(f"smtp://127.0.0.1:{server.port}", sender="app@example.com")
        with pytest.raises(MailError, match="SMTP delivery"):
            await mailer.send(MESSAGE)
    assert server.messages == []


async def test_untrusted_certificate_fails() -> None:
    """A certificate the client does not trust fails delivery."""
    with smtp_server(tls="implicit") as server:
        mailer = SMTPMailer(
            f"smtps://127.0.0.1:{server.port}",
            sender="app@example.com",
            tls_context=ssl.create_default_context(),
        )
        with pytest.raises(MailError):
            await mailer.send(MESSAGE)
    assert server.messages == []


async def test_plain_smtp_without_login_delivers() -> None:
    """starttls=false sends in the clear to a local relay (no credentials)."""
    with smtp_server(tls="none") as server:
        mailer = SMTPMailer(f"smtp://127.0.0.1:{server.port}?starttls=false", sender="a@b.example")
        await mailer.send(MESSAGE)
    assert len(server.messages) == 1


async def test_wrong_password_fails() -> None:
    """A login the server refuses is a MailError."""
    with smtp_server(tls="starttls", auth=True) as server:
        mailer = SMTPMailer(
            f"smtp://{USER}:wrong@127.0.0.1:{server.port}",
            sender="app@example.com",
            tls_context=server.client_tls,
        )
        with pytest.raises(MailError):
            await mailer.send(MESSAGE)
    assert server.messages == []


def test_plaintext_credentials_are_refused_unless_allowed() -> None:
    """Credentials over plain SMTP are refused by default (production), allowed on request."""
    url = "smtp://user:pw@mail.example:25?starttls=false"
    with pytest.raises(ConfigurationError, match="without TLS"):
        SMTPMailer(url, sender="a@b.example")
    assert SMTPMailer(url, sender="a@b.example", allow_plaintext_auth=True).settings.tls == "none"


@pytest.fixture
async def silent_port() -> AsyncIterator[int]:
    """A port that accepts connections and never says a word."""
    held: list[asyncio.StreamWriter] = []

    async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)

    server = await asyncio.start_server(accept, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield port
    finally:
        for writer in held:
            writer.close()
        server.close()
        await server.wait_closed()


async def test_server_that_never_answers_times_out(silent_port: int) -> None:
    """A server that accepts but never greets fails after the timeout, not later."""
    mailer = SMTPMailer(f"smtp://127.0.0.1:{silent_port}", sender="a@b.example", timeout=0.3)
    started = time.monotonic()
    with pytest.raises(MailError, match="Timeout"):
        await mailer.send(MESSAGE)
    assert time.monotonic() - started < 5


async def test_connection_refused_is_a_mail_error() -> None:
    """Nothing listening: a MailError, not an OSError."""
    port = free_port()
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", port)) != 0
    mailer = SMTPMailer(f"smtp://127.0.0.1:{port}", sender="a@b.example", timeout=2)
    with pytest.raises(MailError):
        await mailer.send(MESSAGE)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("smtp://mail.example", ("mail.example", 587, "starttls", None, None)),
        ("smtps://u:p%40ss@mail.example", ("mail.example", 465, "implicit", "u", "p@ss")),
        ("smtp://mail.example:25?starttls=false", ("mail.example", 25, "none", None, None)),
    ],
)
def test_parse_smtp_url(url: str, expected: tuple[object, ...]) -> None:
    """Schemes choose TLS and default ports; credentials are percent-decoded."""
    s = parse_smtp_url(url)
    assert (s.host, s.port, s.tls, s.username, s.password) == expected
    assert "p@ss" not in repr(s)


@pytest.mark.parametrize(
    "url",
    [
        "http://mail.example",
        "smtp://",
        "smtp://mail.example:99999",
        "smtps://h?starttls=false",
        "smtp://h?x=1",
    ],
)
def test_bad_smtp_urls(url: str) -> None:
    """Bad URLs are configuration errors."""
    with pytest.raises(ConfigurationError):
        parse_smtp_url(url)


async def test_the_envelope_is_the_message_recipient_not_what_to_parses_as() -> None:
    """RCPT TO is exactly ``message.to`` and MAIL FROM the sender's address, given explicitly.

    ``Message`` refuses a list in ``to``; this forces one past it (as a future bug might) to show
    the mailer never lets a header parser decide the recipients.
    """
    message = Message(to="attacker@evil.com", subject="s", text="t")
    object.__setattr__(message, "to", "attacker@evil.com, victim@corp.com")
    with smtp_server(tls="none") as server:
        mailer = SMTPMailer(
            f"smtp://127.0.0.1:{server.port}?starttls=false", sender="Site <app@example.com>"
        )
        with contextlib.suppress(MailError):  # the server may refuse the odd RCPT outright
            await mailer.send(message)
    recipients = [rcpt for envelope, _ in server.messages for rcpt in envelope.rcpt_tos]
    assert "victim@corp.com" not in recipients
    assert all(envelope.mail_from == "app@example.com" for envelope, _ in server.messages)
