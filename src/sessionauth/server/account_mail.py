"""The reference server's account mail: which mailer, the outbox, and the lifecycle's postbox.

* ``SESSIONAUTH_SMTP_URL`` set: :class:`~sessionauth.mail.SMTPMailer` (credentials over plain
  SMTP are allowed in development only).
* Unset in development: :class:`~sessionauth.mail.FileMailer`, one ``.eml`` file per mail
  under ``<SESSIONAUTH_DATA_DIR>/mail``, so sign-up and password reset work on a laptop.
* Unset in production: nothing can be sent; each mail fails (logged by the outbox), while the
  routes answer as always (they never depend on the mail).

Every mail goes through one :class:`~sessionauth.mail.Outbox` (background, bounded retries),
rendered from :class:`~sessionauth.mail.MailTemplates`: :func:`postbox` turns the
lifecycle's :class:`~sessionauth.auth.letters.Letter` into a message on that outbox.
"""

from __future__ import annotations

from sessionauth.auth.letters import Letter, Postbox
from sessionauth.mail import FileMailer, Mailer, MailError, MailTemplates, Message, Outbox
from sessionauth.mail.smtp import SMTPMailer
from sessionauth.mail.templates import duration
from sessionauth.server.settings import Settings

__all__ = ["open_outbox", "postbox"]


class _NoMailer:
    """Production without ``SESSIONAUTH_SMTP_URL``: every delivery fails, saying why."""

    async def send(self, message: Message) -> None:
        """Refuse ``message``.

        Raises:
            MailError: Always.
        """
        del message
        raise MailError("no SMTP server configured: set SESSIONAUTH_SMTP_URL")


def _mailer(settings: Settings) -> Mailer:
    if settings.smtp_url is not None:
        return SMTPMailer(
            settings.smtp_url.get_secret_value(),
            sender=settings.mail_from,
            allow_plaintext_auth=not settings.production,
        )
    if settings.production:
        return _NoMailer()
    return FileMailer(settings.data_dir / "mail", sender=settings.mail_from)


def open_outbox(settings: Settings) -> Outbox:
    """The outbox the settings describe; start it with ``async with``.

    Raises:
        ConfigurationError: For an invalid ``SESSIONAUTH_SMTP_URL`` (the message hides the
            password).
    """
    retries = 0 if settings.smtp_url is None and settings.production else 3
    return Outbox(_mailer(settings), retries=retries)


def postbox(outbox: Outbox, templates: MailTemplates) -> Postbox:
    """The lifecycle's postbox: render each letter and queue it on ``outbox``."""

    async def post(letter: Letter) -> None:
        context = dict(letter.context)
        if letter.lifetime is not None:
            context["expires_in"] = duration(letter.lifetime)
        outbox.send(templates.render(letter.kind, to=letter.to, **context))

    return post
