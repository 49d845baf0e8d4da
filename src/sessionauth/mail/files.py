"""Development delivery: each message becomes a file (``.eml``) in a directory.

Nothing is sent and nothing is logged but the file's name: the message's link carries a
token, and logs are read by more people than the mailbox. The reference server uses this in
development when no SMTP URL is set (``<data dir>/mail``), and never in production.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import time
from pathlib import Path

from sessionauth.mail.message import MailError, Message

__all__ = ["FileMailer"]

logger = logging.getLogger("sessionauth.mail")


class FileMailer:
    """Writes each message to ``directory`` as an ``.eml`` file readable only by its owner.

    Args:
        directory: Where messages go; created (mode 0700) on first use.
        sender: The ``From`` address.
    """

    def __init__(self, directory: str | os.PathLike[str], *, sender: str):
        self.directory = Path(directory)
        self.sender = sender

    def _write(self, message: Message) -> Path:
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        name = f"{time.strftime('%Y%m%dT%H%M%S', time.gmtime())}-{secrets.token_hex(4)}.eml"
        path = self.directory / name
        # O_EXCL: never follow or overwrite a file someone placed there.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as file:
            file.write(message.to_email(self.sender).as_bytes())
        return path

    async def send(self, message: Message) -> None:
        """Write ``message`` to a new file.

        Raises:
            MailError: If the file cannot be written.
        """
        try:
            path = await asyncio.to_thread(self._write, message)
        except OSError as exc:
            raise MailError(f"cannot write the message into {self.directory}: {exc}") from exc
        logger.info("development mail to %s written to %s", message.domain, path)
