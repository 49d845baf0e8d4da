"""The user-store contract for email state: verified or not, a new email, and old tables."""

from __future__ import annotations

import asyncio
import secrets
import sqlite3
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import pytest

from sessionauth.errors import DuplicateUser, InvalidEmail, UserNotFound
from sessionauth.stores.users import User, UserStore
from tests.support.backends import user_store
from tests.support.clock import FakeClock

HASH = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaA"

# The table as releases before email verification created it, in each database.
_OLD_SQLITE = """CREATE TABLE {t} (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    email TEXT NOT NULL,
    role TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    disabled INTEGER NOT NULL DEFAULT 0 CHECK (disabled IN (0, 1)),
    created_at REAL NOT NULL,
    CONSTRAINT {t}_email_key UNIQUE (email)
)"""
_OLD_POSTGRES = """CREATE TABLE {t} (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    email TEXT NOT NULL,
    role TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    disabled BOOLEAN NOT NULL DEFAULT FALSE,
    created_at DOUBLE PRECISION NOT NULL,
    CONSTRAINT {t}_email_key UNIQUE (email)
)"""
_OLD_ROWS = "INSERT INTO {t} (email, role, password_hash, disabled, created_at) VALUES "


@dataclass
class Backend:
    """A store under test, its URL and table, and which database it is."""

    store: UserStore
    url: str
    table: str
    kind: str


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def backend(
    request: pytest.FixtureRequest, tmp_path: Path, clock: FakeClock
) -> AsyncIterator[Backend]:
    # A table per test: the PostgreSQL database is shared by the whole run.
    table = f"users_{secrets.token_hex(6)}"
    kind = request.param
    if kind == "sqlite":
        url = f"sqlite:///{tmp_path / 'users.db'}"
    else:
        url = request.getfixturevalue("postgres_dsn")
    store = user_store(url, table=table, clock=clock)
    try:
        yield Backend(store=store, url=url, table=table, kind=kind)
    finally:
        await store.aclose()
        if kind == "postgres":
            connection = await asyncpg.connect(url)
            try:
                await connection.execute(f"DROP TABLE IF EXISTS {table}")
            finally:
                await connection.close()


@pytest.fixture
def store(backend: Backend) -> UserStore:
    return backend.store


async def test_accounts_are_created_verified_unless_told_otherwise(store: UserStore) -> None:
    """create() makes a verified account by default and an unverified one with verified=False."""
    made = await store.create("admin-made@example.com", HASH)
    signed_up = await store.create("signed-up@example.com", HASH, verified=False)
    assert made.email_verified is True
    assert signed_up.email_verified is False
    assert await store.get(made.id) == made
    assert await store.get_by_email("Signed-Up@example.com") == signed_up
    assert [u.email_verified for u in await store.list()] == [True, False]
    page = await store.page(search="signed")
    assert [u.email_verified for u in page.users] == [False]


async def test_mark_email_verified_verifies_only_that_account(store: UserStore) -> None:
    """mark_email_verified() verifies the account, returns it, and leaves the others alone."""
    ann = await store.create("ann@example.com", HASH, verified=False)
    bob = await store.create("bob@example.com", HASH, verified=False)
    verified = await store.mark_email_verified(ann.id)
    assert verified.email_verified is True
    assert verified.email == ann.email
    assert await store.get(ann.id) == verified
    assert (await store.get(bob.id)) == bob


@pytest.mark.parametrize("user_id", [10_000, 0, -1, 2**63])
async def test_mark_email_verified_of_no_account_is_user_not_found(
    store: UserStore, user_id: int
) -> None:
    """mark_email_verified() of an id that names no account raises UserNotFound."""
    with pytest.raises(UserNotFound):
        await store.mark_email_verified(user_id)


async def test_mark_email_verified_with_the_current_email_in_any_form(store: UserStore) -> None:
    """With email=, the account is verified when that is its address, in any case or padding."""
    user = await store.create("cat@example.com", HASH, verified=False)
    verified = await store.mark_email_verified(user.id, email="  CAT@Example.com ")
    assert (verified.email, verified.email_verified) == ("cat@example.com", True)


@pytest.mark.parametrize("email", ["old@example.com", "no-at-sign", "a\r\n@b.com"])
async def test_mark_email_verified_with_another_email_changes_nothing(
    store: UserStore, email: str
) -> None:
    """With email=, an address the account does not have (now) raises UserNotFound, unverified."""
    user = await store.create("dan@example.com", HASH, verified=False)
    with pytest.raises(UserNotFound):
        await store.mark_email_verified(user.id, email=email)
    assert await store.get(user.id) == user


