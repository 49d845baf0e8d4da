"""The lifecycle's postbox in the reference server: letters rendered, then queued to be sent.

:func:`postbox` turns each :class:`~sessionauth.auth.letters.Letter` of the account lifecycle
into a message rendered from the server's mail templates (``SESSIONAUTH_MAIL_TEMPLATES``
first) and puts it on the outbox of :mod:`sessionauth.server.mail`, which sends it in the
background with bounded retries. Without an outbox (production without
``SESSIONAUTH_SMTP_URL``) the routes that would send mail answer 503 before any letter is
written (see :func:`sessionauth.server.lifecycle_api.mail_configured`); a letter that still
arrives is logged as not sent.
"""

from __future__ import annotations

import logging

from sessionauth.auth.letters import Letter, Postbox
from sessionauth.mail import MailTemplates, Outbox
from sessionauth.mail.templates import duration

__all__ = ["postbox"]

logger = logging.getLogger("sessionauth.mail")


def postbox(outbox: Outbox | None, templates: MailTemplates) -> Postbox:
    """The lifecycle's postbox: render each letter and queue it on ``outbox``."""

    async def post(letter: Letter) -> None:
        if outbox is None:
            logger.error("%s mail not sent: SESSIONAUTH_SMTP_URL is not set", letter.kind)
            return
        context = dict(letter.context)
        if letter.lifetime is not None:
            context["expires_in"] = duration(letter.lifetime)
        outbox.send(templates.render(letter.kind, to=letter.to, **context))

    return post
