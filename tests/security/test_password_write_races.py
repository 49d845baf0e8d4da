"""Attack review 5, of the compare-and-set password write: what it must not get wrong.

Each test failed on 07d5010, the first version of the write: a mailed reset link checked
before the owner's change overwrote that change (it now replaces only the hash the link was
bound to); a rehash at login of the same password made a change with the right current
password answer 401 (the change now replaces the rehash of the password it proved); and a
source's answer was judged by its truth value (``None``, asyncpg's truthy ``"UPDATE 0"``),
so a refused reset reported success (anything but a ``bool`` is now a ``TypeError``).
"""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import bcrypt
import pytest

from sessionauth.auth import Authenticator, PasswordHasher
from sessionauth.backends import open_backend
from sessionauth.stores.base import SessionStore
from sessionauth.stores.memory import MemoryStore
from sessionauth.stores.users import User, UserStore
from tests.integration.test_api import PASSWORD, csrf, login
from tests.integration.test_lifecycle_api import (
    BASE,
    INVALID_LINK,
    NEW_PASSWORD,
    Site,
    link_token,
    running_site,
)
from tests.support.mfa_server import MfaServer, mfa_server_fixture
from tests.support.password_writes import signed_in
from tests.support.smtp_server import SMTPServer, smtp_server

OWNER_PASSWORD = "the owner's brand new passphrase"
ATTACKER_PASSWORD = "the attacker's own passphrase"
ADDRESS = "198.51.100.7"

server = mfa_server_fixture()


@pytest.fixture
async def site(tmp_path: Path) -> AsyncIterator[Site]:
    """The reference server with its mail going to a real SMTP server (as the lifecycle tests)."""
    mailbox: SMTPServer
    with smtp_server() as mailbox:
        async with running_site(tmp_path, mailbox) as made:
            yield made


# -- 1. a reset link checked before the owner's change, written after it -----------------------


