"""The second-factor store contract: one suite, every backend, each over its real server.

Each test gets two stores on one database through two backends (two connections, pools or
clients, as two workers have), so the concurrency tests race two real connections.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from sessionauth.backends import open_backend
from sessionauth.stores.factors import FactorStore, Passkey, PasskeyUse, TotpRecord
from sessionauth.stores.memory_factors import MemoryFactorStore
from tests.contract.conftest import STORE_BACKENDS

RACERS = 8


@dataclass
class Pair:
    """Two stores on one database, as two workers would have them."""

    first: FactorStore
    second: FactorStore


async def _redis_cleanup(url: str, prefix: str) -> None:
    from tests.contract.backend_redis import delete_keys

    backend = open_backend(url)
    try:
        await delete_keys(backend.clients.client, prefix)  # type: ignore[attr-defined]
    finally:
        await backend.aclose()


async def _drop_tables(dsn: str, table: str) -> None:
    import asyncpg

    connection = await asyncpg.connect(dsn)
    try:
        await connection.execute(
            f'DROP TABLE IF EXISTS "{table}_totp", "{table}_recovery", "{table}_passkeys"'
        )
    finally:
        await connection.close()


def _url(name: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if name == "sqlite":
        return f"sqlite:///{tmp_path / 'factors.db'}"
    if name == "postgres":
        return str(request.getfixturevalue("postgres_dsn"))
    if name == "redis":
        return str(request.getfixturevalue("redis_url"))
    fixture = {"redis_cluster": "redis_cluster", "redis_sentinel": "redis_sentinel"}.get(name)
    if fixture is not None:
        return str(request.getfixturevalue(fixture).url)
    return str(request.getfixturevalue("redis_tls").url)


@pytest.fixture(params=STORE_BACKENDS)
async def pair(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Pair]:
    name = request.param
    if name == "memory":
        store = MemoryFactorStore()
        yield Pair(store, store)  # one process, one dict: the same store
        return
    url = _url(name, request, tmp_path)
    options: dict[str, str] = {}
    if name == "postgres":
        options["table"] = f"factors_{secrets.token_hex(6)}"
    elif name.startswith("redis"):
        options["prefix"] = str(request.getfixturevalue("redis_prefix"))
    first, second = open_backend(url), open_backend(url)
    try:
        yield Pair(first.factor_store(**options), second.factor_store(**options))
    finally:
        await first.aclose()
        await second.aclose()
        if name == "postgres":
            await _drop_tables(url, options["table"])
        elif name.startswith("redis"):
            await _redis_cleanup(url, options["prefix"])


def new_user() -> str:
    return str(secrets.randbelow(2**62) + 1)


def passkey(created: float = 1000.0, count: int = 0, **changes: object) -> Passkey:
    fields: dict[str, object] = {
        "credential_id": secrets.token_bytes(16),
        "public_key": secrets.token_bytes(77),
        "sign_count": count,
        "backup_eligible": True,
        "backed_up": False,
        "transports": ("internal", "hybrid"),
        "name": "Laptop",
        "created": created,
    }
    fields.update(changes)
    return Passkey(**fields)  # type: ignore[arg-type]


async def test_begin_stores_an_unconfirmed_secret(pair: Pair) -> None:
    """begin_totp stores the secret unconfirmed, with no step accepted; get_totp reads it back."""
    user = new_user()
    assert await pair.first.get_totp(user) is None
    assert await pair.first.begin_totp(user, b"\x00secret-1")
    record = await pair.second.get_totp(user)
    assert record is not None
    assert (record.secret, record.confirmed, record.last_step) == (b"\x00secret-1", False, -1)


async def test_begin_replaces_only_an_unconfirmed_secret(pair: Pair) -> None:
    """A new setup replaces a pending secret, but never a confirmed one."""
    user = new_user()
    await pair.first.begin_totp(user, b"one")
    assert await pair.first.begin_totp(user, b"two")
    assert await pair.first.accept_totp_step(user, b"two", 100, confirm=True)
    assert not await pair.second.begin_totp(user, b"three")
    record = await pair.first.get_totp(user)
    assert record is not None
    assert (record.secret, record.confirmed, record.last_step) == (b"two", True, 100)


async def test_accept_needs_the_same_secret_and_a_later_step(pair: Pair) -> None:
    """accept_totp_step refuses another secret, the same step again, and an earlier step."""
    user = new_user()
    await pair.first.begin_totp(user, b"s")
    assert not await pair.first.accept_totp_step(user, b"other", 10, confirm=True)
    assert await pair.first.accept_totp_step(user, b"s", 10, confirm=True)
    assert not await pair.first.accept_totp_step(user, b"s", 10)
    assert not await pair.second.accept_totp_step(user, b"s", 9)
    assert await pair.second.accept_totp_step(user, b"s", 11)
    record = await pair.first.get_totp(user)
    assert record is not None
    assert record.last_step == 11


async def test_an_accepted_step_can_store_the_secret_resealed(pair: Pair) -> None:
    """With ``reseal``, a success also replaces the secret; a refusal changes nothing."""
    user = new_user()
    await pair.first.begin_totp(user, b"old key")
    assert not await pair.first.accept_totp_step(user, b"other", 3, confirm=True, reseal=b"x")
    assert await pair.first.accept_totp_step(user, b"old key", 3, confirm=True, reseal=b"new key")
    assert await pair.second.get_totp(user) == TotpRecord(
        secret=b"new key", confirmed=True, last_step=3
    )
    # The old secret is gone: a code checked against it is refused, and reseals nothing.
    assert not await pair.second.accept_totp_step(user, b"old key", 4, reseal=b"y")
    assert await pair.second.accept_totp_step(user, b"new key", 4)
    assert await pair.first.get_totp(user) == TotpRecord(
        secret=b"new key", confirmed=True, last_step=4
    )


async def test_totp_users_lists_every_user_with_a_totp_factor(pair: Pair) -> None:
    """Pending and confirmed factors are listed; codes alone, or a deleted factor, are not."""
    pending, confirmed, codes_only, gone = (new_user() for _ in range(4))
    await pair.first.begin_totp(pending, b"p")
    await pair.first.begin_totp(confirmed, b"c")
    assert await pair.first.accept_totp_step(confirmed, b"c", 1, confirm=True)
    await pair.first.set_recovery_codes(codes_only, ["a-code-hash"])
    await pair.first.begin_totp(gone, b"g")
    assert await pair.first.delete_totp(gone)
    assert sorted(await pair.second.totp_users()) == sorted([pending, confirmed])


async def test_replace_totp_secret_is_a_compare_and_set_keeping_the_state(pair: Pair) -> None:
    """Only over the secret read; confirmed and the last step stay; one of racing moves wins."""
    user = new_user()
    await pair.first.begin_totp(user, b"old")
    assert await pair.first.accept_totp_step(user, b"old", 7, confirm=True)
    assert not await pair.second.replace_totp_secret(user, b"other", b"new")
    assert await pair.second.replace_totp_secret(user, b"old", b"new")
    assert await pair.first.get_totp(user) == TotpRecord(secret=b"new", confirmed=True, last_step=7)
    assert not await pair.first.replace_totp_secret(user, b"old", b"newer")
    assert not await pair.first.replace_totp_secret(new_user(), b"old", b"new")
    stores = [pair.first, pair.second] * (RACERS // 2)
    results = await asyncio.gather(
        *(store.replace_totp_secret(user, b"new", b"move %d" % n) for n, store in enumerate(stores))
    )
    assert results.count(True) == 1


async def test_confirm_and_use_need_the_right_state(pair: Pair) -> None:
    """A pending factor cannot be used, and a confirmed one cannot be confirmed again."""
    user = new_user()
    await pair.first.begin_totp(user, b"s")
    assert not await pair.first.accept_totp_step(user, b"s", 5)
    assert await pair.first.accept_totp_step(user, b"s", 5, confirm=True)
    assert not await pair.first.accept_totp_step(user, b"s", 6, confirm=True)
    assert not await pair.first.accept_totp_step(new_user(), b"s", 7)


async def test_one_code_submitted_twice_at_once_is_accepted_once(pair: Pair) -> None:
    """Concurrent submissions of one time step, over two connections: exactly one wins."""
    user = new_user()
    await pair.first.begin_totp(user, b"s")
    await pair.first.accept_totp_step(user, b"s", 1, confirm=True)
    stores = [pair.first, pair.second] * (RACERS // 2)
    results = await asyncio.gather(*(s.accept_totp_step(user, b"s", 2) for s in stores))
    assert sorted(results) == [False] * (RACERS - 1) + [True]


async def test_delete_totp(pair: Pair) -> None:
    """delete_totp removes the factor once; a new setup may follow."""
    user = new_user()
    await pair.first.begin_totp(user, b"s")
    await pair.first.accept_totp_step(user, b"s", 1, confirm=True)
    assert await pair.second.delete_totp(user)
    assert not await pair.second.delete_totp(user)
    assert await pair.first.get_totp(user) is None
    assert await pair.first.begin_totp(user, b"new")


async def test_recovery_codes_are_replaced_and_consumed_once(pair: Pair) -> None:
    """Codes replace the old set; each is consumed once; other users' codes are apart."""
    user, other = new_user(), new_user()
    await pair.first.set_recovery_codes(user, ["a" * 64, "b" * 64])
    await pair.first.set_recovery_codes(user, ["c" * 64, "d" * 64, "e" * 64])
    await pair.first.set_recovery_codes(other, ["c" * 64])
    assert await pair.second.count_recovery_codes(user) == 3
    assert not await pair.second.consume_recovery_code(user, "a" * 64)
    assert await pair.second.consume_recovery_code(user, "c" * 64)
    assert not await pair.first.consume_recovery_code(user, "c" * 64)
    assert await pair.first.count_recovery_codes(user) == 2
    assert await pair.first.count_recovery_codes(other) == 1


