"""Users: the contract every user store keeps.

The record a store returns (:class:`User`, :class:`UserPage`) and the checks on what it
accepts (:func:`normalize_email`) are defined in :mod:`sessionauth.stores.user_record` and
importable from here too. A :class:`UserStore` keeps accounts in a SQL database: SQLite
(:mod:`sessionauth.backends.sqlite.users`) or PostgreSQL
(:mod:`sessionauth.backends.postgres.users`, needs the ``postgres`` extra); a backend builds
one (``open_backend(url).user_store()``). The contract, checked by
``tests/contract/test_user_store.py``:

* Emails are stored normalised (:func:`normalize_email`), and the database enforces their
  uniqueness: ``Alice@Example.com `` and ``alice@example.com`` are one account, even when two
  sign-ups race.
* User ids are integers assigned by the database and never reused (``AUTOINCREMENT`` in SQLite,
  an identity column in PostgreSQL). Sessions refer to users by id, so reusing the id of a
  deleted account could hand a stale reference to a stranger. Integers also match the
  tutorial's API (``{"userId": 1}``); sessions keep the id as ``str(user.id)``.
* Updates and deletes of a missing id raise :class:`~sessionauth.errors.UserNotFound`; a new
  account, or a new email, that is taken raises :class:`~sessionauth.errors.DuplicateUser`.
* Each account's email is verified or not (``email_verified``). Accounts are created verified
  unless the caller says otherwise (a sign-up does), and accounts stored before the column
  existed count as verified: the tables gain it with a default that says so. A new email set
  with :meth:`UserStore.set_email` is verified only if the caller says it was confirmed.
* Any failure to reach the database, or an operation slower than the store's ``timeout``,
  raises :class:`~sessionauth.errors.StoreUnavailable`, never a driver exception.
"""

from __future__ import annotations

import abc
import builtins
from typing import Final, Literal, NoReturn

from sessionauth.addr_spec import MAX_EMAIL_LENGTH as MAX_EMAIL_LENGTH  # re-exported
from sessionauth.errors import AdminLockout, InvalidEmail, UserNotFound
from sessionauth.stores.user_record import MAX_ID, check_role, fold_email, valid_id
from sessionauth.stores.user_record import User as User  # re-exported
from sessionauth.stores.user_record import UserPage as UserPage  # re-exported
from sessionauth.stores.user_record import normalize_email as normalize_email  # re-exported

__all__ = [
    "ADMIN_ROLE",
    "DEFAULT_TABLE",
    "MAX_PAGE",
    "InvalidEmail",
    "User",
    "UserPage",
    "UserStore",
    "normalize_email",
]

DEFAULT_TABLE: Final = "sessionauth_users"
"""The table user stores create and use unless told otherwise."""
DEFAULT_TIMEOUT: Final = 2.0
"""Seconds a user-store operation may take before it raises ``StoreUnavailable``."""

MAX_PAGE: Final = 200
"""The most accounts one :meth:`UserStore.page` returns."""

ADMIN_ROLE: Final = "admin"
"""The role that administers accounts; the last enabled account with it is protected."""
LAST_ADMIN: Final = "This would leave no enabled administrator"
"""Why a guarded change was refused (see ``keep_admin``)."""

Column = Literal["role", "disabled", "email_verified"]
"""The columns the update operations may set."""


