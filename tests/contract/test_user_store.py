"""The user-store contract: one suite, run against SQLite and PostgreSQL, each for real."""

from __future__ import annotations

import asyncio
import dataclasses
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import aiosqlite
import asyncpg
import pytest

from sessionauth.backends.sqlite.users import SQLiteUserStore
from sessionauth.errors import (
    AdminLockout,
    ConfigurationError,
    DuplicateUser,
    StoreUnavailable,
    UserNotFound,
)
from sessionauth.stores.users import (
    MAX_PAGE,
    InvalidEmail,
    User,
    UserPage,
    UserStore,
    normalize_email,
)
from tests.support.backends import user_store
from tests.support.clock import FakeClock
from tests.support.services import PostgresServer, free_port

HASH = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaA"


@dataclass
class Backend:
    """A store under test, and how to open another store on the same table."""

    store: UserStore
    url: str
    table: str


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def backend(
    request: pytest.FixtureRequest, tmp_path: Path, clock: FakeClock
) -> AsyncIterator[Backend]:
    # A table per test: the PostgreSQL database is shared by the whole run.
    table = f"users_{secrets.token_hex(6)}"
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'users.db'}"
    else:
        url = request.getfixturevalue("postgres_dsn")
    store = user_store(url, table=table, clock=clock)
    try:
        yield Backend(store=store, url=url, table=table)
    finally:
        await store.aclose()
        if request.param == "postgres":
            connection = await asyncpg.connect(url)
            try:
                await connection.execute(f"DROP TABLE IF EXISTS {table}")
            finally:
                await connection.close()


@pytest.fixture
def store(backend: Backend) -> UserStore:
    return backend.store


# --------------------------------------------------------------------------- create and read


async def test_create_returns_the_stored_user(store: UserStore, clock: FakeClock) -> None:
    """create() returns an enabled user: int id, normalised email, created at the clock's time."""
    user = await store.create("  Alice@Example.COM ", HASH, "admin")
    assert isinstance(user.id, int)
    assert user.email == "alice@example.com"
    assert (user.role, user.password_hash, user.disabled) == ("admin", HASH, False)
    assert user.created_at == pytest.approx(clock.now)
    assert await store.get(user.id) == user


async def test_role_defaults_to_user(store: UserStore) -> None:
    """A user created without a role gets the role "user"."""
    user = await store.create("bob@example.com", HASH)
    assert user.role == "user"


async def test_get_of_unknown_or_impossible_ids_is_none(store: UserStore) -> None:
    """get() returns None for an id never issued, zero, negative or beyond 64 bits."""
    user = await store.create("carol@example.com", HASH)
    for user_id in (user.id + 1000, 0, -1, 2**63, 2**70):
        assert await store.get(user_id) is None


@pytest.mark.parametrize(
    "variant",
    [
        "dave@example.com",
        "DAVE@EXAMPLE.COM",
        "  dave@example.com\t",
        "ｄａｖｅ@ｅｘａｍｐｌｅ.ｃｏｍ",  # noqa: RUF001 - full-width letters, folded by NFKC
    ],
)
async def test_get_by_email_finds_every_variant(store: UserStore, variant: str) -> None:
    """get_by_email() matches an address in any case, padding or Unicode compatibility form."""
    user = await store.create("Dave@Example.com", HASH)
    assert await store.get_by_email(variant) == user


@pytest.mark.parametrize("email", ["nobody@example.com", "no-at-sign", "a\r\n@b.com", ""])
async def test_get_by_email_of_unknown_or_invalid_address_is_none(
    store: UserStore, email: str
) -> None:
    """get_by_email() returns None for an unknown address and for a string that is no address."""
    await store.create("erin@example.com", HASH)
    assert await store.get_by_email(email) is None


async def test_list_returns_every_user_in_id_order(store: UserStore) -> None:
    """list() is empty at first, then returns all users, oldest id first."""
    assert await store.list() == []
    created = [await store.create(f"user{n}@example.com", HASH) for n in range(5)]
    listed = await store.list()
    assert listed == created
    assert [user.id for user in listed] == sorted(user.id for user in listed)


