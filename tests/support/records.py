"""Session records and ids for store tests, signing a record in, and a retry helper for outages."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from sessionauth.errors import StoreUnavailable
from sessionauth.principal import Principal, new_epoch
from sessionauth.record import SessionRecord
from sessionauth.stores.base import SessionStore
from sessionauth.tokens import new_token, storage_id

T = TypeVar("T")
DAY = 86400.0


def record(user: str | None = "1", *, ttl: float = DAY, **data: Any) -> SessionRecord:
    """A fresh record of ``user`` holding ``data`` (no epoch: :func:`sign_in` stamps one)."""
    now = time.time()
    return SessionRecord(
        data=data,
        created=now,
        seen=now,
        issued=now,
        expires=now + ttl,
        user_id=user,
    )


def new_sid(user: str | None = "1") -> str:
    """A storage id from a fresh token; a user's session id comes from a token made for them."""
    return storage_id(new_token(user))


async def sign_in(
    store: SessionStore, sid: str, record: SessionRecord, *, role: str = "user"
) -> Principal:
    """Create a signed-in ``record`` under ``sid`` as a login does; return the principal.

    The user's principal is installed if the store holds none (with ``role``), and the record
    is stamped with the epoch in force before ``create``, which checks it. The one way tests
    make a user's session: a user's record without an epoch is an application's
    ``set_user()`` session, which has no rights.

    Raises:
        ValueError: For an anonymous record (it needs no principal: call ``create``).
    """
    if record.user_id is None:
        raise ValueError("an anonymous record is created, not signed in")
    principal = await store.install_principal(
        record.user_id, Principal(epoch=new_epoch(), role=role)
    )
    record.epoch = principal.epoch
    await store.create(sid, record)
    return principal


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
