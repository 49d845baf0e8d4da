"""The outbox: background delivery to a real SMTP server, bounded retries, nothing escapes."""

from __future__ import annotations

import asyncio
import logging
import stat
from collections import Counter
from pathlib import Path

import pytest

from sessionauth.mail import FileMailer, MailError, Message, Outbox, Outcome, SMTPMailer
from tests.support.services.ports import free_port
from tests.support.smtp_server import BUSY_DOMAIN, REFUSED_DOMAIN, smtp_server

TOKEN = "tok_SECRET_abcdefghijklmnopqrstuvwxyz0123456"
MESSAGE = Message(to="alice@example.com", subject="Reset", text=f"link: {TOKEN}", html=None)


class Recorder:
    """Records the outbox's waits (instead of sleeping) and outcomes."""

    def __init__(self) -> None:
        self.waits: list[float] = []
        self.outcomes: Counter[Outcome] = Counter()

    async def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)

    def outcome(self, outcome: Outcome) -> None:
        self.outcomes[outcome] += 1


async def test_outbox_delivers_in_the_background() -> None:
    """`send` returns True at once; the worker delivers to the real server."""
    recorder = Recorder()
    with smtp_server() as server:
        mailer = SMTPMailer(f"smtp://127.0.0.1:{server.port}?starttls=false", sender="a@b.example")
        async with Outbox(mailer, on_outcome=recorder.outcome) as outbox:
            assert outbox.send(MESSAGE) is True
            await outbox.join()
    assert len(server.messages) == 1
    assert recorder.outcomes == {"sent": 1}


async def test_outage_is_retried_bounded_and_counted(caplog: pytest.LogCaptureFixture) -> None:
    """Connection refused: 1 + 3 tries with doubling waits, counted, logged without the token."""
    recorder = Recorder()
    mailer = SMTPMailer(f"smtp://127.0.0.1:{free_port()}", sender="a@b.example", timeout=2)
    outbox = Outbox(
        mailer,
        retries=3,
        backoff=2,
        max_backoff=5,
        sleep=recorder.sleep,
        on_outcome=recorder.outcome,
    )
    with caplog.at_level(logging.WARNING, logger="sessionauth.mail"):
        async with outbox:
            assert outbox.send(MESSAGE) is True
            await outbox.join()
    assert recorder.waits == [2, 4, 5]
    assert recorder.outcomes == {"retried": 3, "failed": 1}
    assert "given up after 4 tries" in caplog.text
    assert "example.com" in caplog.text
    assert TOKEN not in caplog.text


class FlakyMailer:
    """Fails a given number of times, then delivers; counts calls."""

    def __init__(self, failures: int, error: Exception) -> None:
        self.failures, self.error, self.calls, self.sent = failures, error, 0, 0

    async def send(self, message: Message) -> None:
        self.calls += 1
        if self.calls <= self.failures:
            raise self.error
        self.sent += 1


async def test_a_retry_can_succeed() -> None:
    """Two failures then success: delivered once, two retries counted."""
    recorder = Recorder()
    mailer = FlakyMailer(2, MailError("down"))
    async with Outbox(mailer, sleep=recorder.sleep, on_outcome=recorder.outcome) as outbox:
        outbox.send(MESSAGE)
        await outbox.join()
    assert (mailer.calls, mailer.sent) == (3, 1)
    assert recorder.outcomes == {"retried": 2, "sent": 1}


async def test_worker_survives_a_mailer_bug() -> None:
    """An unexpected exception fails that message; the next one is still delivered."""
    recorder = Recorder()
    mailer = FlakyMailer(1, RuntimeError("bug"))
    async with Outbox(mailer, retries=0, on_outcome=recorder.outcome) as outbox:
        outbox.send(MESSAGE)
        outbox.send(MESSAGE)
        await outbox.join()
    assert recorder.outcomes == {"failed": 1, "sent": 1}


async def test_full_or_stopped_outbox_drops_without_raising() -> None:
    """Beyond the queue bound, or before start, `send` returns False and counts a drop."""
    recorder = Recorder()
    outbox = Outbox(FlakyMailer(0, MailError("x")), max_queue=1, on_outcome=recorder.outcome)
    assert outbox.send(MESSAGE) is False
    await outbox.start()
    try:
        results = [outbox.send(MESSAGE) for _ in range(3)]
    finally:
        await outbox.stop()
    assert results == [True, False, False]
    assert recorder.outcomes["dropped"] == 3