async def test_a_second_store_on_the_same_table_sees_the_same_users(
    backend: Backend, clock: FakeClock
) -> None:
    """Opening the store again keeps the existing table and its rows (idempotent schema)."""
    user = await backend.store.create("frank@example.com", HASH)
    async with user_store(backend.url, table=backend.table, clock=clock) as again:
        assert await again.get(user.id) == user


# --------------------------------------------------------------------------- uniqueness


@pytest.mark.parametrize(
    "variant",
    [
        "grace@example.com",
        "GRACE@example.com",
        " grace@example.com \n",
        "ｇｒａｃｅ@example.com",  # noqa: RUF001 - full-width letters, folded by NFKC
    ],
)
async def test_duplicate_email_in_any_variant_is_refused(store: UserStore, variant: str) -> None:
    """A second account whose email normalises to an existing one raises DuplicateUser."""
    await store.create("grace@example.com", HASH)
    with pytest.raises(DuplicateUser):
        await store.create(variant, HASH)
    assert len(await store.list()) == 1


async def test_composed_and_decomposed_accents_are_one_email(store: UserStore) -> None:
    """An address with a precomposed é and the same with e + combining accent are one account."""
    user = await store.create("jos\u00e9@example.com", HASH)
    with pytest.raises(DuplicateUser):
        await store.create("jose\u0301@example.com", HASH)
    assert await store.get_by_email("JOSE\u0301@example.com") == user


async def test_racing_sign_ups_create_one_account(store: UserStore) -> None:
    """Of ten concurrent creates of one email, exactly one succeeds; nine get DuplicateUser."""
    results = await asyncio.gather(
        *(store.create("heidi@example.com", HASH) for _ in range(10)), return_exceptions=True
    )
    assert sum(isinstance(result, User) for result in results) == 1
    assert sum(isinstance(result, DuplicateUser) for result in results) == 9


@pytest.mark.parametrize(
    "email",
    [
        # Quotes, comments and statement breaks that are still one plain address (a ';', '(',
        # space or '"' makes it no address at all: see test_addr_spec.py).
        "robert'--drop_table@example.com",
        "x'or'1'='1@example.com",
        "'||'*/@example.com",
        "%@example.com",
        "_@example.com",
        "$1@example.com",
        "?@example.com",
    ],
)
async def test_sql_shaped_emails_are_stored_literally(store: UserStore, email: str) -> None:
    """An email full of SQL syntax or LIKE wildcards is stored as text and matches only itself."""
    other = await store.create("ivan@example.com", HASH)
    user = await store.create(email, HASH)
    assert user.email == email
    assert await store.get_by_email(email) == user
    assert await store.list() == [other, user]


# --------------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    "email",
    [
        "no-at-sign.example.com",
        "user@",
        "@example.com",
        "   ",
        "a\r\nbcc:victim@example.com",
        "a\n@example.com",
        "a\x00@example.com",
        "zero\u200bwidth@example.com",
        "bidi\u202e@example.com",
        "a" * 250 + "@b.com",
        "a" * 5000 + "@b.com",
    ],
)
async def test_unusable_emails_are_refused(store: UserStore, email: str) -> None:
    """create() raises InvalidEmail for no '@', control or invisible characters, or > 254 chars."""
    with pytest.raises(InvalidEmail):
        await store.create(email, HASH)
    assert await store.list() == []


@pytest.mark.parametrize("role", ["", " admin", "admin ", "ad\nmin", "r" * 65])
async def test_unusable_roles_are_refused(store: UserStore, role: str) -> None:
    """create() and set_role() raise ValueError for an empty, padded, multi-line or long role."""
    with pytest.raises(ValueError, match="role"):
        await store.create("judy@example.com", HASH, role)
    user = await store.create("judy@example.com", HASH)
    with pytest.raises(ValueError, match="role"):
        await store.set_role(user.id, role)
    assert await store.get(user.id) == user


