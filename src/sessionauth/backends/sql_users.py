"""What the SQL user stores share: one table, its statements, and the queries built on them.

:class:`SQLUserStore` writes every statement once, with the driver's parameter markers, and
implements the :class:`~sessionauth.stores.users.UserStore` primitives on a single subclass hook,
``_fetch`` (run one statement, return its rows), which is where each driver applies its timeout
and turns its outage errors into ``StoreUnavailable``.
"""

from __future__ import annotations

import abc
import builtins
import re
from collections.abc import Callable, Iterable, Sequence
from typing import Any, ClassVar, get_args

from sessionauth.errors import ConfigurationError, DuplicateUser
from sessionauth.policy import Clock
from sessionauth.stores.users import ADMIN_ROLE, Column, User, UserStore

__all__ = ["SQLUserStore", "sql_table_name"]

# Table names are interpolated into SQL, so only plain identifiers pass; 48 characters leave
# room for derived names (constraints, indexes) within PostgreSQL's 63.
_TABLE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,47}")

_COLUMNS = "id, email, role, password_hash, disabled, created_at, email_verified"


def sql_table_name(name: str) -> str:
    """Return ``name`` if it is safe to put in SQL as a table name.

    Raises:
        ConfigurationError: Unless ``name`` is a plain identifier of at most 48 characters.
    """
    if not _TABLE_NAME.fullmatch(name):
        raise ConfigurationError(
            f"table name {name!r} must be letters, digits and '_' (at most 48, no leading digit)"
        )
    return name


def _user(row: Iterable[Any]) -> User:
    user_id, email, role, password_hash, disabled, created_at, email_verified = row
    return User(
        id=user_id,
        email=email,
        role=role,
        password_hash=password_hash,
        disabled=bool(disabled),
        created_at=created_at,
        email_verified=bool(email_verified),
    )


def _keeps_an_admin(table: str, user_id: str) -> str:
    """The condition under which changing the account ``user_id`` leaves an enabled admin."""
    return (
        f" AND (role <> '{ADMIN_ROLE}' OR disabled OR EXISTS (SELECT 1 FROM {table} AS other"  # noqa: S608
        f" WHERE other.id <> {user_id} AND other.role = '{ADMIN_ROLE}' AND NOT other.disabled))"
    )


