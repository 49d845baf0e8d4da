"""Failed logins do the same password work whether or not a hash could be verified.

An attacker times failures to learn which emails have accounts. The time of a failed login is
the time of its password work, so the suite compares that work, not the clock (which a busy
machine makes noisy): the same argon2id verification, with production costs, against the same
dummy hash, and nothing else.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import bcrypt
import pytest
from pwdlib.hashers.argon2 import Argon2Hasher
from pwdlib.hashers.bcrypt import BcryptHasher

from sessionauth.auth.authenticator import Authenticator
from sessionauth.auth.passwords import PasswordHasher
from sessionauth.errors import InvalidCredentials
from sessionauth.stores.memory import MemoryStore
from tests.support.backends import user_store

LONG_PASSWORD = "x" * 100  # over bcrypt's 72 bytes: no bcrypt hash can be checked against it
PRODUCTION_PREFIX = "$argon2id$v=19$m=19456,t=2,p=1$"

Work = list[tuple[str, str]]
"""Each password hash operation a login ran: ``(hasher and method, hash operated on)``."""


@pytest.fixture
async def auth(tmp_path: Path) -> AsyncIterator[Authenticator]:
    """An Authenticator with production argon2id costs and one legacy (bcrypt) account."""
    users = user_store(f"sqlite:///{tmp_path / 'users.db'}")
    legacy = bcrypt.hashpw(b"the tutorial's password", bcrypt.gensalt(4)).decode()
    await users.create("legacy@example.com", legacy)
    yield Authenticator(users=users, sessions=MemoryStore(), hasher=PasswordHasher(), throttle=None)
    await users.aclose()


@pytest.fixture
def work(monkeypatch: pytest.MonkeyPatch) -> Work:
    """Record every argon2 and bcrypt hash or verify, whichever thread runs it."""
    log: Work = []

    def record(cls: type, method: str) -> None:
        original: Callable[..., Any] = getattr(cls, method)

        def wrapper(hasher: Any, *args: Any) -> Any:
            log.append((f"{cls.__name__}.{method}", str(args[-1]) if method == "verify" else ""))
            return original(hasher, *args)

        monkeypatch.setattr(cls, method, wrapper)

    for cls in (Argon2Hasher, BcryptHasher):
        record(cls, "hash")
        record(cls, "verify")
    return log


async def _failed_login(auth: Authenticator, work: Work, email: str) -> Work:
    """The password work of one refused login of ``email``."""
    work.clear()
    with pytest.raises(InvalidCredentials):
        await auth.authenticate(email, LONG_PASSWORD, address="198.51.100.7")
    return list(work)


async def test_a_legacy_account_with_an_overlong_password_works_like_an_unknown_email(
    auth: Authenticator, work: Work
) -> None:
    """Both run one production argon2id verify against the one dummy hash, and nothing else."""
    await _failed_login(auth, work, "warm-up@example.com")  # makes the dummy hash once
    unknown = await _failed_login(auth, work, "nobody@example.com")
    legacy = await _failed_login(auth, work, "legacy@example.com")
    assert legacy == unknown
    [(operation, dummy_hash)] = unknown
    assert operation == "Argon2Hasher.verify"
    assert dummy_hash.startswith(PRODUCTION_PREFIX)


async def test_a_wrong_password_works_like_an_unknown_email(
    auth: Authenticator, work: Work
) -> None:
    """A current account's wrong password runs one argon2id verify with the dummy's costs."""
    stored = await auth.hasher.hash("the account's real password")
    await auth.users.create("current@example.com", stored)
    await _failed_login(auth, work, "warm-up@example.com")  # makes the dummy hash once
    unknown = await _failed_login(auth, work, "nobody@example.com")
    known = await _failed_login(auth, work, "current@example.com")
    assert [operation for operation, _ in known] == [op for op, _ in unknown]
    assert known == [("Argon2Hasher.verify", stored)]
    assert [hashed[: len(PRODUCTION_PREFIX)] for _, hashed in unknown] == [PRODUCTION_PREFIX]
