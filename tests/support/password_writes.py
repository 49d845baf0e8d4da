"""Password-write tests: a signed-in session, and racing the next write to the users store."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from sessionauth.session import Session

__all__ = ["before_the_next_password_write", "signed_in"]


async def signed_in(auth: Any, email: str, password: str, *, address: str) -> Session:
    """A session signed in through ``auth`` with ``email`` and ``password``, as a login makes."""
    session = Session()
    await auth.login(
        session,
        await auth.authenticate(email, password, address=address),
        address=address,
        user_agent=None,
    )
    return session


def before_the_next_password_write(
    monkeypatch: pytest.MonkeyPatch, users: Any, action: Callable[[], Awaitable[object]]
) -> list[object]:
    """Run ``action`` once, just before the next ``users.set_password`` write goes through.

    Returns a list that holds ``action``'s result once it has run; the writes ``action`` makes
    itself pass straight through.
    """
    set_password = users.set_password
    ran: list[object] = []

    async def write(user_id: Any, password_hash: str, *, replacing: str) -> bool:
        if not ran:
            ran.append(None)  # first: the action's own writes come through here too
            ran[0] = await action()
        answer: bool = await set_password(user_id, password_hash, replacing=replacing)
        return answer

    monkeypatch.setattr(users, "set_password", write)
    return ran
