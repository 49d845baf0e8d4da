"""Turning TOTP off fails safe: an outage between its two writes leaves no orphaned codes.

Disabling removes the recovery codes and the TOTP secret, two writes. Recovery codes stand in
for TOTP; left behind without it, they would still pass the second step of an account that
also has a passkey. So the codes go first: an outage after them leaves TOTP on (and new codes
can be made), never codes that outlive their factor.
"""

from __future__ import annotations

import pyotp
import pytest

from sessionauth.auth.factors import SecondFactors
from sessionauth.auth.totp import STEP_SECONDS, TotpCipher
from sessionauth.errors import InvalidCode, StoreUnavailable
from sessionauth.stores.memory_factors import MemoryFactorStore
from sessionauth.tokens import Keyring
from tests.support.clock import FakeClock

USER = "7"


class TotpDeleteFails(MemoryFactorStore):
    """A factor store whose TOTP delete meets an outage."""

    async def delete_totp(self, user_id: str) -> bool:
        raise StoreUnavailable("the factor store went away")


async def test_an_outage_while_disabling_leaves_totp_on_and_no_codes() -> None:
    """The disable fails with the outage; TOTP stays, the used and unused codes are gone."""
    clock = FakeClock(1_700_000_000.0)
    store = TotpDeleteFails()
    factors = SecondFactors(
        store=store, cipher=TotpCipher.from_keyring(Keyring(["d" * 40])), issuer="T", clock=clock
    )
    setup = await factors.start_totp(USER, "ann@example.com")
    codes = await factors.confirm_totp(USER, pyotp.TOTP(setup.secret).at(clock()))
    clock.advance(STEP_SECONDS)
    with pytest.raises(StoreUnavailable):
        await factors.disable_totp(USER, recovery_code=codes[0])
    assert await factors.methods(USER) == ["totp"]
    assert await store.count_recovery_codes(USER) == 0
    with pytest.raises(InvalidCode):
        await factors.use_recovery_code(USER, codes[1])
    await factors.verify_totp(USER, pyotp.TOTP(setup.secret).at(clock()))
