"""An administrator's reset through the compare-and-set password write.

A source replaces only the hash it is told (``UserSource.set_password(..., replacing=)``), so
``Authenticator.set_password`` reads the stored hash and writes over it, reading again when a
change slipped in between, a bounded number of times.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import pytest

from sessionauth.auth import Authenticator, PasswordHasher
from sessionauth.errors import StoreUnavailable, UserNotFound
from sessionauth.stores.memory import MemoryStore

OLD_HASH = "$argon2id$v=19$the-old-one"


@dataclass(frozen=True)
class Member:
    """One account of the application's own."""

    id: int
    email: str
    role: str
    password_hash: str
    disabled: bool = False


class Members:
    """A UserSource in a dict, into which other writers can slip a change before each write."""

    def __init__(self) -> None:
        self.rows = {7: Member(7, "ann@example.com", "user", OLD_HASH)}
        self.slips = 0  # how many writes find the hash changed since it was read
        self.writes: list[str] = []

    async def get(self, user_id: int) -> Member | None:
        return self.rows.get(user_id)

    async def get_by_email(self, email: str) -> Member | None:
        return next((m for m in self.rows.values() if m.email == email), None)

    async def set_password(self, user_id: int, password_hash: str, *, replacing: str) -> bool:
        self.writes.append(replacing)
        member = self.rows.get(user_id)
        if member is not None and self.slips:
            self.slips -= 1
            member = replace(member, password_hash=f"{member.password_hash}+changed")
            self.rows[user_id] = member
        if member is None or member.password_hash != replacing:
            return False
        self.rows[user_id] = replace(member, password_hash=password_hash)
        return True


@pytest.fixture
def members() -> Members:
    return Members()


@pytest.fixture
def auth(members: Members) -> Authenticator[int]:
    return Authenticator(
        users=members, sessions=MemoryStore(), hasher=PasswordHasher.for_tests(), throttle=None
    )


async def test_a_reset_replaces_the_hash_it_read(
    auth: Authenticator[int], members: Members
) -> None:
    """One read, one write over the hash read: the new password verifies."""
    await auth.set_password(7, "the administrator's new passphrase")
    assert members.writes == [OLD_HASH]
    new = members.rows[7].password_hash
    assert await auth.hasher.verify("the administrator's new passphrase", new) == (True, None)


async def test_a_change_slipping_in_before_the_reset_is_read_again_and_replaced(
    auth: Authenticator[int], members: Members
) -> None:
    """A refused write reads the hash again and replaces the newer one: the reset wins."""
    members.slips = 2
    await auth.set_password(7, "the administrator's new passphrase")
    # Two refusals, each followed by a new read of what the other writer stored.
    assert members.writes == [OLD_HASH, f"{OLD_HASH}+changed", f"{OLD_HASH}+changed+changed"]
    new = members.rows[7].password_hash
    assert await auth.hasher.verify("the administrator's new passphrase", new) == (True, None)


async def test_a_hash_that_changes_under_every_try_is_an_outage_not_a_loop(
    auth: Authenticator[int], members: Members
) -> None:
    """Five refusals in a row: StoreUnavailable, and nothing written."""
    members.slips = 1_000
    with pytest.raises(StoreUnavailable, match="changed 5 times"):
        await auth.set_password(7, "the administrator's new passphrase")
    assert len(members.writes) == 5
    assert members.rows[7].password_hash.endswith("+changed")  # the reset wrote nothing


async def test_a_reset_of_nobody_is_user_not_found(
    auth: Authenticator[int], members: Members
) -> None:
    """A missing user is UserNotFound before any write."""
    with pytest.raises(UserNotFound):
        await auth.set_password(8, "the administrator's new passphrase")
    assert members.writes == []
