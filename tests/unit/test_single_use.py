"""Single-use tokens: issue, consume once, and every way a token can be wrong."""

from __future__ import annotations

import asyncio
import base64
import logging
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from sessionauth.auth.single_use import (
    CHANGE_EMAIL,
    RESET_PASSWORD,
    VERIFY_EMAIL,
    SingleUseTokens,
    token_key,
)
from sessionauth.backends.sqlite import SQLiteBackend
from sessionauth.principal import PrincipalChange
from sessionauth.stores.memory import MemoryStore
from sessionauth.stores.tokens import MemoryTokenStore
from sessionauth.stores.users import User, UserStore
from tests.support.clock import FakeClock


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def users(tmp_path: Path, clock: FakeClock) -> AsyncIterator[UserStore]:
    async with SQLiteBackend(str(tmp_path / "users.db"), clock=clock) as backend:
        yield backend.user_store()


@pytest.fixture
def store(clock: FakeClock) -> MemoryTokenStore:
    return MemoryTokenStore(clock)


@pytest.fixture
def principals(clock: FakeClock) -> MemoryStore:
    return MemoryStore(clock=clock)


@pytest.fixture
def tokens(
    store: MemoryTokenStore, users: UserStore, principals: MemoryStore, clock: FakeClock
) -> SingleUseTokens:
    return SingleUseTokens(tokens=store, users=users, principals=principals, clock=clock)


@pytest.fixture
async def alice(users: UserStore) -> User:
    return await users.create("alice@example.com", "$argon2id$v=19$hash-one")


async def test_token_is_256_bits_and_stored_only_hashed(
    tokens: SingleUseTokens, store: MemoryTokenStore, alice: User
) -> None:
    """A token is 43 base64url characters (32 bytes); the store holds its digest, not it."""
    raw = await tokens.issue(alice, VERIFY_EMAIL)
    assert len(raw) == 43
    assert len(base64.urlsafe_b64decode(raw + "=")) == 32
    keys = list(store._records)
    assert keys == [token_key(raw, VERIFY_EMAIL)]
    assert raw not in repr(store._records)


async def test_consume_once(tokens: SingleUseTokens, alice: User) -> None:
    """The first use proves the user and purpose; the second proves nothing."""
    raw = await tokens.issue(alice, VERIFY_EMAIL)
    claim = await tokens.consume(raw, VERIFY_EMAIL)
    assert claim is not None
    assert (claim.user.id, claim.purpose, claim.payload) == (alice.id, VERIFY_EMAIL, None)
    assert await tokens.consume(raw, VERIFY_EMAIL) is None


async def test_payload_comes_back(tokens: SingleUseTokens, alice: User) -> None:
    """An email-change token returns the new address it was issued with."""
    raw = await tokens.issue(alice, CHANGE_EMAIL, payload="new@example.com")
    claim = await tokens.consume(raw, CHANGE_EMAIL)
    assert claim is not None
    assert claim.payload == "new@example.com"


async def test_wrong_purpose_finds_nothing_and_spares_the_token(
    tokens: SingleUseTokens, alice: User
) -> None:
    """A verification token presented to reset a password fails and stays usable."""
    raw = await tokens.issue(alice, VERIFY_EMAIL)
    assert await tokens.consume(raw, RESET_PASSWORD) is None
    assert await tokens.consume(raw, VERIFY_EMAIL) is not None


async def test_wrong_user_finds_nothing(
    tokens: SingleUseTokens, users: UserStore, alice: User
) -> None:
    """A token consumed for another signed-in user fails; its own user can still use it."""
    bob = await users.create("bob@example.com", "$argon2id$v=19$hash-bob")
    raw = await tokens.issue(alice, VERIFY_EMAIL)
    assert await tokens.consume(raw, VERIFY_EMAIL, user_id=bob.id) is None
    assert await tokens.consume(raw, VERIFY_EMAIL, user_id=alice.id) is not None


async def test_default_lifetimes(tokens: SingleUseTokens, alice: User, clock: FakeClock) -> None:
    """Reset tokens die after 30 minutes, verification tokens after 24 hours."""
    reset_ok, reset_late = [await tokens.issue(alice, RESET_PASSWORD) for _ in range(2)]
    verify_ok, verify_late = [await tokens.issue(alice, VERIFY_EMAIL) for _ in range(2)]
    clock.advance(30 * 60 - 1)
    assert await tokens.consume(reset_ok, RESET_PASSWORD) is not None
    clock.advance(1)
    assert await tokens.consume(reset_late, RESET_PASSWORD) is None
    clock.advance(24 * 3600 - 30 * 60 - 1)
    assert await tokens.consume(verify_ok, VERIFY_EMAIL) is not None
    clock.advance(1)
    assert await tokens.consume(verify_late, VERIFY_EMAIL) is None


async def test_explicit_ttl(tokens: SingleUseTokens, alice: User, clock: FakeClock) -> None:
    """`issue(ttl=)` overrides the purpose's lifetime."""
    raw = await tokens.issue(alice, VERIFY_EMAIL, ttl=10)
    clock.advance(10)
    assert await tokens.consume(raw, VERIFY_EMAIL) is None


