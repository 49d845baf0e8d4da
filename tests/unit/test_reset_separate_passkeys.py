"""An administrator's reset removes passkeys kept in a store of their own.

An Authenticator may be given its passkeys apart from TOTP (``passkeys=Passkeys(store=...)``
on another store than ``factors``), or passkeys alone. ``reset_factors`` used to reset the
factors' store only: the passkey that the reset was meant to revoke kept signing the user in.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from sessionauth.auth.authenticator import Authenticator
from sessionauth.auth.factors import SecondFactors
from sessionauth.auth.passkeys import ChallengeKeeper, Passkeys, RelyingParty
from sessionauth.auth.passwords import PasswordHasher
from sessionauth.auth.throttle import LoginThrottle
from sessionauth.auth.totp import TotpCipher
from sessionauth.stores.factors import Passkey
from sessionauth.stores.memory import MemoryCounter, MemoryStore
from sessionauth.stores.memory_factors import MemoryFactorStore
from sessionauth.stores.users import UserStore
from sessionauth.tokens import Keyring
from tests.support.backends import user_store
from tests.support.clock import FakeClock

KEYRING = Keyring(["r" * 40])
KEY = Passkey(
    credential_id=b"\x01" * 16,
    public_key=b"\x02" * 77,
    sign_count=0,
    backup_eligible=True,
    backed_up=False,
    transports=("internal",),
    name="Laptop",
    created=1.0,
)


@pytest.fixture
async def users(tmp_path: Path) -> AsyncIterator[UserStore]:
    store = user_store(f"sqlite:///{tmp_path / 'users.db'}")
    yield store
    await store.aclose()


def _authenticator(
    users: UserStore, factors: MemoryFactorStore | None, passkeys: MemoryFactorStore
) -> Authenticator:
    clock = FakeClock(1_700_000_000.0)
    return Authenticator(
        users=users,
        sessions=MemoryStore(clock=clock),
        hasher=PasswordHasher.for_tests(),
        throttle=LoginThrottle(MemoryCounter(clock), clock=clock),
        clock=clock,
        factors=None
        if factors is None
        else SecondFactors(store=factors, cipher=TotpCipher.from_keyring(KEYRING), clock=clock),
        passkeys=Passkeys(
            store=passkeys,
            rp=RelyingParty(id="example.com", name="Test", origins=("https://example.com",)),
            challenges=ChallengeKeeper(MemoryCounter(clock), KEYRING, clock=clock),
            clock=clock,
        ),
    )


@pytest.mark.parametrize("with_totp", [True, False], ids=["factors-apart", "passkeys-alone"])
async def test_reset_deletes_passkeys_in_their_own_store(users: UserStore, with_totp: bool) -> None:
    """After the reset the passkeys' store holds nothing of the user's."""
    passkeys = MemoryFactorStore()
    auth = _authenticator(users, MemoryFactorStore() if with_totp else None, passkeys)
    user = await users.create("ann@example.com", await auth.hasher.hash("pw pw pw pw"), "user")
    assert await passkeys.add_passkey(str(user.id), KEY)
    await auth.reset_factors(user.id)
    assert await passkeys.list_passkeys(str(user.id)) == []
