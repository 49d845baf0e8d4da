"""Failed logins take as long whether or not a hash could be verified (production costs)."""

from __future__ import annotations

import statistics
import time
from collections.abc import AsyncIterator
from pathlib import Path

import bcrypt
import pytest

from sessionauth.auth.authenticator import Authenticator
from sessionauth.auth.passwords import PasswordHasher
from sessionauth.errors import InvalidCredentials
from sessionauth.stores.memory import MemoryStore
from tests.support.backends import user_store

LONG_PASSWORD = "x" * 100  # over bcrypt's 72 bytes: no bcrypt hash can be checked against it
ROUNDS = 15  # interleaved pairs; medians of 15 shrug off a busy neighbour on a small machine


@pytest.fixture
async def auth(tmp_path: Path) -> AsyncIterator[Authenticator]:
    """An Authenticator with production argon2id costs and one legacy (bcrypt) account."""
    users = user_store(f"sqlite:///{tmp_path / 'users.db'}")
    legacy = bcrypt.hashpw(b"the tutorial's password", bcrypt.gensalt(4)).decode()
    await users.create("legacy@example.com", legacy)
    yield Authenticator(users=users, sessions=MemoryStore(), hasher=PasswordHasher(), throttle=None)
    await users.aclose()


async def _seconds(auth: Authenticator, email: str) -> float:
    start = time.perf_counter()
    with pytest.raises(InvalidCredentials):
        await auth.authenticate(email, LONG_PASSWORD, address="198.51.100.7")
    return time.perf_counter() - start


async def test_a_legacy_account_with_an_overlong_password_answers_like_an_unknown_email(
    auth: Authenticator,
) -> None:
    """Median failure times of a bcrypt account (>72-byte password) and an unknown email: ±25 %."""
    await _seconds(auth, "warm-up@example.com")  # makes the dummy hash once
    samples: dict[str, list[float]] = {"legacy@example.com": [], "nobody@example.com": []}
    for n in range(ROUNDS):
        # Alternate which goes first, so a slow spell of the machine hits both alike.
        order = list(samples) if n % 2 else list(reversed(samples))
        for email in order:
            samples[email].append(await _seconds(auth, email))
    legacy, unknown = (statistics.median(times) for times in samples.values())
    assert abs(legacy - unknown) <= 0.25 * unknown, (
        f"legacy {legacy * 1000:.1f} ms vs unknown {unknown * 1000:.1f} ms"
    )
