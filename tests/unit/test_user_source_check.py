"""``check_compare_and_set`` reads the signature that is called (attack review 6).

``inspect.signature`` follows ``__wrapped__`` (set by ``functools.wraps``), so for a method that
a decorator turned into the compare-and-set write it read the *decorated* function's
parameters. The natural migration of a 0.1 source, an adapter keeping the old write and adding
the ``replacing`` check around it, has exactly the 0.2 signature when called, yet the
Authenticator refused to be made with it (``TypeError``: "0.1's signature").
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from sessionauth.auth import Authenticator, PasswordHasher
from sessionauth.backends import open_backend
from sessionauth.stores.memory import MemoryStore
from sessionauth.stores.users import User, UserStore
from tests.support.password_writes import signed_in

PASSWORD = "correct horse battery"
NEW_PASSWORD = "a brand new passphrase"
ADDRESS = "198.51.100.7"

OldWrite = Callable[[Any, int, str], Awaitable[None]]


def compare_and_set(old: OldWrite) -> Callable[..., Awaitable[bool]]:
    """Turn a 0.1 write (no answer, no condition) into the 0.2 compare-and-set write."""

    @functools.wraps(old)
    async def write(self: Accounts, user_id: int, password_hash: str, *, replacing: str) -> bool:
        async with self.lock(user_id):
            current = await self.get(user_id)
            if current is None or current.password_hash != replacing:
                return False
            await old(self, user_id, password_hash)
            return True

    return write


class Accounts:
    """An application's own user source over a real SQLite table, migrated with the adapter."""

    def __init__(self, store: UserStore):
        self.store = store
        self._lock = asyncio.Lock()

    def lock(self, user_id: int) -> asyncio.Lock:
        return self._lock  # one process in this test; a row lock in the application

    async def get(self, user_id: int) -> User | None:
        return await self.store.get(user_id)

    async def get_by_email(self, email: str) -> User | None:
        return await self.store.get_by_email(email)

    @compare_and_set
    async def set_password(self, user_id: int, password_hash: str) -> None:
        """Store the new hash (the 0.1 write, unchanged)."""
        await self.store.set_password(user_id, password_hash)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[UserStore]:
    """A real SQLite user store."""
    backend = open_backend(f"sqlite:///{tmp_path / 'users.db'}")
    try:
        yield backend.user_store()
    finally:
        await backend.aclose()


async def test_a_compare_and_set_write_made_by_a_wraps_decorator_is_accepted(
    store: UserStore,
) -> None:
    """The source's ``set_password(user_id, hash, *, replacing) -> bool`` works when called.

    It is refused when the Authenticator is made, because the check reads the signature of
    the function the decorator wrapped (``functools.wraps`` sets ``__wrapped__``).
    """
    accounts = Accounts(store)
    user = await store.create("ann@example.com", await PasswordHasher.for_tests().hash(PASSWORD))
    # Called as the Authenticator calls it, the write is the 0.2 compare-and-set.
    assert await accounts.set_password(user.id, "x", replacing="not the hash") is False

    auth: Authenticator[int] = Authenticator(
        users=accounts,  # type: ignore[arg-type]
        sessions=MemoryStore(),
        hasher=PasswordHasher.for_tests(),
        throttle=None,
    )
    session = await signed_in(auth, "ann@example.com", PASSWORD, address=ADDRESS)
    await auth.change_password(session, PASSWORD, NEW_PASSWORD, address=ADDRESS)
    changed = await store.get(user.id)
    assert changed is not None
    assert (await auth.hasher.verify(NEW_PASSWORD, changed.password_hash))[0]