async def test_a_reset_link_checked_before_a_password_change_does_not_overwrite_it(
    site: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The link is bound to the password hash, so the owner's change must kill it.

    The attacker holds a mailed reset link. Their POST /password/reset consumes it (binding
    current: epoch, address, hash H0); before the reset writes, the owner changes the
    password (200). The reset then reads the *new* hash and writes over it
    (``AccountAdministration._replace_password`` replaces whatever is stored), although the
    hash its token was bound to is gone: the owner's change, answered 200, is undone.
    Then (review 6) the refused link still ran both rotations of the principal and ended
    the owner's session that their own change had just kept; it now ends nothing.
    """
    await site.add_user("me@example.com")
    owner = await site.signed_in("me@example.com")
    await site.client().post("/password/forgot", json={"email": "me@example.com"})
    token = link_token(await site.mail_to("me@example.com"), "/password/reset")

    tokens = site.app.state.lifecycle.tokens
    consume = tokens.consume
    changed: list[int] = []

    async def consume_then_the_owner_changes(raw: object, purpose: str, **kw: Any) -> Any:
        claim = await consume(raw, purpose, **kw)
        # The link was good when checked; the owner's change lands before the reset's write.
        answer = await owner.post(
            "/password",
            json={"current_password": PASSWORD, "new_password": OWNER_PASSWORD},
            headers=await csrf(owner),
        )
        changed.append(answer.status_code)
        changed.append((await owner.get("/me")).status_code)
        return claim

    monkeypatch.setattr(tokens, "consume", consume_then_the_owner_changes)
    reset = await site.client().post(
        "/password/reset", json={"token": token, "password": ATTACKER_PASSWORD}
    )
    monkeypatch.undo()
    assert changed == [200, 200], changed  # the change was made and kept the owner's session
    assert reset.status_code == 400, reset.text  # the link is refused: nothing was reset
    me = (await owner.get("/me")).status_code
    assert me == 200, f"a refused reset ended the owner's session: GET /me {me}"
    owner_login = {"email": "me@example.com", "password": OWNER_PASSWORD}
    attacker_login = {"email": "me@example.com", "password": ATTACKER_PASSWORD}
    owner_after = (await site.client().post("/login", json=owner_login)).status_code
    attacker_after = (await site.client().post("/login", json=attacker_login)).status_code
    assert (owner_after, attacker_after) == (200, 401), (
        f"the owner's change answered 200, then the reset link checked before it answered "
        f"{reset.status_code} and replaced it: owner login {owner_after}, "
        f"attacker login {attacker_after}"
    )


async def test_a_reset_link_of_an_account_deleted_meanwhile_is_just_an_invalid_link(
    site: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An administrator deletes the account between the link's check and its write.

    The API and the form answer as for any dead link; before (attack review 8), the reset's
    check of the bound hash raised ``UserNotFound``: 404 "User not found" from both, which
    told the link's holder the account had existed and was deleted.
    """
    user = await site.add_user("me@example.com")
    tokens = site.app.state.lifecycle.tokens
    consume = tokens.consume

    async def consume_then_the_account_goes(raw: object, purpose: str, **kw: Any) -> Any:
        claim = await consume(raw, purpose, **kw)
        await site.app.state.authenticator.users.delete(user.id)
        return claim

    answers = []
    for path, form in (("/password/reset", False), ("/ui/password/reset", True)):
        if form:
            user = await site.add_user("me@example.com")
        await site.client().post("/password/forgot", json={"email": "me@example.com"})
        token = link_token(await site.mail_to("me@example.com"), "/password/reset")
        monkeypatch.setattr(tokens, "consume", consume_then_the_account_goes)
        client = site.client()
        if form:
            client.headers["origin"] = BASE
            answer = await client.post(
                path,
                data={"token": token, "password": NEW_PASSWORD, "confirm_password": NEW_PASSWORD},
            )
        else:
            answer = await client.post(path, json={"token": token, "password": NEW_PASSWORD})
        monkeypatch.undo()
        answers.append((answer.status_code, answer.headers.get("location") or answer.json()))
    assert answers == [(400, INVALID_LINK), (303, "/password/reset?error=invalid")], answers


# -- 2. a rehash at login beats a password change ----------------------------------------------


async def test_a_rehash_at_login_does_not_refuse_a_password_change_as_wrong(
    server: MfaServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The owner changes a password whose stored hash is outdated (bcrypt, old argon2 costs).

    Another login with the same password (the owner's phone, or a thief with the stolen
    password) upgrades the hash between the change's check and its write. The rehash replaces
    the hash with one of the *same* password, yet the change's compare-and-set fails and it
    answers 401 "Invalid credentials" for the right current password; the old password stays.
    """
    auth = server.app.state.authenticator
    user, owner = await server.signed_in("ann@example.com")
    # The hash an older release (or weaker argon2 parameters) left: verify() asks to rehash it.
    legacy = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=4)).decode()
    users = auth.users
    assert await users.set_password(user.id, legacy) is True
    set_password = users.set_password
    others: list[int] = []
    upgraded: list[str] = []

    async def another_login_first(user_id: Any, password_hash: str, *, replacing: str) -> bool:
        """The change's write: a login with the same password runs (and rehashes) just before."""
        if not others:
            others.append(0)  # first: the login's own rehash comes through here too
            others[0] = (await login(server.client(), "ann@example.com", PASSWORD)).status_code
            upgraded.append((await users.get(user_id)).password_hash)
        answer: bool = await set_password(user_id, password_hash, replacing=replacing)
        return answer

    monkeypatch.setattr(users, "set_password", another_login_first)
    changed = await owner.post(
        "/password",
        json={"current_password": PASSWORD, "new_password": OWNER_PASSWORD},
        headers=await csrf(owner),
    )
    monkeypatch.undo()
    assert others == [200]
    # The concurrent login did upgrade the hash, to another of the same password.
    assert upgraded[0] != legacy
    assert await auth.hasher.verify(PASSWORD, upgraded[0]) == (True, None)
    old = (await login(server.client(), "ann@example.com", PASSWORD)).status_code
    assert (changed.status_code, old) == (200, 401), (
        f"the change with the right current password answered {changed.status_code} "
        f"{changed.json()} and the old password still signs in ({old})"
    )


# -- 3. a UserSource answering None --------------------------------------------------------------


class Forgetful:
    """A UserSource of an application's own over a real SQLite table, answering ``None``.

    Its write forgets to return its result (``await db.execute(UPDATE ...)`` as the last line).
    """

    def __init__(self, store: UserStore):
        self.store = store

    async def get(self, user_id: int) -> User | None:
        return await self.store.get(user_id)

    async def get_by_email(self, email: str) -> User | None:
        return await self.store.get_by_email(email)

    async def set_password(self, user_id: int, password_hash: str, *, replacing: str) -> None:
        await self.store.set_password(user_id, password_hash, replacing=replacing)


@pytest.fixture
async def forgetful(tmp_path: Path) -> AsyncIterator[tuple[Authenticator[int], UserStore]]:
    """An Authenticator over :class:`Forgetful` and real SQLite sessions, and the table."""
    backend = open_backend(f"sqlite:///{tmp_path / 'users.db'}")
    store = backend.user_store()
    sessions: SessionStore = backend.session_store()
    auth: Authenticator[int] = Authenticator(
        users=Forgetful(store),  # type: ignore[arg-type]
        sessions=sessions,
        hasher=PasswordHasher.for_tests(),
        throttle=None,
    )
    try:
        yield auth, store
    finally:
        await backend.aclose()


async def test_a_change_through_a_source_answering_none_is_a_type_error(
    forgetful: tuple[Authenticator[int], UserStore],
) -> None:
    """A source answering ``None`` wrote: never "wrong current password" (a 401) for that.

    Before, ``not replaced`` was read as "lost a race" whatever the source returned.
    """
    auth, store = forgetful
    await store.create("ann@example.com", await auth.hasher.hash(PASSWORD))
    session = await signed_in(auth, "ann@example.com", PASSWORD, address=ADDRESS)
    with pytest.raises(TypeError, match="must return True"):
        await auth.change_password(session, PASSWORD, OWNER_PASSWORD, address=ADDRESS)


async def test_a_reset_through_a_source_answering_none_is_a_type_error(
    forgetful: tuple[Authenticator[int], UserStore],
) -> None:
    """An administrator's reset through a source answering ``None``: no retry, no "outage".

    Before, it wrote five times, then said StoreUnavailable (a 503, "try again") although
    its first write had landed.
    """
    auth, store = forgetful
    user = await store.create("ann@example.com", await auth.hasher.hash(PASSWORD))
    with pytest.raises(TypeError, match="not None"):
        await auth.set_password(user.id, OWNER_PASSWORD)


def test_a_source_of_the_old_signature_is_refused_when_the_authenticator_is_made() -> None:
    """``set_password(user_id, password_hash)`` (0.1): a TypeError at once, not at a login."""

    class Old:
        async def get(self, user_id: int) -> User | None:
            return None

        async def get_by_email(self, email: str) -> User | None:
            return None

        async def set_password(self, user_id: int, password_hash: str) -> None:
            return None

    with pytest.raises(TypeError, match="replacing"):
        Authenticator(
            users=Old(),  # type: ignore[arg-type]
            sessions=MemoryStore(),
            hasher=PasswordHasher.for_tests(),
            throttle=None,
        )


class AsyncpgUsers:
    """A UserSource of an application's own on PostgreSQL through asyncpg.

    Its write is the compare-and-set the docs ask for, returning what ``Connection.execute``
    returns: the command status, ``"UPDATE 1"`` or ``"UPDATE 0"``, both truthy.
    """

    def __init__(self, db: Any, table: str):
        self.db = db
        self.table = table

    def _row(self, row: Any) -> User | None:
        if row is None:
            return None
        return User(
            id=row["id"],
            email=row["email"],
            role="user",
            password_hash=row["password_hash"],
            disabled=False,
            created_at=0.0,
        )

    async def get(self, user_id: int) -> User | None:
        sql = f"SELECT id, email, password_hash FROM {self.table} WHERE id = $1"  # noqa: S608
        return self._row(await self.db.fetchrow(sql, user_id))

    async def get_by_email(self, email: str) -> User | None:
        sql = f"SELECT id, email, password_hash FROM {self.table} WHERE email = $1"  # noqa: S608
        return self._row(await self.db.fetchrow(sql, email))

    async def set_password(self, user_id: int, password_hash: str, *, replacing: str) -> bool:
        status: Any = await self.db.execute(
            f"UPDATE {self.table} SET password_hash = $1 "  # noqa: S608
            "WHERE id = $2 AND password_hash = $3",
            password_hash,
            user_id,
            replacing,
        )
        return status  # type: ignore[no-any-return]


@pytest.mark.postgres
async def test_an_admin_reset_whose_write_was_refused_does_not_report_success(
    postgres_dsn: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Attack review 4's scenario, back through a truthy "UPDATE 0".

    The administrator's reset reads the hash; the thief's change (which verified the old
    password) lands its compare-and-set; the reset's compare-and-set then matches no row, the
    source answers "UPDATE 0", ``_replace_password`` takes it for success and the reset
    returns normally (a 200 / "password changed" in the CLI), while the thief's password
    stands.
    """
    import asyncpg

    db = await asyncpg.connect(postgres_dsn)
    table = f"members_{tmp_path.name[-8:].replace('-', '_')}"
    backend = open_backend(f"sqlite:///{tmp_path / 'sessions.db'}")
    try:
        await db.execute(
            f"CREATE TABLE {table} (id SERIAL PRIMARY KEY, email TEXT UNIQUE, "
            "password_hash TEXT NOT NULL)"
        )
        users = AsyncpgUsers(db, table)
        hasher = PasswordHasher.for_tests()
        auth: Authenticator[int] = Authenticator(
            users=users, sessions=backend.session_store(), hasher=hasher, throttle=None
        )
        old = await hasher.hash(PASSWORD)
        user_id = await db.fetchval(
            f"INSERT INTO {table} (email, password_hash) VALUES ($1, $2) RETURNING id",  # noqa: S608
            "ann@example.com",
            old,
        )
        thiefs = await hasher.hash(ATTACKER_PASSWORD)
        get = users.get
        slipped: list[object] = []
        reads: list[str] = []

        async def the_thiefs_change_lands_after_the_read(uid: int) -> User | None:
            """The reset's read of the hash (``_replace_password``): the thief writes after it."""
            read = await get(uid)
            caller = sys._getframe(1).f_code.co_name
            reads.append(caller)
            if caller == "_replace_password" and not slipped:
                slipped.append(await users.set_password(uid, thiefs, replacing=old))
            return read

        monkeypatch.setattr(users, "get", the_thiefs_change_lands_after_the_read)
        with pytest.raises(TypeError, match="UPDATE 0"):
            await auth.set_password(user_id, OWNER_PASSWORD)
        monkeypatch.undo()
        assert slipped == ["UPDATE 1"], reads
    finally:
        await db.execute(f"DROP TABLE IF EXISTS {table}")
        await db.close()
        await backend.aclose()