# --------------------------------------------------------------------------- updates and delete


async def test_set_role_changes_only_the_role(store: UserStore) -> None:
    """set_role() returns and persists the new role, leaving other fields alone."""
    user = await store.create("ken@example.com", HASH)
    updated = await store.set_role(user.id, "admin")
    assert updated.role == "admin"
    assert updated == dataclasses.replace(user, role="admin")
    assert await store.get(user.id) == updated


async def test_set_password_replaces_the_hash(store: UserStore) -> None:
    """set_password() persists the new hash and nothing else."""
    user = await store.create("leo@example.com", HASH)
    assert await store.set_password(user.id, "$2b$12$new") is True
    assert await store.get(user.id) == dataclasses.replace(user, password_hash="$2b$12$new")


async def test_set_password_replacing_writes_only_over_that_hash(store: UserStore) -> None:
    """The compare-and-set write: a change that read an older hash loses, and says so."""
    user = await store.create("leo@example.com", HASH)
    assert await store.set_password(user.id, "$argon2id$reset", replacing=HASH) is True
    # A late write of a change that verified against HASH: refused, the reset stands.
    assert await store.set_password(user.id, "$argon2id$late", replacing=HASH) is False
    assert (await store.get(user.id)) == dataclasses.replace(user, password_hash="$argon2id$reset")
    assert await store.set_password(user.id + 1, "$argon2id$x", replacing=HASH) is False
    assert await store.set_password(-1, "$argon2id$x", replacing=HASH) is False


async def test_concurrent_writes_over_one_hash_let_exactly_one_through(store: UserStore) -> None:
    """Twenty changes that all verified the same password: one wins, nineteen are refused."""
    user = await store.create("leo@example.com", HASH)
    hashes = [f"$argon2id$change-{n}" for n in range(20)]
    results = await asyncio.gather(
        *(store.set_password(user.id, new, replacing=HASH) for new in hashes)
    )
    assert results.count(True) == 1
    winner = hashes[results.index(True)]
    assert (await store.get(user.id)) == dataclasses.replace(user, password_hash=winner)


async def test_set_disabled_toggles_the_flag(store: UserStore) -> None:
    """set_disabled() disables and re-enables an account, persisting each state."""
    user = await store.create("mallory@example.com", HASH)
    assert (await store.set_disabled(user.id, True)).disabled is True
    disabled = await store.get_by_email("mallory@example.com")
    assert disabled == dataclasses.replace(user, disabled=True)
    assert (await store.set_disabled(user.id, False)).disabled is False
    assert await store.get(user.id) == user


async def test_delete_removes_the_user_and_frees_the_email(store: UserStore) -> None:
    """After delete() the user is gone, and the email can sign up again under a new id."""
    user = await store.create("niaj@example.com", HASH)
    await store.delete(user.id)
    assert await store.get(user.id) is None
    assert await store.get_by_email("niaj@example.com") is None
    again = await store.create("niaj@example.com", HASH)
    assert again.id != user.id


async def test_ids_are_never_reused(store: UserStore) -> None:
    """A user created after the newest one was deleted gets a larger id, not the freed one."""
    first = await store.create("olivia@example.com", HASH)
    second = await store.create("peggy@example.com", HASH)
    await store.delete(second.id)
    third = await store.create("rupert@example.com", HASH)
    assert first.id < second.id < third.id


MISSING_USER_OPERATIONS: dict[str, Callable[[UserStore, int], Awaitable[object]]] = {
    "set_role": lambda store, user_id: store.set_role(user_id, "admin"),
    "set_password": lambda store, user_id: store.set_password(user_id, HASH),
    "set_disabled": lambda store, user_id: store.set_disabled(user_id, True),
    "delete": lambda store, user_id: store.delete(user_id),
}


# --------------------------------------------------------------------------- the last admin

