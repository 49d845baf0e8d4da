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
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Literal

__all__ = ["Courier", "Letter", "LetterKind", "Postbox"]

logger = logging.getLogger("sessionauth.mail")

LetterKind = Literal[
    "verify-email",
    "finish-signup",
    "account-exists",
    "reset-password",
    "change-email",
    "email-changed",
]
"""Which mail: ``verify-email`` (confirm the address of a new account), ``finish-signup``
(a sign-up for an address whose account was never confirmed: choose a password to finish it),
``account-exists`` (a sign-up or an email change named an address that has an account),
``reset-password``, ``change-email`` (confirm a new address) and ``email-changed`` (a notice
to the old address)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Letter:
    """One account mail to send.

    Attributes:
        kind: Which mail (see :data:`LetterKind`).
        to: The recipient's address.
        link: The absolute URL the mail's button opens (with its single-use token), if any.
        new_email: The account's new address (``change-email`` and ``email-changed``).
    """

    kind: LetterKind
    to: str
    link: str | None = None
    new_email: str | None = None


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
