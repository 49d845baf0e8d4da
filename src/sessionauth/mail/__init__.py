"""Account mail: messages, their delivery (SMTP or files) and the background outbox.

Needs the ``mail`` extra (aiosmtplib, Jinja2); ``import sessionauth`` never imports this.

* :class:`Message` and the :class:`Mailer` protocol; delivery failures raise
  :class:`MailError`.
* :class:`SMTPMailer` (``smtp://`` with STARTTLS, ``smtps://``) and :class:`FileMailer`
  (development: one file per message).
* :class:`Outbox`: sends in the background with bounded retries, so no HTTP answer depends on
  the mail server.
* :class:`MailTemplates`: the verification, password reset, "you already have an account" and
  email change mails, overridable.
"""

from sessionauth.mail.files import FileMailer
from sessionauth.mail.message import Mailer, MailError, Message
from sessionauth.mail.outbox import Outbox, Outcome
from sessionauth.mail.smtp import SMTPMailer, SMTPSettings, parse_smtp_url
from sessionauth.mail.templates import MailTemplates

__all__ = [
    "FileMailer",
    "MailError",
    "MailTemplates",
    "Mailer",
    "Message",
    "Outbox",
    "Outcome",
    "SMTPMailer",
    "SMTPSettings",
    "parse_smtp_url",
]
