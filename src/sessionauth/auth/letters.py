"""Account mail as the lifecycle flows ask for it: :class:`Letter`, posted in the background.

The flows of :mod:`sessionauth.auth.lifecycle` decide *which* mail an address gets (a link to
verify it, a note that it already has an account, a reset link…) and hand a :class:`Letter`
to a :data:`Postbox`: an async callable that renders and sends it (the reference server's
renders the mail templates and queues the message on its outbox). How a letter reaches the
address is not the flows' business.

:class:`Courier` runs the preparation of a letter (issuing its token, reading the account)
and its posting *after* the request has been answered, in a task of its own. So the answer
of a sign-up or a "forgot password" does not wait for the token store or the mail server,
and cannot depend on which mail (if any) goes out: its status, body and timing are the same
for every address, and the same while the mail server is down.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Literal

__all__ = ["Courier", "Letter", "LetterKind", "Postbox"]

logger = logging.getLogger("sessionauth.mail")

LetterKind = Literal[
    "verify_email",
    "finish_signup",
    "account_exists",
    "reset_password",
    "change_email",
    "email_changed",
]
"""Which mail (the names of :class:`sessionauth.mail.MailTemplates`' templates):

* ``verify_email``: confirm the address of a new account (``link``);
* ``finish_signup``: a sign-up named an address whose account was never confirmed: choose
  its password to finish (``link``);
* ``account_exists``: a sign-up or an email change named an address that has an account
  (``login_link``, ``reset_link``);
* ``reset_password`` (``link``);
* ``change_email``: confirm a new address (``link``, ``new_email``);
* ``email_changed``: a notice to the old address (``new_email``, ``reset_link``).
"""


@dataclass(frozen=True, slots=True, kw_only=True)
class Letter:
    """One account mail to send.

    Attributes:
        kind: Which mail (see :data:`LetterKind`).
        to: The recipient's address.
        context: What the mail's template shows: links (with their single-use token), the
            new address of an email change.
        lifetime: Seconds the link's token lives (``expires_in`` in the mail), if it has one.
    """

    kind: LetterKind
    to: str
    context: Mapping[str, str] = field(default_factory=dict)
    lifetime: float | None = None


Postbox = Callable[[Letter], Awaitable[None]]
"""Renders and sends (or queues) one letter."""


class Courier:
    """Prepares and posts letters in background tasks, after the request's answer.

    Args:
        postbox: Where letters go.
    """

    def __init__(self, postbox: Postbox):
        self._postbox = postbox
        self._pending: set[asyncio.Task[None]] = set()

    def dispatch(self, prepare: Callable[[], Awaitable[Letter | None]]) -> None:
        """Run ``prepare`` and post the letter it returns (``None``: no mail), in a task."""
        task = asyncio.create_task(self._deliver(prepare), name="sessionauth-letter")
        # The loop keeps only weak references to tasks: hold each until it is done.
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _deliver(self, prepare: Callable[[], Awaitable[Letter | None]]) -> None:
        try:
            letter = await prepare()
            if letter is not None:
                await self._postbox(letter)
        except Exception:
            # Nobody waits for this task: the request was answered. Without this line a
            # failure (token store down, a template error) would vanish without a trace.
            logger.exception("an account mail could not be prepared or posted")

    async def drain(self) -> None:
        """Wait until every letter dispatched so far has been posted (or has failed)."""
        while self._pending:
            await asyncio.gather(*self._pending)
