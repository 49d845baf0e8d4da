"""A right TOTP code stays right while its secret moves to a new key (attack review 6).

Both moves, the lazy one stored with an accepted code (``accept_totp_step(..., reseal=)``) and
``SecondFactors.reseal_all`` (``sessionauth users reseal-mfa``, safe while the servers serve),
write a *new ciphertext* of the same secret. A code being checked at that moment compared the
ciphertext it had read, found another one, and the right code was refused (401 "Invalid
code" on ``POST /login/mfa``, counted against the throttle; an enrolment's first code
refused). Now a refusal whose stored ciphertext opens to the same secret is tried again
against it, with the same step (still accepted once). Every store, real; only the moment of
the concurrent move is injected.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pyotp
import pytest

from sessionauth.auth.factors import SecondFactors
from sessionauth.auth.totp import STEP_SECONDS, TotpCipher
from sessionauth.backends import open_backend
from sessionauth.stores.factors import FactorStore
from sessionauth.stores.memory_factors import MemoryFactorStore
from sessionauth.tokens import Keyring
from tests.support.clock import FakeClock

OLD = "o" * 40
NEW = "n" * 40
USER = "7"
EMAIL = "ann@example.com"


@pytest.fixture(params=["memory", "sqlite", "redis"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[FactorStore]:
    """A real factor store: in memory, on a SQLite file, on the shared Redis."""
    if request.param == "memory":
        yield MemoryFactorStore()
        return
    if request.param == "sqlite":
        backend = open_backend(f"sqlite:///{tmp_path / 'factors.db'}")
        options: dict[str, Any] = {}
    else:
        backend = open_backend(str(request.getfixturevalue("redis_url")))
        options = {"prefix": str(request.getfixturevalue("redis_prefix"))}
    try:
        yield backend.factor_store(**options)
    finally:
        await backend.aclose()


def factors(store: FactorStore, clock: FakeClock, *secrets: str) -> SecondFactors:
    """The factors of a server whose ``SESSIONAUTH_SECRET`` is ``secrets``, newest first."""
    return SecondFactors(
        store=store, cipher=TotpCipher.from_keyring(Keyring(list(secrets))), clock=clock
    )


def before_the_write(
    monkeypatch: pytest.MonkeyPatch, store: FactorStore, meanwhile: Callable[[], Any]
) -> list[int]:
    """Run ``meanwhile()`` once, after a code's check read the secret and before its write."""
    accept = store.accept_totp_step
    ran: list[int] = []

    async def accept_after_the_concurrent_move(*args: Any, **kwargs: Any) -> bool:
        if not ran:
            ran.append(1)
            await meanwhile()
        return await accept(*args, **kwargs)

    monkeypatch.setattr(store, "accept_totp_step", accept_after_the_concurrent_move)
    return ran


async def enrolled_under_the_old_key(store: FactorStore, clock: FakeClock) -> str:
    """TOTP enabled for USER by a server that knew only OLD; returns the plain secret."""
    before = factors(store, clock, OLD)
    setup = await before.start_totp(USER, EMAIL)
    await before.confirm_totp(USER, pyotp.TOTP(setup.secret).at(clock.now))
    return setup.secret


async def test_a_right_code_is_accepted_while_reseal_mfa_runs(
    store: FactorStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``users reseal-mfa`` moves the secret between a login's read and its write.

    The login's code is right (the secret did not change, only its ciphertext), yet the
    compare-and-set on the old ciphertext fails and the user is told "Invalid code".
    """
    clock = FakeClock(start=1_800_000_000.0)
    secret = await enrolled_under_the_old_key(store, clock)
    clock.advance(STEP_SECONDS)
    rotated = factors(store, clock, NEW, OLD)
    ran = before_the_write(monkeypatch, store, rotated.reseal_all)

    await rotated.verify_totp(USER, pyotp.TOTP(secret).at(clock.now))

    assert ran == [1]


async def test_the_first_code_of_a_setup_is_accepted_while_reseal_mfa_runs(
    store: FactorStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A setup started before the rotation, confirmed while ``reseal_all`` moves it: refused."""
    clock = FakeClock(start=1_800_000_000.0)
    setup = await factors(store, clock, OLD).start_totp(USER, EMAIL)
    rotated = factors(store, clock, NEW, OLD)
    ran = before_the_write(monkeypatch, store, rotated.reseal_all)

    codes = await rotated.confirm_totp(USER, pyotp.TOTP(setup.secret).at(clock.now))

    assert ran == [1]
    assert codes
    assert await rotated.totp_enabled(USER)


async def test_the_lazy_reseal_does_not_refuse_a_later_code_checked_at_the_same_time(
    store: FactorStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two sign-ins at once with the codes of two successive steps (two devices, two tabs).

    Before 081426e both were accepted (the later step is later than the one recorded). Now
    the first one's accepted step also stores the secret re-encrypted, so the second, which
    read the old ciphertext, is refused though its code is right and was never used.
    """
    clock = FakeClock(start=1_800_000_000.0)
    secret = await enrolled_under_the_old_key(store, clock)
    clock.advance(3 * STEP_SECONDS)
    rotated = factors(store, clock, NEW, OLD)
    earlier = pyotp.TOTP(secret).at(clock.now - STEP_SECONDS)  # in the drift window
    current = pyotp.TOTP(secret).at(clock.now)

    async def the_other_sign_in() -> None:
        await rotated.verify_totp(USER, earlier)

    ran = before_the_write(monkeypatch, store, the_other_sign_in)

    await rotated.verify_totp(USER, current)

    assert ran == [1]