async def test_password_change_kills_tokens(
    tokens: SingleUseTokens, users: UserStore, alice: User
) -> None:
    """Any password change (even to the same password: a new salt) kills earlier tokens."""
    reset, verify = (
        await tokens.issue(alice, RESET_PASSWORD),
        await tokens.issue(alice, VERIFY_EMAIL),
    )
    await users.set_password(alice.id, "$argon2id$v=19$hash-two")
    assert await tokens.consume(reset, RESET_PASSWORD) is None
    assert await tokens.consume(verify, VERIFY_EMAIL) is None
    fresh = await tokens.issue((await users.get(alice.id)) or alice, RESET_PASSWORD)
    assert await tokens.consume(fresh, RESET_PASSWORD) is not None


async def test_disabled_or_deleted_account_kills_tokens(
    tokens: SingleUseTokens, users: UserStore, alice: User
) -> None:
    """Tokens of a disabled or deleted account prove nothing."""
    bob = await users.create("bob@example.com", "$argon2id$v=19$hash-bob")
    raw_alice, raw_bob = (
        await tokens.issue(alice, RESET_PASSWORD),
        await tokens.issue(bob, RESET_PASSWORD),
    )
    await users.set_disabled(alice.id, True)
    await users.delete(bob.id)
    assert await tokens.consume(raw_alice, RESET_PASSWORD) is None
    assert await tokens.consume(raw_bob, RESET_PASSWORD) is None


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "not base64 at all!",
        "A" * 42,
        "A" * 44,
        "A" * 10_000_000,
        "+" * 43,
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAB",  # non-canonical last character
        None,
        12345,
        b"A" * 43,
        ["A" * 43],
    ],
    ids=lambda value: type(value).__name__ + str(len(value) if hasattr(value, "__len__") else ""),
)
async def test_malformed_tokens_are_none(
    tokens: SingleUseTokens, store: MemoryTokenStore, raw: object
) -> None:
    """Malformed, oversized or non-string tokens give ``None``, with no store lookup."""
    calls = 0
    original = store.take

    async def counting(key: str, *, user_id: str | None = None) -> object:
        nonlocal calls
        calls += 1
        return await original(key, user_id=user_id)

    store.take = counting  # type: ignore[method-assign]
    assert await tokens.consume(raw, VERIFY_EMAIL) is None
    assert calls == 0


async def test_concurrent_consumes_one_wins(tokens: SingleUseTokens, alice: User) -> None:
    """Ten concurrent uses of one reset token: exactly one succeeds."""
    raw = await tokens.issue(alice, RESET_PASSWORD)
    claims = await asyncio.gather(*(tokens.consume(raw, RESET_PASSWORD) for _ in range(10)))
    assert sum(claim is not None for claim in claims) == 1


async def test_refusals_are_logged_without_the_token(
    tokens: SingleUseTokens, alice: User, caplog: pytest.LogCaptureFixture
) -> None:
    """A refused token is logged to sessionauth.security with its reason, never the token."""
    raw = await tokens.issue(alice, VERIFY_EMAIL)
    await tokens.consume(raw, VERIFY_EMAIL)
    with caplog.at_level(logging.INFO, logger="sessionauth.security"):
        assert await tokens.consume(raw, VERIFY_EMAIL) is None
    assert "single-use token refused" in caplog.text
    assert raw not in caplog.text


def test_bad_lifetimes_and_purposes_are_refused(users: UserStore) -> None:
    """A non-positive lifetime or an odd purpose is a programming error, raised at once."""
    with pytest.raises(ValueError, match="positive"):
        SingleUseTokens(
            tokens=MemoryTokenStore(),
            users=users,
            principals=MemoryStore(),
            lifetimes={VERIFY_EMAIL: 0},
        )
    with pytest.raises(ValueError, match="purpose"):
        SingleUseTokens(
            tokens=MemoryTokenStore(),
            users=users,
            principals=MemoryStore(),
            lifetimes={"Bad Purpose": 5},
        )


async def test_a_new_epoch_or_a_lost_principal_kills_tokens(
    tokens: SingleUseTokens, principals: MemoryStore, alice: User
) -> None:
    """Bound to the principal's epoch: a rotation kills a token, a rebuilt principal too."""
    rotated, lost = (
        await tokens.issue(alice, RESET_PASSWORD),
        await tokens.issue(alice, VERIFY_EMAIL),
    )
    kept = await tokens.issue(alice, CHANGE_EMAIL)
    assert await tokens.consume(kept, CHANGE_EMAIL) is not None  # nothing changed: it works
    await principals.change_principal(
        str(alice.id), PrincipalChange(fallback_role="user", fallback_disabled=False, rotate=True)
    )
    assert await tokens.consume(rotated, RESET_PASSWORD) is None
    principals._principals.clear()  # the principal is lost (an evicted key, a restore)
    assert await tokens.consume(lost, VERIFY_EMAIL) is None