ADMIN_REMOVALS: dict[str, Callable[[UserStore, int], Awaitable[object]]] = {
    "demote": lambda store, user_id: store.set_role(user_id, "user", keep_admin=True),
    "disable": lambda store, user_id: store.set_disabled(user_id, True, keep_admin=True),
    "delete": lambda store, user_id: store.delete(user_id, keep_admin=True),
}


async def _enabled_admins(store: UserStore) -> list[int]:
    return [u.id for u in await store.list() if u.role == "admin" and not u.disabled]


@pytest.mark.parametrize("removal", ADMIN_REMOVALS)
async def test_keep_admin_refuses_to_remove_the_last_enabled_admin(
    store: UserStore, removal: str
) -> None:
    """With keep_admin, the last enabled admin stays; with another one, the change applies."""
    root = await store.create("root@example.com", HASH, "admin")
    off = await store.create("off@example.com", HASH, "admin")
    await store.set_disabled(off.id, True)  # a disabled admin administers nothing
    user = await store.create("user@example.com", HASH)
    with pytest.raises(AdminLockout):
        await ADMIN_REMOVALS[removal](store, root.id)
    assert await store.get(root.id) == root
    await ADMIN_REMOVALS[removal](store, user.id)  # not an admin: nothing to keep
    await ADMIN_REMOVALS[removal](store, off.id)  # not enabled: nothing to keep
    await store.create("second@example.com", HASH, "admin")
    await ADMIN_REMOVALS[removal](store, root.id)
    assert len(await _enabled_admins(store)) == 1


async def test_without_keep_admin_the_last_admin_can_go(store: UserStore) -> None:
    """keep_admin is opt-in: an unguarded change (the CLI's --force) demotes the last admin."""
    root = await store.create("root@example.com", HASH, "admin")
    assert (await store.set_role(root.id, "user")).role == "user"
    assert (await store.set_role(root.id, "admin", keep_admin=True)).role == "admin"


@pytest.mark.parametrize("removal", ADMIN_REMOVALS)
async def test_two_admins_removing_each_other_at_once_leave_one(
    backend: Backend, clock: FakeClock, removal: str
) -> None:
    """Two stores (two workers) removing the only two admins concurrently: one wins, one 409s."""
    change = ADMIN_REMOVALS[removal]
    async with user_store(backend.url, table=backend.table, clock=clock) as other:
        for round_ in range(15):
            first = await backend.store.create(f"a{round_}@example.com", HASH, "admin")
            second = await backend.store.create(f"b{round_}@example.com", HASH, "admin")
            results = await asyncio.gather(
                change(backend.store, second.id), change(other, first.id), return_exceptions=True
            )
            refused = [r for r in results if isinstance(r, AdminLockout)]
            assert len(refused) == 1, results
            (survivor,) = await _enabled_admins(backend.store)
            # The next round starts with no admin again (an unguarded demotion).
            await backend.store.set_role(survivor, "user")


@pytest.mark.parametrize("operation", MISSING_USER_OPERATIONS)
async def test_operations_on_a_missing_user_raise_user_not_found(
    store: UserStore, operation: str
) -> None:
    """Updating or deleting a deleted, never-issued or out-of-range id raises UserNotFound."""
    user = await store.create("sybil@example.com", HASH)
    await store.delete(user.id)
    for user_id in (user.id, user.id + 1000, 0, -5, 2**64):
        with pytest.raises(UserNotFound):
            await MISSING_USER_OPERATIONS[operation](store, user_id)


async def test_ping_answers(store: UserStore) -> None:
    """ping() returns quietly when the database is up, also when asked several times at once."""
    assert await asyncio.gather(*(store.ping() for _ in range(3))) == [None] * 3


# --------------------------------------------------------------------------- opening and failures


async def test_unknown_url_scheme_is_a_configuration_error() -> None:
    """open_backend() refuses a URL scheme it does not know."""
    with pytest.raises(ConfigurationError, match="unknown database URL"):
        user_store("mysql://localhost/users")


