"""The outbox: mail goes out in the background, so no answer depends on it.

A route that may send mail (sign-up, "forgot password") calls :meth:`Outbox.send`, which only
puts the message on a queue and returns at once: the answer is the same, and takes the same
time, whether a message was queued or not, and whether the SMTP server is up or down. One
worker task, started and stopped with the application (``async with outbox``), delivers the
queue in order.

A permanent failure (a :class:`MailError` marked ``permanent``, such as a 5xx refusal, or any
other exception, a bug) gives the message up at once. A transient one (4xx, timeout, lost
connection) is retried a bounded number of times, waiting ``backoff``, then twice that, and so
on (never more than ``max_backoff``), through an injected ``sleep`` (tests do not wait). The
wait happens in a task of its own that puts the message back on the queue when it is over: the
worker goes on with the next message meanwhile, so failing mail never holds up good mail.
Each outcome is logged to ``sessionauth.mail`` without the message's body (it carries
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
        # Each entry is a message and how many times delivering it failed so far.
        self._queue: asyncio.Queue[tuple[Message, int]] = asyncio.Queue(max_queue)
        self._worker: asyncio.Task[None] | None = None
        # Messages waiting out their backoff before they go back on the queue.
        self._delayed: dict[asyncio.Task[None], Message] = {}
        # Messages accepted and not yet sent or given up (queued, being sent, or delayed); the
        # queue's own count cannot say this, as a retry leaves it and comes back later.
        self._pending = 0
        self._idle = asyncio.Event()
        self._idle.set()

    def send(self, message: Message) -> bool:
        """Queue ``message`` for delivery; return at once, never raise.

        Returns:
            Whether it was queued: ``False`` when the queue is full or the outbox is not
            running (the message is dropped, logged and counted).
        """
        if self._worker is None or self._worker.done():
            return self._drop(message, "the outbox is not running")
        try:
            self._queue.put_nowait((message, 0))
        except asyncio.QueueFull:
            return self._drop(message, "the outbox is full")
        self._pending += 1
        self._idle.clear()
        return True

    def _settled(self) -> None:
        # One accepted message was sent, given up or dropped.
        self._pending -= 1
        if self._pending == 0:
            self._idle.set()

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
        delayed, self._delayed = self._delayed, {}
        for task, message in delayed.items():
            task.cancel()
            self._drop(message, "the server stopped before a retry")
            self._settled()
        while not self._queue.empty():
            self._drop(self._queue.get_nowait()[0], "the server stopped before it was sent")
            self._settled()

    async def join(self) -> None:
        """Wait until every message was delivered or given up, retries included (for tests)."""
        await self._idle.wait()

    async def _run(self) -> None:
        while True:
            message, failures = await self._queue.get()
            try:
                await self._deliver(message, failures)
            finally:
                self._queue.task_done()

    async def _deliver(self, message: Message, failures: int) -> None:
        try:
            await self.mailer.send(message)
        except MailError as exc:
            reason, permanent = str(exc), exc.permanent
        except Exception as exc:
            # A bug, not an outage: trying the same thing again would fail the same way.
            logger.exception("mail to %s: the mailer failed unexpectedly", message.domain)
            reason, permanent = type(exc).__name__, True
        else:
            self._on_outcome("sent")
            self._settled()
            return
        tries = failures + 1
        if permanent or failures >= self._retries:
            logger.error("mail to %s given up after %d tries: %s", message.domain, tries, reason)
            self._on_outcome("failed")
            self._settled()
            return
        wait = min(self._backoff * 2**failures, self._max_backoff)
        logger.warning(
            "mail to %s failed (try %d), retrying in %.0f s: %s",
            message.domain,
            tries,
            wait,
            reason,
        )
        self._on_outcome("retried")
        task = asyncio.get_running_loop().create_task(self._requeue(message, tries, wait))
        self._delayed[task] = message

    async def _requeue(self, message: Message, failures: int, wait: float) -> None:
        """After ``wait`` seconds, put ``message`` back at the end of the queue."""
        try:
            await self._sleep(wait)
        finally:
            current = asyncio.current_task()
            if current is not None:
                self._delayed.pop(current, None)
        try:
            self._queue.put_nowait((message, failures))
        except asyncio.QueueFull:
            self._drop(message, "the outbox is full")
            self._settled()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()
