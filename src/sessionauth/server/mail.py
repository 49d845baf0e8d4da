"""The reference server's account mail: which mailer the settings ask for, and its outbox.

* ``SESSIONAUTH_SMTP_URL`` set: :class:`~sessionauth.mail.SMTPMailer` (credentials without
  TLS only in development).
* Unset, in development: :class:`~sessionauth.mail.FileMailer` into ``<data dir>/mail``.
* Unset, in production: no mailer; :func:`open_outbox` returns ``None`` and routes that would
  send mail must say it is not configured.

The outbox runs with the app's lifespan (``app.state.outbox``), counting each outcome in
``sessionauth_mail_total``; the templates are ``app.state.mail_templates``.
"""

from __future__ import annotations

from sessionauth.mail import FileMailer, Mailer, MailTemplates, Outbox, SMTPMailer
from sessionauth.server.metrics import Metrics
from sessionauth.server.settings import Settings

__all__ = ["MAIL_DIR", "mail_templates", "open_mailer", "open_outbox"]

MAIL_DIR = "mail"
"""The data directory's subdirectory for development mail."""


def open_mailer(settings: Settings) -> Mailer | None:
    """Return the mailer the settings ask for, or ``None`` (production without SMTP).

    Raises:
        ConfigurationError: For a bad SMTP URL, or credentials without TLS in production.
    """
    if settings.smtp_url is not None:
        return SMTPMailer(
            settings.smtp_url.get_secret_value(),
            sender=settings.mail_sender,
            allow_plaintext_auth=settings.plaintext_smtp_auth_allowed,
        )
    if settings.file_mail_allowed:
        return FileMailer(settings.data_dir / MAIL_DIR, sender=settings.mail_sender)
    return None


def open_outbox(settings: Settings, metrics: Metrics) -> Outbox | None:
    """Return an outbox (not yet started) for the settings' mailer, or ``None`` without one."""
    mailer = open_mailer(settings)
    if mailer is None:
        return None
    counters = {
        outcome: metrics.mail.labels(outcome)
        for outcome in ("sent", "retried", "failed", "dropped")
    }
    return Outbox(mailer, on_outcome=lambda outcome: counters[outcome].inc())


def mail_templates(settings: Settings) -> MailTemplates:
    """Return the account mail templates (``SESSIONAUTH_MAIL_TEMPLATES`` first)."""
    return MailTemplates(directory=settings.mail_templates)