class SQLUserStore(UserStore):
    """A user store on one SQL table; the subclass runs the statements on its driver.

    Args:
        table: The table name; a plain identifier.
        clock: Time source for ``created_at``.
        parameter: The driver's marker for the n-th bound parameter (``?``, ``$1``…).
    """

    _duplicate: ClassVar[type[Exception]]
    """The driver's error for a violated UNIQUE constraint (the email's, the only one)."""

    def __init__(self, *, table: str, clock: Clock, parameter: Callable[[int], str]):
        self._table = sql_table_name(table)
        self._clock = clock
        # Identifiers cannot be bound parameters, so the table name is interpolated: it passed
        # sql_table_name(), and every other part of these statements is a constant.
        table, p = self._table, parameter
        self._select = f"SELECT {_COLUMNS} FROM {table}"  # noqa: S608
        self._select_by_id = f"{self._select} WHERE id = {p(1)}"
        self._select_by_email = f"{self._select} WHERE email = {p(1)}"
        self._select_page = {
            descending: f"{self._select} WHERE id BETWEEN {p(1)} AND {p(2)} "
            f"AND email LIKE {p(3)} ESCAPE '\\' "
            f"ORDER BY id {'DESC' if descending else 'ASC'} LIMIT {p(4)}"
            for descending in (False, True)
        }
        self._insert_sql = (
            f"INSERT INTO {table} (email, role, password_hash, disabled, created_at, "  # noqa: S608
            f"email_verified) VALUES ({p(1)}, {p(2)}, {p(3)}, FALSE, {p(4)}, {p(5)}) "
            f"RETURNING {_COLUMNS}"
        )
        # The email and its state change together; with a current email, only while it is.
        self._update_email_sql = (
            f"UPDATE {table} SET email = COALESCE({p(1)}, email), "  # noqa: S608
            f"email_verified = {p(2)} WHERE id = {p(3)} AND email = COALESCE({p(4)}, email) "
            f"RETURNING {_COLUMNS}"
        )
        # With a hash to replace, only while it is the stored one: a compare-and-set.
        self._set_password_sql = (
            f"UPDATE {table} SET password_hash = {p(1)} WHERE id = {p(2)} "  # noqa: S608
            f"AND password_hash = COALESCE({p(3)}, password_hash) RETURNING id"
        )
        self._update_sql = {
            (column, guarded): f"UPDATE {table} SET {column} = {p(1)} "  # noqa: S608
            f"WHERE id = {p(2)}{_keeps_an_admin(table, p(2)) if guarded else ''} "
            f"RETURNING {_COLUMNS}"
            for column in get_args(Column)
            for guarded in (False, True)
        }
        self._delete_sql = {
            guarded: f"DELETE FROM {table} WHERE id = {p(1)}"  # noqa: S608
            f"{_keeps_an_admin(table, p(1)) if guarded else ''} RETURNING id"
            for guarded in (False, True)
        }

    @abc.abstractmethod
    async def _fetch(self, sql: str, *params: Any) -> Sequence[Iterable[Any]]:
        """Run one statement to completion and return its rows (a write is committed)."""

    async def _users(self, sql: str, *params: Any) -> builtins.list[User]:
        return [_user(row) for row in await self._fetch(sql, *params)]

    async def _insert(self, email: str, password_hash: str, role: str, *, verified: bool) -> User:
        try:
            (user,) = await self._users(
                self._insert_sql, email, role, password_hash, self._clock(), verified
            )
        except self._duplicate as exc:
            raise DuplicateUser(f"a user with email {email!r} already exists") from exc
        return user

    async def _update_email(
        self, user_id: int, email: str | None, verified: bool, *, current: str | None = None
    ) -> User | None:
        try:
            users = await self._users(self._update_email_sql, email, verified, user_id, current)
        except self._duplicate as exc:
            raise DuplicateUser(f"a user with email {email!r} already exists") from exc
        return users[0] if users else None

    async def _set_password(self, user_id: int, password_hash: str, replacing: str | None) -> bool:
        return bool(await self._fetch(self._set_password_sql, password_hash, user_id, replacing))

    async def _get(self, user_id: int) -> User | None:
        users = await self._users(self._select_by_id, user_id)
        return users[0] if users else None

    async def _get_by_email(self, email: str) -> User | None:
        users = await self._users(self._select_by_email, email)
        return users[0] if users else None

    async def list(self) -> builtins.list[User]:
        """Return every account, oldest (lowest id) first."""
        return await self._users(f"{self._select} ORDER BY id")

    async def _page(
        self, needle: str, low: int, high: int, limit: int, *, descending: bool = False
    ) -> builtins.list[User]:
        # The needle's own wildcards are escaped, so it matches as typed.
        escaped = needle.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        return await self._users(self._select_page[descending], low, high, f"%{escaped}%", limit)

    async def _update(
        self, user_id: int, column: Column, value: str | bool, *, guarded: bool
    ) -> User | None:
        sql = self._update_sql[column, guarded]
        fetch = self._fetch_serialised if guarded else self._fetch
        users = [_user(row) for row in await fetch(sql, value, user_id)]
        return users[0] if users else None

    async def _delete(self, user_id: int, *, guarded: bool) -> bool:
        fetch = self._fetch_serialised if guarded else self._fetch
        return bool(await fetch(self._delete_sql[guarded], user_id))

    async def _fetch_serialised(self, sql: str, *params: Any) -> Sequence[Iterable[Any]]:
        """Run a guarded statement so that no other guarded statement interleaves with it.

        SQLite needs nothing more than :meth:`_fetch`: a writing statement holds the
        database's one write lock, on its latest snapshot, from its first read to its commit.
        A database where concurrent statements read older snapshots overrides this.
        """
        return await self._fetch(sql, *params)

    async def ping(self) -> None:
        """Raise ``StoreUnavailable`` unless the database answers a trivial query."""
        await self._fetch("SELECT 1")