@pytest.mark.parametrize("url", ["memory://", "redis://127.0.0.1:6379/0"])
async def test_backends_without_sql_cannot_keep_users(url: str) -> None:
    """Asking memory:// or Redis for a user store names the URLs that can keep accounts."""
    with pytest.raises(ConfigurationError, match="sqlite:///PATH or postgresql://"):
        user_store(url)


@pytest.mark.parametrize("table", ["users; drop table x", "1users", "users-x", "", "t" * 49])
async def test_unsafe_table_names_are_refused_before_opening(tmp_path: Path, table: str) -> None:
    """A table name that is not a plain identifier raises ConfigurationError and creates no file."""
    path = tmp_path / "users.db"
    with pytest.raises(ConfigurationError, match="table name"):
        user_store(f"sqlite:///{path}", table=table)
    assert not path.exists()


async def test_sqlite_relative_urls_and_wal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """sqlite:///relative.db opens a file relative to the working directory, in WAL mode."""
    monkeypatch.chdir(tmp_path)
    async with user_store("sqlite:///relative.db") as store:
        await store.create("trent@example.com", HASH)
    assert (tmp_path / "relative.db").exists()
    async with aiosqlite.connect(tmp_path / "relative.db") as connection:
        rows = list(await connection.execute_fetchall("PRAGMA journal_mode"))
    assert rows[0][0] == "wal"


async def test_sqlite_unopenable_path_is_store_unavailable(tmp_path: Path) -> None:
    """A database file that cannot be created raises StoreUnavailable, not a driver error."""
    (tmp_path / "a-file").write_text("")  # its "directory" can never be made
    async with user_store(f"sqlite:///{tmp_path / 'a-file' / 'users.db'}") as store:
        with pytest.raises(StoreUnavailable):
            await store.ping()


async def test_sqlite_store_leaves_a_borrowed_connection_open(tmp_path: Path) -> None:
    """A store built on the caller's connection does not close it on aclose()."""
    async with aiosqlite.connect(tmp_path / "users.db", isolation_level=None) as connection:
        store = SQLiteUserStore(connection)
        await store.create("uma@example.com", HASH)
        await store.aclose()
        assert list(await connection.execute_fetchall("SELECT count(*) FROM sessionauth_users"))


@pytest.mark.postgres
async def test_unreachable_postgres_is_store_unavailable() -> None:
    """Connecting to a port where nothing listens raises StoreUnavailable promptly."""
    started = time.monotonic()
    async with user_store(f"postgresql://postgres@127.0.0.1:{free_port()}/x", timeout=1) as store:
        with pytest.raises(StoreUnavailable):
            await store.ping()
    assert time.monotonic() - started < 5


@pytest.mark.postgres
async def test_postgres_refusing_the_database_is_store_unavailable(postgres_dsn: str) -> None:
    """A server refusing the database name is an outage naming the refusal, as for sessions."""
    name = f"no_such_db_{secrets.token_hex(4)}"
    async with user_store(postgres_dsn.rsplit("/", 1)[0] + f"/{name}") as store:
        with pytest.raises(StoreUnavailable, match=f"InvalidCatalogNameError.*{name}"):
            await store.ping()


@pytest.mark.postgres
@pytest.mark.slow
async def test_postgres_outage_and_freeze_are_store_unavailable(
    private_postgres: PostgresServer, clock: FakeClock
) -> None:
    """A stopped or frozen server raises StoreUnavailable within the timeout; then it recovers."""
    store = user_store(private_postgres.dsn, clock=clock, timeout=1)
    try:
        user = await store.create("victor@example.com", HASH)
        private_postgres.stop()
        with pytest.raises(StoreUnavailable):
            await store.ping()
        private_postgres.start()
        # PostgreSQL backends leave the postmaster's process group, so pause() freezes only the
        # postmaster: what hangs is a new connection, as a second replica starting would see.
        private_postgres.pause()
        started = time.monotonic()
        async with user_store(private_postgres.dsn, clock=clock, timeout=1) as second:
            with pytest.raises(StoreUnavailable):
                await second.ping()
        assert time.monotonic() - started < 3
        private_postgres.resume()
        # The pool drops the connection that broke in the outage and connects afresh.
        results = [await _attempt(store.get(user.id)) for _ in range(3)]
        assert user in results
    finally:
        await store.aclose()