async def test_file_mailer_writes_private_files(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Development mail lands in a 0600 file; the log names the file, never the token."""
    mailer = FileMailer(tmp_path / "mail", sender="dev@localhost")
    with caplog.at_level(logging.INFO, logger="sessionauth.mail"):
        await mailer.send(MESSAGE)
    [path] = (tmp_path / "mail").iterdir()
    assert TOKEN in path.read_text()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert TOKEN not in caplog.text
    assert path.name in caplog.text


async def test_file_mailer_failure_is_a_mail_error(tmp_path: Path) -> None:
    """An unwritable directory is a MailError, which the outbox retries."""
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(MailError):
        await FileMailer(blocker / "mail", sender="dev@localhost").send(MESSAGE)


class GatedSleep:
    """A backoff wait that lasts until the test opens the gate (records each wait asked)."""

    def __init__(self) -> None:
        self.waits: list[float] = []
        self.gate = asyncio.Event()

    async def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)
        await self.gate.wait()


async def test_a_refused_recipient_fails_at_once_and_a_busy_one_is_retried() -> None:
    """550 from a real server: failed after one try; 451: retried (a 4xx may pass)."""
    recorder = Recorder()
    with smtp_server() as server:
        mailer = SMTPMailer(f"smtp://127.0.0.1:{server.port}?starttls=false", sender="a@b.example")
        async with Outbox(
            mailer, retries=2, sleep=recorder.sleep, on_outcome=recorder.outcome
        ) as outbox:
            outbox.send(Message(to=f"x@{REFUSED_DOMAIN}", subject="s", text="t"))
            await outbox.join()
            assert recorder.outcomes == {"failed": 1}
            assert recorder.waits == []
            outbox.send(Message(to=f"x@{BUSY_DOMAIN}", subject="s", text="t"))
            await outbox.join()
    assert recorder.outcomes == {"failed": 2, "retried": 2}
    assert recorder.waits == [2, 4]
    assert server.messages == []


@pytest.mark.parametrize("kind", ["permanent", "bug"])
async def test_a_permanent_failure_or_a_bug_is_not_retried(kind: str) -> None:
    """No waits, no retry: one try, counted as failed."""
    error = MailError("550 refused", permanent=True) if kind == "permanent" else ValueError("x")
    recorder = Recorder()
    mailer = FlakyMailer(1, error)
    async with Outbox(mailer, sleep=recorder.sleep, on_outcome=recorder.outcome) as outbox:
        outbox.send(MESSAGE)
        await outbox.join()
    assert (mailer.calls, recorder.waits) == (1, [])
    assert recorder.outcomes == {"failed": 1}


class OneBadRecipient:
    """Fails every message to ``bad.example`` (transiently); delivers the rest in order."""

    def __init__(self) -> None:
        self.delivered: list[str] = []
        self.good_sent = asyncio.Event()

    async def send(self, message: Message) -> None:
        if message.domain == "bad.example":
            raise MailError("451 try later")
        self.delivered.append(message.to)
        self.good_sent.set()


async def test_retries_wait_aside_so_mail_behind_them_goes_out_at_once() -> None:
    """Two failing messages, then a good one: it is sent while their backoffs still run."""
    mailer, waits = OneBadRecipient(), GatedSleep()
    async with Outbox(mailer, retries=3, sleep=waits.sleep) as outbox:
        outbox.send(Message(to="one@bad.example", subject="s", text="t"))
        outbox.send(Message(to="two@bad.example", subject="s", text="t"))
        outbox.send(Message(to="good@example.com", subject="s", text="t"))
        # Bounded only so a broken outbox fails instead of hanging; no wait is ever released.
        await asyncio.wait_for(mailer.good_sent.wait(), timeout=10)
        assert mailer.delivered == ["good@example.com"]
        assert waits.waits == [2, 2]  # both bad messages are parked, neither holds the worker
        waits.gate.set()
        await outbox.join()
    assert mailer.delivered == ["good@example.com"]
