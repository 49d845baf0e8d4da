"""The outbox: mail goes out in the background, so no answer depends on it.

A route that may send mail (sign-up, "forgot password") calls :meth:`Outbox.send`, which only
puts the message on a queue and returns at once: the answer is the same, and takes the same
time, whether a message was queued or not, and whether the SMTP server is up or down. One
worker task, started and stopped with the application (``async with outbox``), delivers the
queue in order.

A failed delivery is retried a bounded number of times, waiting ``backoff``, then twice that,
and so on (never more than ``max_backoff``), through an injected ``sleep`` (tests do not
wait). Each outcome is logged to ``sessionauth.mail`` without the message's body (it carries
a token) and reported to ``on_outcome`` (the reference server counts them in ``/metrics``):
``sent``, ``retried``, ``failed`` (given up), ``dropped`` (queue full, or closed).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Literal, Self

from sessionauth.mail.message import Mailer, MailError, Message

__all__ = ["Outbox", "Outcome"]

logger = logging.getLogger("sessionauth.mail")

Outcome = Literal["sent", "retried", "failed", "dropped"]
"""What happened to one delivery attempt or message (see the module docstring)."""


def _ignore(outcome: Outcome) -> None:
    del outcome


class Outbox:
    """A queue of messages and the worker that delivers them.

    Args:
        mailer: Delivers one message (:class:`~sessionauth.mail.SMTPMailer`,
            :class:`~sessionauth.mail.FileMailer`).
        retries: Deliveries tried again after the first fails, at most.
        backoff: Seconds before the first retry; each further retry waits twice as long.
        max_backoff: The longest wait between two tries.
        max_queue: Messages waiting at most; beyond that, new ones are dropped (and counted).
        drain_timeout: Seconds :meth:`stop` lets the worker deliver what is queued.
        sleep: Waits between tries (``asyncio.sleep``; tests pass one that returns at once).
        on_outcome: Called with each outcome.

    Raises:
        ValueError: For a negative retry count or wait, or a queue bound below 1.
    """

    def __init__(
        self,
        mailer: Mailer,
        *,
        retries: int = 3,
        backoff: float = 2.0,
        max_backoff: float = 60.0,
        max_queue: int = 1000,
        drain_timeout: float = 5.0,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
        on_outcome: Callable[[Outcome], None] = _ignore,
    ):
        if retries < 0 or backoff < 0 or max_backoff < 0 or drain_timeout < 0 or max_queue < 1:
            raise ValueError("the outbox needs retries, waits >= 0 and max_queue >= 1")
        self.mailer = mailer
        self._retries = retries
        self._backoff = backoff
        self._max_backoff = max_backoff
        self._drain_timeout = drain_timeout
        self._sleep = sleep
        self._on_outcome = on_outcome
        self._queue: asyncio.Queue[Message] = asyncio.Queue(max_queue)
        self._worker: asyncio.Task[None] | None = None

    def send(self, message: Message) -> bool:
        """Queue ``message`` for delivery; return at once, never raise.

        Returns:
            Whether it was queued: ``False`` when the queue is full or the outbox is not
            running (the message is dropped, logged and counted).
        """
        if self._worker is None or self._worker.done():
            return self._drop(message, "the outbox is not running")
        try:
            self._queue.put_nowait(message)
        except asyncio.QueueFull:
            return self._drop(message, "the outbox is full")
        return True

    def _drop(self, message: Message, why: str) -> bool:
        logger.error("mail to %s dropped: %s", message.domain, why)
        self._on_outcome("dropped")
        return False

    async def start(self) -> None:
        """Start the worker (once)."""
        if self._worker is None:
            self._worker = asyncio.get_running_loop().create_task(self._run(), name="outbox")

    async def stop(self) -> None:
        """Deliver what is queued (up to ``drain_timeout`` seconds), then stop the worker."""
        worker, self._worker = self._worker, None
        if worker is None:
            return
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self._drain_timeout):
                await self._queue.join()
        worker.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await worker
        while not self._queue.empty():
            self._drop(self._queue.get_nowait(), "the server stopped before it was sent")

    async def join(self) -> None:
        """Wait until every queued message was delivered or given up (for tests)."""
        await self._queue.join()

    async def _run(self) -> None:
        while True:
            message = await self._queue.get()
            try:
                await self._deliver(message)
            finally:
                self._queue.task_done()

    async def _deliver(self, message: Message) -> None:
        wait = self._backoff
        for attempt in range(self._retries + 1):
            try:
                await self.mailer.send(message)
            except MailError as exc:
                reason = str(exc)
            except Exception as exc:
                logger.exception("mail to %s: the mailer failed unexpectedly", message.domain)
                reason = type(exc).__name__
            else:
                self._on_outcome("sent")
                return
            if attempt == self._retries:
                logger.error(
                    "mail to %s given up after %d tries: %s", message.domain, attempt + 1, reason
                )
                self._on_outcome("failed")
                return
            logger.warning(
                "mail to %s failed (try %d), retrying in %.0f s: %s",
                message.domain,
                attempt + 1,
                wait,
                reason,
            )
            self._on_outcome("retried")
            await self._sleep(wait)
            wait = min(wait * 2, self._max_backoff)

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()