async def _attempt(operation: Awaitable[User | None]) -> User | StoreUnavailable | None:
    try:
        return await operation
    except StoreUnavailable as exc:
        return exc


def test_user_repr_hides_the_password_hash() -> None:
    """repr(User) never contains the password hash, so it cannot leak into logs."""
    user = User(id=1, email="a@b.c", role="user", password_hash=HASH, disabled=False, created_at=0)
    assert HASH not in repr(user)
    assert "password_hash" not in repr(user)


@pytest.mark.parametrize(
    "email", ["İstanbul@Example.com", "ẞtraße@example.com", "ﬁle@example.com", "A@B"]
)
def test_normalize_email_is_idempotent(email: str) -> None:
    """normalize_email() of a normalised address returns it unchanged (a fixed point)."""
    once = normalize_email(email)
    assert normalize_email(once) == once


# -- pages and search -----------------------------------------------------------------------


async def test_page_walks_every_user_in_id_order_by_keyset(store: UserStore) -> None:
    """page() returns `limit` users per page, lowest id first; next_after chains to the end."""
    created = [await store.create(f"user{n}@example.com", HASH) for n in range(7)]
    seen, after, pages = [], 0, 0
    while True:
        page = await store.page(after=after, limit=3)
        seen.extend(page.users)
        pages += 1
        if page.next_after is None:
            break
        assert page.next_after == page.users[-1].id
        after = page.next_after
    assert seen == created
    assert pages == 3  # 3 + 3 + 1: the last page says it is the last


async def test_a_full_last_page_says_no_more(store: UserStore) -> None:
    """A page that ends exactly at the last user has no next_after (no empty trailing page)."""
    created = [await store.create(f"user{n}@example.com", HASH) for n in range(4)]
    first = await store.page(limit=2)
    second = await store.page(after=first.next_after or 0, limit=2)
    assert first.users == created[:2]
    assert second.users == created[2:]
    assert second.next_after is None
    assert await store.page() == UserPage(users=created, next_after=None)


async def test_a_deletion_between_pages_neither_repeats_nor_skips(store: UserStore) -> None:
    """Keyset paging: deleting a user already shown does not shift the next page."""
    created = [await store.create(f"user{n}@example.com", HASH) for n in range(6)]
    first = await store.page(limit=3)
    await store.delete(created[0].id)
    second = await store.page(after=first.next_after or 0, limit=3)
    assert second.users == created[3:]


async def test_search_matches_a_substring_of_the_email_in_any_case(store: UserStore) -> None:
    """search finds emails containing it, case-insensitively (emails are stored case-folded)."""
    alice = await store.create("Alice.Smith@Example.com", HASH)
    await store.create("bob@example.org", HASH)
    carol = await store.create("carol@smithing.example", HASH)
    assert (await store.page(search="SMITH")).users == [alice, carol]
    assert (await store.page(search="  example.COM ")).users == [alice]
    assert (await store.page(search="nobody")).users == []
    assert len((await store.page(search="")).users) == 3


@pytest.mark.parametrize(
    ("search", "expected"),
    # No address holds a backslash (it is refused), so the escape character matches nothing.
    [("%", ["100%@example.com"]), ("_", ["a_b@example.com"]), ("\\", [])],
)
async def test_search_wildcards_match_literally(
    store: UserStore, search: str, expected: list[str]
) -> None:
    """`%`, `_` and the escape character match themselves, not any text (LIKE is escaped)."""
    for email in ("100%@example.com", "a_b@example.com", "axb@e.com"):
        await store.create(email, HASH)
    assert [user.email for user in (await store.page(search=search)).users] == expected


