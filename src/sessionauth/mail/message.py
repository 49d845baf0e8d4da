"""One email, and what sends it: the :class:`Mailer` protocol.

A message is plain data (recipient, subject, text and HTML bodies); a mailer delivers it or
raises :class:`MailError`. Messages carry single-use tokens in their links, so no part of
sessionauth logs a body: only the recipient's domain and why delivery failed.
"""

from __future__ import annotations

from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Protocol

from sessionauth.addr_spec import addr_spec_problem
from sessionauth.errors import SessionAuthError

__all__ = ["MailError", "Mailer", "Message"]


class MailError(SessionAuthError):
    """A message could not be delivered (server down, refused, timed out, TLS failed).

    Args:
        reason: Why, without the message's body.
        permanent: Trying again cannot help (the server refused the recipient or the message
            with a 5xx answer): the outbox gives the message up at once instead of retrying.

    Attributes:
        permanent: See above; ``False`` (a transient failure, retried) unless said otherwise.
    """

    def __init__(self, reason: str, *, permanent: bool = False):
        super().__init__(reason)
        self.permanent = permanent


def _one_line(value: str, what: str) -> str:
    # A CR or LF in a header would let a value add headers of its own (header injection).
    if "\r" in value or "\n" in value:
        raise ValueError(f"the {what} of a message must be one line")
    return value


@dataclass(frozen=True, slots=True)
class Message:
    """One email to one recipient, with a plain-text and an HTML body.

    Attributes:
        to: The recipient's address.
        subject: One line.
        text: The plain-text body.
        html: The HTML body, or ``None`` for a text-only message.

    Raises:
        ValueError: If the recipient is not one plain ``local@domain`` address (a list or a
            display name would send the mail elsewhere than ``to`` says), or the subject
            contains a line break.
    """

    to: str
    subject: str
    text: str
    html: str | None = None

    def __post_init__(self) -> None:
        problem = addr_spec_problem(self.to)
        if problem is not None:
            raise ValueError(f"recipient: {problem}")
        _one_line(self.subject, "subject")

    @property
    def domain(self) -> str:
        """The recipient's domain: what logs may say about where a message went."""
        return self.to.rpartition("@")[2] or "?"

    def to_email(self, sender: str) -> EmailMessage:
        """Return the message as MIME (``multipart/alternative`` when it has HTML)."""
        mime = EmailMessage()
        mime["From"] = _one_line(sender, "sender")
        mime["To"] = self.to
        mime["Subject"] = self.subject
        mime["Date"] = formatdate(localtime=False, usegmt=True)
        mime["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2].rstrip(">") or None)
        mime.set_content(self.text)
        if self.html is not None:
            mime.add_alternative(self.html, subtype="html")
        return mime


class Mailer(Protocol):
    """Delivers messages; :class:`~sessionauth.mail.Outbox` calls it in the background."""

    async def send(self, message: Message) -> None:
        """Deliver ``message``.

        Raises:
            MailError: If it was not delivered (the outbox retries it).
        """
        ...  # pragma: no cover