async def test_a_recovery_code_used_twice_at_once_is_consumed_once(pair: Pair) -> None:
    """Concurrent uses of one recovery code, over two connections: exactly one wins."""
    user = new_user()
    await pair.first.set_recovery_codes(user, ["f" * 64, "0" * 64])
    stores = [pair.first, pair.second] * (RACERS // 2)
    results = await asyncio.gather(*(s.consume_recovery_code(user, "f" * 64) for s in stores))
    assert sorted(results) == [False] * (RACERS - 1) + [True]
    assert await pair.first.count_recovery_codes(user) == 1


async def test_passkeys_are_added_listed_renamed_and_deleted(pair: Pair) -> None:
    """A passkey round-trips every field; a duplicate id is refused; rename and delete work."""
    user = new_user()
    older, newer = passkey(created=1.5, last_used=2.25), passkey(created=3.0)
    assert await pair.first.add_passkey(user, newer)
    assert await pair.first.add_passkey(user, older)
    assert not await pair.second.add_passkey(user, passkey(credential_id=older.credential_id))
    assert await pair.second.list_passkeys(user) == [older, newer]
    assert await pair.second.get_passkey(user, newer.credential_id) == newer
    assert await pair.first.rename_passkey(user, newer.credential_id, "Phone ✓")
    renamed = await pair.second.get_passkey(user, newer.credential_id)
    assert renamed is not None
    assert renamed.name == "Phone ✓"
    assert await pair.first.delete_passkey(user, older.credential_id)
    assert not await pair.first.delete_passkey(user, older.credential_id)
    assert not await pair.first.rename_passkey(user, older.credential_id, "x")
    assert await pair.first.get_passkey(user, older.credential_id) is None
    assert [key.credential_id for key in await pair.second.list_passkeys(user)] == [
        newer.credential_id
    ]
    assert await pair.first.list_passkeys(new_user()) == []


async def test_a_sign_count_only_grows(pair: Pair) -> None:
    """use_passkey stores a growing count, refuses an equal or lower one, and unknown ids."""
    user = new_user()
    key = passkey(count=5)
    await pair.first.add_passkey(user, key)
    used = await pair.first.use_passkey(
        user, key.credential_id, sign_count=6, backed_up=True, now=50.5
    )
    assert used is PasskeyUse.ACCEPTED
    stored = await pair.second.get_passkey(user, key.credential_id)
    assert stored is not None
    assert (stored.sign_count, stored.backed_up, stored.last_used) == (6, True, 50.5)
    for count in (6, 3, 0):
        refused = await pair.second.use_passkey(
            user, key.credential_id, sign_count=count, backed_up=False, now=60.0
        )
        assert refused is PasskeyUse.COUNTER_REGRESSED
    assert await pair.first.get_passkey(user, key.credential_id) == stored
    unknown = await pair.first.use_passkey(
        user, secrets.token_bytes(16), sign_count=9, backed_up=False, now=1.0
    )
    assert unknown is PasskeyUse.UNKNOWN


async def test_an_authenticator_without_a_counter_stays_at_zero(pair: Pair) -> None:
    """A count of 0 after 0 is accepted (no counter kept), but 0 after a positive count is not."""
    user = new_user()
    key = passkey(count=0)
    await pair.first.add_passkey(user, key)
    for _ in range(2):
        used = await pair.first.use_passkey(
            user, key.credential_id, sign_count=0, backed_up=False, now=1.0
        )
        assert used is PasskeyUse.ACCEPTED
    assert (
        await pair.first.use_passkey(
            user, key.credential_id, sign_count=1, backed_up=False, now=2.0
        )
        is PasskeyUse.ACCEPTED
    )
    regressed = await pair.first.use_passkey(
        user, key.credential_id, sign_count=0, backed_up=False, now=3.0
    )
    assert regressed is PasskeyUse.COUNTER_REGRESSED


async def test_one_assertion_used_twice_at_once_is_accepted_once(pair: Pair) -> None:
    """Concurrent uses reporting the same count, over two connections: exactly one wins."""
    user = new_user()
    key = passkey(count=10)
    await pair.first.add_passkey(user, key)
    stores = [pair.first, pair.second] * (RACERS // 2)
    results = await asyncio.gather(
        *(
            s.use_passkey(user, key.credential_id, sign_count=11, backed_up=False, now=5.0)
            for s in stores
        )
    )
    assert results.count(PasskeyUse.ACCEPTED) == 1
    assert results.count(PasskeyUse.COUNTER_REGRESSED) == RACERS - 1


async def test_reset_forgets_every_factor_of_one_user(pair: Pair) -> None:
    """reset deletes the user's TOTP, codes and passkeys, and nothing of another user."""
    user, other = new_user(), new_user()
    for who in (user, other):
        await pair.first.begin_totp(who, b"s")
        await pair.first.set_recovery_codes(who, ["1" * 64])
        await pair.first.add_passkey(who, passkey())
    await pair.second.reset(user)
    assert await pair.first.get_totp(user) is None
    assert await pair.first.count_recovery_codes(user) == 0
    assert await pair.first.list_passkeys(user) == []
    assert await pair.first.get_totp(other) is not None
    assert await pair.first.count_recovery_codes(other) == 1
    assert len(await pair.first.list_passkeys(other)) == 1