async def test_set_email_stores_the_new_address_normalised_and_its_state(
    store: UserStore,
) -> None:
    """set_email() replaces the address (normalised) and sets verified as told; the old is free."""
    user = await store.create("eve@example.com", HASH)
    changed = await store.set_email(user.id, " Eve.New@Example.COM", verified=False)
    assert (changed.id, changed.email, changed.email_verified) == (
        user.id,
        "eve.new@example.com",
        False,
    )
    assert await store.get_by_email("eve.new@example.com") == changed
    assert await store.get_by_email("eve@example.com") is None
    confirmed = await store.set_email(user.id, "eve.newer@example.com", verified=True)
    assert confirmed.email_verified is True
    again = await store.create("eve@example.com", HASH)
    assert again.id != user.id


async def test_set_email_to_a_taken_address_is_duplicate_and_changes_nothing(
    store: UserStore,
) -> None:
    """set_email() to another account's address (in another case) raises DuplicateUser."""
    fay = await store.create("fay@example.com", HASH)
    gus = await store.create("gus@example.com", HASH)
    with pytest.raises(DuplicateUser):
        await store.set_email(gus.id, "FAY@example.com", verified=True)
    assert await store.get(gus.id) == gus
    assert await store.get(fay.id) == fay


async def test_set_email_refuses_an_invalid_address_or_a_missing_account(
    store: UserStore,
) -> None:
    """set_email() raises InvalidEmail for a non-address and UserNotFound for no account."""
    user = await store.create("hal@example.com", HASH)
    with pytest.raises(InvalidEmail):
        await store.set_email(user.id, "hal\r\n@example.com", verified=True)
    with pytest.raises(UserNotFound):
        await store.set_email(user.id + 1000, "ivy@example.com", verified=True)
    with pytest.raises(UserNotFound):
        await store.set_email(0, "ivy@example.com", verified=True)
    assert await store.get(user.id) == user


async def test_a_stale_confirmation_racing_an_email_change_never_verifies_the_new_one(
    store: UserStore,
) -> None:
    """A confirmation of the old address racing a change to a new one never verifies the new.

    Whichever wins, the account ends with the new address unverified: the confirmation either
    applied to the old address before the change, or found the address changed and refused.
    """
    for round_ in range(20):
        user = await store.create(f"old{round_}@example.com", HASH, verified=False)
        confirm = store.mark_email_verified(user.id, email=user.email)
        change = store.set_email(user.id, f"new{round_}@example.com", verified=False)
        outcomes = await asyncio.gather(confirm, change, return_exceptions=True)
        assert isinstance(outcomes[0], User | UserNotFound)
        assert isinstance(outcomes[1], User)
        final = await store.get(user.id)
        assert final is not None
        assert (final.email, final.email_verified) == (f"new{round_}@example.com", False)


async def test_a_table_of_an_older_release_counts_its_accounts_verified(
    backend: Backend, clock: FakeClock
) -> None:
    """Opening a table made by the old schema adds the column: old accounts verified, new not."""
    await backend.store.aclose()
    table = backend.table
    rows = "('old@example.com', 'admin', 'h', 0, 1.0), ('off@example.com', 'user', 'h', 1, 2.0)"
    if backend.kind == "sqlite":
        path = backend.url.removeprefix("sqlite:///")
        with sqlite3.connect(path) as db:
            db.execute(_OLD_SQLITE.format(t=table))
            db.execute(_OLD_ROWS.format(t=table) + rows)
        db.close()
    else:
        connection = await asyncpg.connect(backend.url)
        try:
            await connection.execute(_OLD_POSTGRES.format(t=table))
            await connection.execute(
                _OLD_ROWS.format(t=table)
                + rows.replace(", 0, ", ", false, ").replace(", 1, ", ", true, ")
            )
        finally:
            await connection.close()
    # Several processes opening the old table at once: each waits for the one that migrates.
    stores = [user_store(backend.url, table=table, clock=clock) for _ in range(3)]
    try:
        listings = await asyncio.gather(*(store.list() for store in stores))
        for old in listings:
            assert [(u.email, u.disabled, u.email_verified) for u in old] == [
                ("old@example.com", False, True),
                ("off@example.com", True, True),
            ]
        new = await stores[0].create("new@example.com", HASH, verified=False)
        assert new.email_verified is False
        assert await stores[1].get(new.id) == new
    finally:
        for store in stores:
            await store.aclose()
    # Once migrated, a store opening the table finds nothing left to do.
    again = user_store(backend.url, table=table, clock=clock)
    try:
        assert [u.email_verified for u in await again.list()] == [True, True, False]
    finally:
        await again.aclose()