async def test_search_pages_through_the_matches_only(store: UserStore) -> None:
    """With search, pages hold only matches, and next_after chains over the non-matches."""
    for n in range(6):
        await store.create(f"{'match' if n % 2 else 'other'}{n}@example.com", HASH)
    first = await store.page(search="match", limit=2)
    assert [user.email for user in first.users] == ["match1@example.com", "match3@example.com"]
    second = await store.page(search="match", after=first.next_after or 0, limit=2)
    assert [user.email for user in second.users] == ["match5@example.com"]
    assert second.next_after is None


@pytest.mark.parametrize(
    ("after", "limit"), [(0, 0), (0, MAX_PAGE + 1), (-1, 10)], ids=["zero", "too-many", "neg"]
)
async def test_page_refuses_an_out_of_range_limit_or_after(
    store: UserStore, after: int, limit: int
) -> None:
    """limit must be 1..MAX_PAGE and after non-negative, else ValueError."""
    with pytest.raises(ValueError, match=r"page|after"):
        await store.page(after=after, limit=limit)


async def test_page_after_the_largest_id_or_with_an_overlong_search_is_empty(
    store: UserStore,
) -> None:
    """An after beyond every id, or a search longer than any email, matches no one."""
    await store.create("dave@example.com", HASH)
    assert await store.page(after=2**63) == UserPage(users=[], next_after=None)
    assert await store.page(search="x" * 300) == UserPage(users=[], next_after=None)
    assert (await store.page(limit=MAX_PAGE)).users[0].email == "dave@example.com"


async def test_previous_before_walks_back_to_the_first_page(store: UserStore) -> None:
    """A later page names the page before it; going back returns exactly the earlier users."""
    created = [await store.create(f"user{n}@example.com", HASH) for n in range(7)]
    first = await store.page(limit=3)
    assert first.previous_before is None
    second = await store.page(after=first.next_after or 0, limit=3)
    assert second.users == created[3:6]
    assert second.previous_before is not None
    back = await store.page(before=second.previous_before, limit=3)
    assert back == UserPage(users=created[:3], next_after=created[2].id, previous_before=None)
    assert (await store.page(after=back.next_after or 0, limit=3)).users == created[3:6]


async def test_before_gives_the_last_matches_below_an_id(store: UserStore) -> None:
    """before=id: the `limit` matches just below it, in id order, with both neighbours named."""
    created = [await store.create(f"user{n}@example.com", HASH) for n in range(7)]
    page = await store.page(before=created[6].id, limit=2)
    assert page.users == created[4:6]
    assert page.previous_before == created[4].id
    assert page.next_after == created[5].id  # user6 follows
    earlier = await store.page(before=page.previous_before or 0, limit=2)
    assert earlier.users == created[2:4]
    last = await store.page(before=2**63, limit=2)
    assert last.users == created[5:]
    assert last.next_after is None


async def test_before_with_search_skips_the_non_matches(store: UserStore) -> None:
    """Going back with search lists only matches, and names no previous page past the first."""
    created = [
        await store.create(f"{'match' if n % 2 else 'other'}{n}@example.com", HASH)
        for n in range(6)
    ]
    page = await store.page(search="MATCH", before=created[5].id, limit=5)
    assert [user.email for user in page.users] == ["match1@example.com", "match3@example.com"]
    assert page.previous_before is None
    assert page.next_after == created[4].id  # match5 follows


@pytest.mark.parametrize(("after", "before"), [(3, 5), (0, 0), (0, -1)])
async def test_page_refuses_after_with_before_or_a_non_positive_before(
    store: UserStore, after: int, before: int
) -> None:
    """after and before together, or before < 1: ValueError."""
    with pytest.raises(ValueError, match="before"):
        await store.page(after=after, before=before)
