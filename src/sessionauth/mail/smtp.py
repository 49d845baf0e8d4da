"""Delivery over SMTP (aiosmtplib), configured by one URL.

* ``smtp://user:password@host:587``: STARTTLS, required (a server that does not offer it
  fails delivery rather than receiving the message in the clear); port 587 by default.
* ``smtps://user:password@host:465``: TLS from the first byte; port 465 by default.
* ``smtp://host:25?starttls=false``: plain SMTP, for a relay on the same host or network.
  With credentials it is refused unless ``allow_plaintext_auth`` (the reference server allows
  it only in development): a password sent in the clear is a password given away.

The user and password are percent-decoded. Certificates are verified against the system's
trust store (or the ``tls_context`` given); every connection is bounded by ``timeout``.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from email.utils import parseaddr
from urllib.parse import parse_qsl, unquote, urlsplit

import aiosmtplib

from sessionauth.errors import ConfigurationError
from sessionauth.mail.message import MailError, Message

__all__ = ["DEFAULT_TIMEOUT", "SMTPMailer", "SMTPSettings", "parse_smtp_url"]

DEFAULT_TIMEOUT = 10.0
"""Seconds connecting, greeting, TLS and each SMTP command may take."""
_PORTS = {"smtp": 587, "smtps": 465}
_TRUE, _FALSE = ("true", "1", "yes", "on"), ("false", "0", "no", "off")


@dataclass(frozen=True, slots=True)
class SMTPSettings:
    """What an SMTP URL says (see the module docstring).

    Attributes:
        host: The server.
        port: Its port.
        tls: ``"implicit"`` (smtps), ``"starttls"`` or ``"none"``.
        username: The login, or ``None`` for no authentication.
        password: The password (``repr`` hides it).
    """

    host: str
    port: int
    tls: str
    username: str | None = None
    password: str | None = None

    def __repr__(self) -> str:
        return f"SMTPSettings(host={self.host!r}, port={self.port}, tls={self.tls!r})"


def parse_smtp_url(url: str) -> SMTPSettings:
    """Parse ``smtp://`` or ``smtps://`` (see the module docstring).

    Raises:
        ConfigurationError: For another scheme, no host, a bad port or an unknown option
            (the message never shows the password).
    """
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    if scheme not in _PORTS:
        raise ConfigurationError("the SMTP URL must start with smtp:// or smtps://")
    try:
        host, port = parts.hostname, parts.port
    except ValueError:
        raise ConfigurationError("the SMTP URL has an invalid port") from None
    if not host:
        raise ConfigurationError("the SMTP URL names no host")
    tls = "implicit" if scheme == "smtps" else "starttls"
    for name, value in parse_qsl(parts.query, keep_blank_values=True):
        if name != "starttls" or scheme != "smtp" or value.lower() not in _TRUE + _FALSE:
            raise ConfigurationError(
                f"the SMTP URL option {name!r} is unknown (smtp:// takes starttls=true|false)"
            )
        tls = "starttls" if value.lower() in _TRUE else "none"
    return SMTPSettings(
        host=host,
        port=port or _PORTS[scheme],
        tls=tls,
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password is not None else None,
    )


class SMTPMailer:
    """Sends each message over a fresh SMTP connection.

    Args:
        url: ``smtp://…`` or ``smtps://…`` (see the module docstring).
        sender: The ``From`` address.
        timeout: Seconds each step of a delivery may take.
        tls_context: Verifies the server's certificate; the default trusts the system's CAs.
        allow_plaintext_auth: Accept credentials over plain SMTP (``starttls=false``).

    Raises:
        ConfigurationError: For a bad URL or timeout, or credentials over plain SMTP unless
            ``allow_plaintext_auth``.
    """

    def __init__(
        self,
        url: str,
        *,
        sender: str,
        timeout: float = DEFAULT_TIMEOUT,
        tls_context: ssl.SSLContext | None = None,
        allow_plaintext_auth: bool = False,
    ):
        self.settings = parse_smtp_url(url)
        if self.settings.tls == "none" and self.settings.username and not allow_plaintext_auth:
            raise ConfigurationError(
                "refusing to send SMTP credentials without TLS: use smtps:// or STARTTLS "
                "(drop starttls=false)"
            )
        if not timeout > 0:
            raise ConfigurationError("the SMTP timeout must be a positive number of seconds")
        self.sender = sender
        # The envelope sender: the bare address of a From such as "Site <noreply@example.com>".
        self._envelope_sender = parseaddr(sender)[1] or sender
        self._timeout = timeout
        self._tls_context = tls_context or ssl.create_default_context()

    async def send(self, message: Message) -> None:
        """Deliver ``message`` in one SMTP session.

        Raises:
            MailError: If the server cannot be reached, refuses, times out or fails TLS.
        """
        s = self.settings
        try:
            # The envelope is given, never derived from the headers: aiosmtplib would parse
            # To/Cc themselves, and a parser's idea of a recipient list is not ours.
            await aiosmtplib.send(
                message.to_email(self.sender),
                sender=self._envelope_sender,
                recipients=[message.to],
                hostname=s.host,
                port=s.port,
                username=s.username,
                password=s.password,
                use_tls=s.tls == "implicit",
                start_tls=s.tls == "starttls",
                tls_context=self._tls_context if s.tls != "none" else None,
                timeout=self._timeout,
            )
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            # The reason, not the message: its body carries a token.
            raise MailError(
                f"SMTP delivery via {s.host}:{s.port} failed: {type(exc).__name__}: {exc}",
                permanent=_permanent(exc),
            ) from exc


def _permanent(exc: BaseException) -> bool:
    """Whether the server refused for good (5xx): a 4xx, timeout or lost connection may pass."""
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
        return all(500 <= refused.code < 600 for refused in exc.recipients)
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        return 500 <= exc.code < 600
    return False
