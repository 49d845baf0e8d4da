"""TOTP secrets move to the newest key with their next accepted code, so old keys can go.

Before, a secret stayed sealed under the key it was enrolled with: rotating the server's secret
and later dropping the old key locked every TOTP user out (``users reset-mfa`` for each).
"""

from __future__ import annotations

import pyotp
import pytest

from sessionauth.auth.factors import ResealReport, SecondFactors
from sessionauth.auth.totp import STEP_SECONDS, TotpCipher
from sessionauth.errors import InvalidCode
from sessionauth.stores.factors import TotpRecord
from sessionauth.stores.memory_factors import MemoryFactorStore
from sessionauth.tokens import Keyring
from tests.support.clock import FakeClock

OLD = "o" * 40
NEW = "n" * 40
USER = "7"


def factors(store: MemoryFactorStore, clock: FakeClock, *secrets: str) -> SecondFactors:
    """The factors as a server with ``SESSIONAUTH_SECRET`` = ``secrets`` (newest first) has them."""
    return SecondFactors(
        store=store, cipher=TotpCipher.from_keyring(Keyring(list(secrets))), clock=clock
    )


def cipher(*secrets: str) -> TotpCipher:
    return TotpCipher.from_keyring(Keyring(list(secrets)))


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(start=1_800_000_000.0)


@pytest.fixture
async def enrolled(clock: FakeClock) -> tuple[MemoryFactorStore, str]:
    """A user with TOTP enabled under the old key alone; returns the store and the secret."""
    store = MemoryFactorStore()
    before = factors(store, clock, OLD)
    setup = await before.start_totp(USER, "ann@example.com")
    await before.confirm_totp(USER, pyotp.TOTP(setup.secret).at(clock.now))
    return store, setup.secret


async def stored(store: MemoryFactorStore, user: str = USER) -> bytes:
    """The secret the store holds for ``user``, as sealed."""
    record = await store.get_totp(user)
    assert record is not None
    return record.secret


async def test_a_code_after_a_rotation_moves_the_secret_to_the_new_key(
    enrolled: tuple[MemoryFactorStore, str], clock: FakeClock
) -> None:
    """Accepted under (new, old): stored under the new key, so the old one can be dropped."""
    store, secret = enrolled
    assert cipher(NEW).decrypt(USER, await stored(store)) is None
    clock.advance(STEP_SECONDS)
    await factors(store, clock, NEW, OLD).verify_totp(USER, pyotp.TOTP(secret).at(clock.now))
    assert cipher(NEW).decrypt(USER, await stored(store)) == secret
    # The old key dropped for good: the next code still works.
    clock.advance(STEP_SECONDS)
    await factors(store, clock, NEW).verify_totp(USER, pyotp.TOTP(secret).at(clock.now))


async def test_a_wrong_code_moves_nothing(
    enrolled: tuple[MemoryFactorStore, str], clock: FakeClock
) -> None:
    """A refused code leaves the stored secret as it was, byte for byte."""
    store, secret = enrolled
    before = await stored(store)
    clock.advance(STEP_SECONDS)
    wrong = f"{(int(pyotp.TOTP(secret).at(clock.now)) + 1) % 1_000_000:06d}"
    with pytest.raises(InvalidCode):
        await factors(store, clock, NEW, OLD).verify_totp(USER, wrong)
    assert await stored(store) == before


async def test_a_secret_on_the_newest_key_is_not_rewritten(
    enrolled: tuple[MemoryFactorStore, str], clock: FakeClock
) -> None:
    """No rotation: an accepted code keeps the stored secret (no write of a new nonce)."""
    store, secret = enrolled
    before = await stored(store)
    clock.advance(STEP_SECONDS)
    await factors(store, clock, OLD).verify_totp(USER, pyotp.TOTP(secret).at(clock.now))
    assert await stored(store) == before


async def test_a_secret_unused_since_the_rotation_dies_with_the_old_key(
    enrolled: tuple[MemoryFactorStore, str], clock: FakeClock
) -> None:
    """The documented limit: drop a key only once the secrets under it have been used."""
    store, secret = enrolled
    clock.advance(STEP_SECONDS)
    with pytest.raises(InvalidCode):
        await factors(store, clock, NEW).verify_totp(USER, pyotp.TOTP(secret).at(clock.now))


async def test_reseal_all_moves_every_secret_and_reports_each_kind(clock: FakeClock) -> None:
    """Old-key secrets move, new-key ones stay, unreadable ones are counted, not touched."""
    store = MemoryFactorStore()
    secrets: dict[str, str] = {}
    for user, keys in (("1", (OLD,)), ("2", (OLD,)), ("3", (NEW,)), ("4", ("g" * 40,))):
        enrol = factors(store, clock, *keys)
        setup = await enrol.start_totp(user, f"{user}@example.com")
        await enrol.confirm_totp(user, pyotp.TOTP(setup.secret).at(clock.now))
        secrets[user] = setup.secret
    lost = await store.get_totp("4")

    report = await factors(store, clock, NEW, OLD).reseal_all()

    assert report == ResealReport(moved=2, current=1, unreadable=("4",))
    for user in ("1", "2", "3"):
        assert cipher(NEW).decrypt(user, await stored(store, user)) == secrets[user]
    assert await store.get_totp("4") == lost
    # Run again: nothing left to move.
    again = await factors(store, clock, NEW, OLD).reseal_all()
    assert again == ResealReport(moved=0, current=3, unreadable=("4",))


async def test_reseal_all_never_undoes_a_setup_that_lands_meanwhile(clock: FakeClock) -> None:
    """A new setup between the read and the move: the move is refused and the setup stands."""
    store = MemoryFactorStore()
    await factors(store, clock, OLD).start_totp(USER, "ann@example.com")
    rotated = factors(store, clock, NEW, OLD)
    get_totp = store.get_totp
    fresh: list[str] = []

    async def a_new_setup_after_the_read(user_id: str) -> TotpRecord | None:
        record = await get_totp(user_id)
        if not fresh:
            fresh.append((await rotated.start_totp(USER, "ann@example.com")).secret)
        return record

    store.get_totp = a_new_setup_after_the_read  # type: ignore[method-assign]
    report = await rotated.reseal_all()
    del store.get_totp
    assert report == ResealReport(changed=1)
    assert cipher(NEW).decrypt(USER, await stored(store)) == fresh[0]
