"""The account mails, rendered from Jinja2 templates an application can override.

Each kind of mail (:data:`KINDS`) has three templates: ``<kind>.subject.txt`` (one line),
``<kind>.txt`` (the plain-text body) and ``<kind>.html`` (the HTML body, autoescaped). The
defaults ship in this package; a directory given as ``directory`` (the reference server's
``SESSIONAUTH_MAIL_TEMPLATES``) or a Jinja2 ``loader`` is searched first, so an application
overrides one file at a time. Undefined variables are errors, not silent blanks.

Every template sees ``email`` (the recipient), ``app_name``, and what the caller passes:
``link`` (with the token) and ``expires_in`` (``"30 minutes"``) for the kinds with a link.
"""

from __future__ import annotations

import os
from typing import Any, Final

import jinja2

from sessionauth.mail.message import Message

__all__ = [
    "ACCOUNT_EXISTS",
    "CHANGE_EMAIL",
    "KINDS",
    "RESET_PASSWORD",
    "VERIFY_EMAIL",
    "MailTemplates",
    "duration",
]

VERIFY_EMAIL: Final = "verify_email"
"""Confirm the address of a new account (context: ``link``, ``expires_in``)."""
RESET_PASSWORD: Final = "reset_password"  # noqa: S105 - a template name, not a password
"""Set a new password (context: ``link``, ``expires_in``)."""
ACCOUNT_EXISTS: Final = "account_exists"
"""Someone signed up with an address that has an account (context: ``login_link``,
``reset_link``)."""
CHANGE_EMAIL: Final = "change_email"
"""Confirm a new address for an account (context: ``link``, ``expires_in``)."""
KINDS: Final = (VERIFY_EMAIL, RESET_PASSWORD, ACCOUNT_EXISTS, CHANGE_EMAIL)
"""Every kind of mail with default templates."""


def duration(seconds: float) -> str:
    """``1800`` -> ``"30 minutes"``, ``86400`` -> ``"24 hours"``: a lifetime for a mail."""
    minutes = round(seconds / 60)
    if minutes % 60 or minutes < 60:
        return f"{minutes} minute{'s' if minutes != 1 else ''}"
    hours = minutes // 60
    return f"{hours} hour{'s' if hours != 1 else ''}"


class MailTemplates:
    """Renders account mails into :class:`~sessionauth.mail.Message` objects.

    Args:
        directory: Templates searched before the defaults.
        loader: A Jinja2 loader searched before the defaults (and after ``directory``).
        app_name: What the mails call the application.
    """

    def __init__(
        self,
        *,
        directory: str | os.PathLike[str] | None = None,
        loader: jinja2.BaseLoader | None = None,
        app_name: str = "sessionauth",
    ):
        loaders: list[jinja2.BaseLoader] = []
        if directory is not None:
            loaders.append(jinja2.FileSystemLoader(os.fspath(directory)))
        if loader is not None:
            loaders.append(loader)
        loaders.append(jinja2.PackageLoader("sessionauth.mail", "templates"))
        self.environment = jinja2.Environment(
            loader=jinja2.ChoiceLoader(loaders),
            autoescape=jinja2.select_autoescape(enabled_extensions=("html",), default=False),
            undefined=jinja2.StrictUndefined,
            keep_trailing_newline=True,
        )
        self.app_name = app_name

    def render(self, kind: str, *, to: str, **context: Any) -> Message:
        """Return the ``kind`` mail for ``to``.

        Raises:
            jinja2.TemplateNotFound: For a kind without templates.
            jinja2.UndefinedError: If a template uses a variable not given.
        """
        values = {"email": to, "app_name": self.app_name, **context}
        get = self.environment.get_template
        subject = " ".join(get(f"{kind}.subject.txt").render(values).split())
        return Message(
            to=to,
            subject=subject,
            text=get(f"{kind}.txt").render(values),
            html=get(f"{kind}.html").render(values),
        )
