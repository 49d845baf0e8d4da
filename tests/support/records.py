"""Session records and ids for store tests, and a retry helper for outage tests."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from sessionauth.errors import StoreUnavailable
from sessionauth.record import SessionRecord
from sessionauth.tokens import new_token, storage_id

T = TypeVar("T")
DAY = 86400.0


def record(user: str | None = "1", *, ttl: float = DAY, **data: Any) -> SessionRecord:
    """A fresh record of ``user`` (the tutorial's ``role: admin`` unless ``data`` is given)."""
    now = time.time()
    return SessionRecord(
        data=data or {"role": "admin"},
        created=now,
        seen=now,
        issued=now,
        expires=now + ttl,
        user_id=user,
    )


def new_sid(user: str | None = "1") -> str:
    """A storage id from a fresh token; a user's session id comes from a token made for them."""
    return storage_id(new_token(user))


async def eventually(operation: Callable[[], Awaitable[T]], *, within: float = 30.0) -> T:
    """Retry ``operation`` while the store is unavailable, failing after ``within`` seconds."""
    deadline = time.monotonic() + within
    while True:
        try:
            return await operation()
        except StoreUnavailable:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.05)  # a poll interval with a hard deadline, not a sync point
