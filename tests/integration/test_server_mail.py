"""The server's mail settings: which mailer runs, production's refusals, /metrics counts."""

from __future__ import annotations

from pathlib import Path

import pytest

from sessionauth.auth.passwords import PasswordHasher
from sessionauth.errors import ConfigurationError
from sessionauth.mail import FileMailer, Message, Outbox, SMTPMailer
from sessionauth.server.app import create_app
from sessionauth.server.settings import Settings, load_settings
from sessionauth.server.settings_findings import findings
from tests.support.services.ports import free_port
from tests.support.smtp_server import smtp_server

MESSAGE = Message(to="alice@example.com", subject="Hi", text="body")


def settings(tmp_path: Path, env: str = "development", **overrides: object) -> Settings:
    return load_settings(
        env=env,
        secret="k" * 48,
        database_url=f"sqlite:///{tmp_path / 'users.db'}",
        data_dir=tmp_path / "data",
        **overrides,
    )


async def test_development_without_smtp_writes_files(tmp_path: Path) -> None:
    """No SMTP URL in development: the app's outbox writes mail under the data directory."""
    app = create_app(settings(tmp_path), hasher=PasswordHasher.for_tests())
    async with app.router.lifespan_context(app):
        outbox: Outbox = app.state.outbox
        assert isinstance(outbox.mailer, FileMailer)
        message = app.state.mail_templates.render(
            "verify_email", to="a@example.com", link="https://x/verify#t", expires_in="24 hours"
        )
        assert outbox.send(message)
        await outbox.join()
    [path] = (tmp_path / "data" / "mail").iterdir()
    assert "https://x/verify#t" in path.read_text()


async def test_smtp_url_sends_over_smtp_and_counts(tmp_path: Path) -> None:
    """With SESSIONAUTH_SMTP_URL, mail reaches the SMTP server and /metrics counts it."""
    with smtp_server() as server:
        chosen = settings(
            tmp_path,
            smtp_url=f"smtp://127.0.0.1:{server.port}?starttls=false",
            mail_from="App <app@example.com>",
        )
        app = create_app(chosen, hasher=PasswordHasher.for_tests())
        async with app.router.lifespan_context(app):
            outbox: Outbox = app.state.outbox
            assert isinstance(outbox.mailer, SMTPMailer)
            outbox.send(MESSAGE)
            await outbox.join()
            rendered = app.state.metrics.render()[0].decode()
    assert server.messages[0][0].mail_from == "app@example.com"
    assert 'sessionauth_mail_total{outcome="sent"} 1.0' in rendered


async def test_smtp_outage_is_counted_not_raised(tmp_path: Path) -> None:
    """An SMTP server that is down costs the app nothing but a failed count."""
    chosen = settings(
        tmp_path, smtp_url=f"smtp://127.0.0.1:{free_port()}", mail_from="app@example.com"
    )
    app = create_app(chosen, hasher=PasswordHasher.for_tests())
    async with app.router.lifespan_context(app):
        outbox: Outbox = app.state.outbox
        outbox._retries = 0  # one try: this test is about counting, not waiting
        outbox.send(MESSAGE)
        await outbox.join()
        rendered = app.state.metrics.render()[0].decode()
    assert 'sessionauth_mail_total{outcome="failed"} 1.0' in rendered


def test_production_refuses_plaintext_credentials(tmp_path: Path) -> None:
    """Production refuses an SMTP URL that would send its password without TLS."""
    chosen = settings(
        tmp_path,
        env="production",
        smtp_url="smtp://u:p@mail.example:25?starttls=false",
        mail_from="app@example.com",
    )
    assert any("without TLS" in item for item in findings(chosen))
    with pytest.raises(ConfigurationError, match="without TLS"):
        create_app(chosen, hasher=PasswordHasher.for_tests())


def test_production_without_smtp_sends_nothing(tmp_path: Path) -> None:
    """Production never writes mail to files: without an SMTP URL there is no outbox."""
    app = create_app(settings(tmp_path, env="production"), hasher=PasswordHasher.for_tests())
    assert app.state.outbox is None


@pytest.mark.parametrize(
    ("overrides", "finding"),
    [
        ({"smtp_url": "http://mail.example"}, "SESSIONAUTH_SMTP_URL"),
        ({"smtp_url": "smtps://mail.example"}, "SESSIONAUTH_MAIL_FROM"),
    ],
)
def test_mail_findings(tmp_path: Path, overrides: dict[str, str], finding: str) -> None:
    """A bad SMTP URL, or SMTP without a From address, is a finding."""
    assert any(finding in item for item in findings(settings(tmp_path, **overrides)))


@pytest.mark.parametrize("sender", ["not an address", "a@example.com\r\nBcc: x@example.com"])
def test_bad_mail_from_is_refused(tmp_path: Path, sender: str) -> None:
    """SESSIONAUTH_MAIL_FROM must be one address, without line breaks."""
    with pytest.raises(ConfigurationError, match="SESSIONAUTH_MAIL_FROM"):
        settings(tmp_path, mail_from=sender)