class UserStore(abc.ABC):
    """Abstract user store; see the module docstring for the contract.

    The public methods normalise and validate their arguments once, here, so every backend
    sees the same canonical values; backends implement the underscored primitives.
    """

    async def create(
        self, email: str, password_hash: str, role: str = "user", *, verified: bool = True
    ) -> User:
        """Add an account and return it.

        Args:
            email: Its address.
            password_hash: Its password's hash.
            role: Its role.
            verified: Whether its email counts as confirmed: true for accounts an administrator
                makes, false for a sign-up until the owner confirms the address.

        Raises:
            InvalidEmail: If ``email`` cannot be normalised.
            ValueError: If ``role`` is empty, too long, padded or unprintable.
            DuplicateUser: If an account with the same normalised email exists.
        """
        email, role = normalize_email(email), check_role(role)
        return await self._insert(email, password_hash, role, verified=verified)

    async def get(self, user_id: int) -> User | None:
        """Return the account with this id, or ``None``."""
        return await self._get(user_id) if valid_id(user_id) else None

    async def get_by_email(self, email: str) -> User | None:
        """Return the account with this email (in any case or Unicode form), or ``None``.

        A string that is not a valid address matches no account rather than raising, so a
        login attempt with garbage takes the same path as one with an unknown address.
        """
        try:
            normalized = normalize_email(email)
        except InvalidEmail:
            return None
        return await self._get_by_email(normalized)

    async def set_role(self, user_id: int, role: str, *, keep_admin: bool = False) -> User:
        """Change an account's role and return the updated account.

        Args:
            user_id: The account.
            role: Its new role.
            keep_admin: Refuse, atomically, to demote the last enabled administrator.

        Raises:
            ValueError: If ``role`` is empty, too long, padded or unprintable.
            UserNotFound: If there is no such account.
            AdminLockout: If ``keep_admin`` and no other enabled administrator would be left.
        """
        guarded = keep_admin and role != ADMIN_ROLE
        return await self._set(user_id, "role", check_role(role), guarded=guarded)

    async def set_password(
        self, user_id: int, password_hash: str, *, replacing: str | None = None
    ) -> bool:
        """Replace an account's password hash; with ``replacing``, only while it is that one.

        The condition is part of the one write, so a password change or a rehash at login,
        which verified a password against ``replacing``, never overwrites a change that landed
        since (an administrator's reset ending a thief's sessions, another change).

        Args:
            user_id: The account.
            password_hash: The new hash.
            replacing: The hash the caller read; ``None`` replaces whatever is stored.

        Returns:
            Whether the hash was replaced: ``False`` only with ``replacing``, when the stored
            hash is another one or there is no such account.

        Raises:
            UserNotFound: Without ``replacing``, if there is no such account.
        """
        if valid_id(user_id) and await self._set_password(user_id, password_hash, replacing):
            return True
        if replacing is None:
            raise UserNotFound(f"no user with id {user_id}")
        return False

    async def set_disabled(self, user_id: int, disabled: bool, *, keep_admin: bool = False) -> User:
        """Disable or re-enable an account and return the updated account.

        Args:
            user_id: The account.
            disabled: Whether it is disabled from now on.
            keep_admin: Refuse, atomically, to disable the last enabled administrator.

        Raises:
            UserNotFound: If there is no such account.
            AdminLockout: If ``keep_admin`` and no other enabled administrator would be left.
        """
        return await self._set(user_id, "disabled", disabled, guarded=keep_admin and disabled)

    async def mark_email_verified(self, user_id: int, *, email: str | None = None) -> User:
        """Record that the account's email is confirmed and return the updated account.

        Args:
            user_id: The account.
            email: Confirm only if this is still the account's email (in any case or Unicode
                form), decided atomically with the change: a confirmation link sent to an
                address the account no longer has must not verify the one it has now.

        Raises:
            UserNotFound: If there is no such account, or it no longer has ``email``.
        """
        if email is None:
            return await self._set(user_id, "email_verified", True)
        try:
            normalized = normalize_email(email)
        except InvalidEmail:
            normalized = None
        valid = valid_id(user_id) and normalized is not None
        user = await self._update_email(user_id, None, True, current=normalized) if valid else None
        if user is None:
            raise UserNotFound(f"no user with id {user_id} and email {email!r}")
        return user

    async def set_email(self, user_id: int, email: str, *, verified: bool) -> User:
        """Give the account a new email and return the updated account.

        A change-of-email flow confirms the new address first (a token bound to the account
        and that address) and then calls this with ``verified=True``; an administrator's
        change with ``verified=False`` leaves the new address to be confirmed.

        Raises:
            InvalidEmail: If ``email`` cannot be normalised.
            UserNotFound: If there is no such account.
            DuplicateUser: If another account has this email.
        """
        normalized = normalize_email(email)
        valid = valid_id(user_id)
        user = await self._update_email(user_id, normalized, verified) if valid else None
        if user is None:
            raise UserNotFound(f"no user with id {user_id}")
        return user

    async def delete(self, user_id: int, *, keep_admin: bool = False) -> None:
        """Delete an account.

        Args:
            user_id: The account.
            keep_admin: Refuse, atomically, to delete the last enabled administrator.

        Raises:
            UserNotFound: If there is no such account.
            AdminLockout: If ``keep_admin`` and no other enabled administrator would be left.
        """
        if not valid_id(user_id) or not await self._delete(user_id, guarded=keep_admin):
            await self._refused(user_id, guarded=keep_admin)

    async def _set(
        self, user_id: int, column: Column, value: str | bool, *, guarded: bool = False
    ) -> User:
        valid = valid_id(user_id)
        user = await self._update(user_id, column, value, guarded=guarded) if valid else None
        if user is None:
            await self._refused(user_id, guarded=guarded)
        return user

    async def _refused(self, user_id: int, *, guarded: bool) -> NoReturn:
        """Raise why a change matched no row: the guard kept the last admin, or no account."""
        if guarded and await self.get(user_id) is not None:
            raise AdminLockout(LAST_ADMIN)
        raise UserNotFound(f"no user with id {user_id}")

    async def page(
        self, *, search: str = "", after: int = 0, before: int | None = None, limit: int = 50
    ) -> UserPage:
        """Return one page of the accounts whose email contains ``search``, lowest id first.

        Pages are keyed on the id, so a page never repeats or skips an account because others
        were added or deleted meanwhile: the next page is ``after`` the last id of this one
        (:attr:`UserPage.next_after`), the previous one ``before`` its first id
        (:attr:`UserPage.previous_before`).

        Args:
            search: Part of the email, matched in the form emails are stored in (so in any
                case); every character matches literally, ``%`` and ``_`` included. Empty
                matches every account.
            after: The first ``limit`` matches with a greater id; 0 starts at the first.
            before: Instead, the last ``limit`` matches with a smaller id.
            limit: The most accounts to return, 1 to :data:`MAX_PAGE`.

        Raises:
            ValueError: If ``limit``, ``after`` or ``before`` is out of range, or both
                ``after`` and ``before`` are given.
        """
        if not 1 <= limit <= MAX_PAGE:
            raise ValueError(f"a page holds 1 to {MAX_PAGE} accounts")
        if after < 0 or (before is not None and (before < 1 or after)):
            raise ValueError("give after (an id, or 0) or before (an id), not both")
        if len(search) > MAX_EMAIL_LENGTH * 4:  # bound the normalisation work, as for emails
            return UserPage(users=[], next_after=None, previous_before=None)
        needle = fold_email(search)
        low, high = after + 1, MAX_ID if before is None else min(before - 1, MAX_ID)
        # Nothing can match: emails never hold control characters (PostgreSQL refuses NUL).
        if low > high or len(needle) > MAX_EMAIL_LENGTH or not needle.isprintable():
            return UserPage(users=[], next_after=None, previous_before=None)
        # One row more than the page tells whether another page follows on that side; one
        # row on the other side whether a page precedes.
        users = await self._page(needle, low, high, limit + 1, descending=before is not None)
        more = len(users) > limit
        users = users[:limit]
        if before is None:
            earlier = low > 1 and bool(await self._page(needle, 1, low - 1, 1, descending=True))
            return UserPage(
                users=users,
                next_after=users[-1].id if more else None,
                previous_before=low if earlier else None,
            )
        later = high < MAX_ID and bool(await self._page(needle, high + 1, MAX_ID, 1))
        users.reverse()
        return UserPage(
            users=users,
            next_after=high if later else None,
            previous_before=users[0].id if more else None,
        )

    @abc.abstractmethod
    async def list(self) -> builtins.list[User]:
        """Return every account, oldest (lowest id) first."""

    @abc.abstractmethod
    async def _page(
        self, needle: str, low: int, high: int, limit: int, *, descending: bool = False
    ) -> builtins.list[User]:
        """Return up to ``limit`` accounts with ids in ``low..high`` whose email has ``needle``.

        ``needle`` is in the stored form and matches literally. Lowest id first, or highest
        first if ``descending``.
        """

    @abc.abstractmethod
    async def ping(self) -> None:
        """Raise ``StoreUnavailable`` unless the database answers."""

    @abc.abstractmethod
    async def aclose(self) -> None:
        """Release the connections this store owns (none if it was handed a client)."""

    @abc.abstractmethod
    async def _insert(self, email: str, password_hash: str, role: str, *, verified: bool) -> User:
        """Insert a new, enabled account; raise ``DuplicateUser`` if the email is taken."""

    @abc.abstractmethod
    async def _update_email(
        self, user_id: int, email: str | None, verified: bool, *, current: str | None = None
    ) -> User | None:
        """Set the email and its verified state; return the account, or ``None`` if unchanged.

        ``email`` (normalised) replaces the stored one, or ``None`` keeps it; with ``current``,
        the change applies only while the stored email is ``current``. Raise ``DuplicateUser``
        if another account has ``email``.
        """

    @abc.abstractmethod
    async def _set_password(self, user_id: int, password_hash: str, replacing: str | None) -> bool:
        """Set the password hash, while it is ``replacing`` unless that is ``None``; say whether."""

    @abc.abstractmethod
    async def _get(self, user_id: int) -> User | None:
        """Return the account with this id, or ``None``."""

    @abc.abstractmethod
    async def _get_by_email(self, email: str) -> User | None:
        """Return the account with this normalised email, or ``None``."""

    @abc.abstractmethod
    async def _update(
        self, user_id: int, column: Column, value: str | bool, *, guarded: bool
    ) -> User | None:
        """Set one column and return the updated account, or ``None`` if none was changed.

        With ``guarded``, the change applies only if the account is not an enabled
        administrator or another enabled administrator exists, decided atomically with the
        change (two administrators demoting each other at once never leave none).
        """

    @abc.abstractmethod
    async def _delete(self, user_id: int, *, guarded: bool) -> bool:
        """Delete the account; return whether it was deleted (``guarded`` as for ``_update``)."""

    async def __aenter__(self) -> UserStore:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()
