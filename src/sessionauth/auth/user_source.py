"""Bring your own users: what the Authenticator and the guards need of an application's users.

An application that keeps accounts in its own table hands the
:class:`~sessionauth.auth.Authenticator` any object with the three methods of
:class:`UserSource`, returning its own user objects, which only need the five read-only
attributes of :class:`AccountLike`. The built-in SQLite and PostgreSQL user stores
(:class:`~sessionauth.stores.users.UserStore`) are two implementations; the documentation's
SQLAlchemy model (``examples/fastapi_sqlalchemy``) is a third.

Rights never come from these objects directly: they are copied into the user's *principal*
(see :mod:`sessionauth.principal`), which the session store reads with each session. An
application that changes a role, the disabled flag or a password in its own code calls
:meth:`Authenticator.principal_changed()
<sessionauth.auth.accounts.AccountAdministration.principal_changed>` afterwards; until then the
old rights stand.

Account administration (``create_user``, ``set_role``, ``set_disabled``, ``delete_user``,
``list_users``, ``page_users``) needs a built-in :class:`~sessionauth.stores.users.UserStore`;
with a user source of your own, you change accounts yourself and call ``principal_changed()``.
"""

from __future__ import annotations

import inspect
from typing import Any, Protocol, TypeVar

__all__ = ["AccountLike", "UserSource", "check_compare_and_set", "replaced"]


class AccountLike(Protocol):
    """The attributes the Authenticator reads of a user object (read-only, any class).

    Attributes:
        id: The user's id, assigned by the application and never reused: an ``int`` (the
            default) or a ``str`` (a UUID, say), of the Authenticator's ``user_id_type``
            (sessions and stores keep it as text, see :mod:`sessionauth.user_text`).
        email: The login name, in the form :func:`~sessionauth.stores.users.normalize_email`
            gives it (the Authenticator looks users up by that form).
        role: The user's one role (``"user"``, ``"admin"``, ...).
        password_hash: An argon2 (or legacy bcrypt) hash from
            :class:`~sessionauth.auth.PasswordHasher`.
        disabled: A disabled user cannot log in and has no session.

    With ``Authenticator(require_verified=True)``, users also need a true ``email_verified``
    attribute to log in (a user without it counts as unverified).
    """

    @property
    def id(self) -> int | str:
        """The user id."""
        ...

    @property
    def email(self) -> str:
        """The login name, normalised."""
        ...

    @property
    def role(self) -> str:
        """The one role."""
        ...

    @property
    def password_hash(self) -> str:
        """The password hash."""
        ...

    @property
    def disabled(self) -> bool:
        """Whether the user is disabled."""
        ...


UserT_co = TypeVar("UserT_co", bound=AccountLike, covariant=True)


class UserSource(Protocol[UserT_co]):
    """Where the Authenticator finds users: by id and by login name; and stores rehashes.

    Every method may raise :class:`~sessionauth.errors.StoreUnavailable` when the database
    cannot answer (the edge answers 503); anything else it raises is a bug.
    """

    # The ids are Any here so that sources of int ids and of str ids both qualify; the
    # Authenticator passes ids of its ``user_id_type``, which matches the source's own.
    async def get(self, user_id: Any) -> UserT_co | None:
        """Return the user with this id (of the Authenticator's ``user_id_type``), or ``None``."""
        ...

    async def get_by_email(self, email: str) -> UserT_co | None:
        """Return the user whose login name is ``email`` (already normalised), or ``None``."""
        ...

    async def set_password(self, user_id: Any, password_hash: str, *, replacing: str) -> bool:
        """Replace the user's hash ``replacing`` by ``password_hash``; return whether it was.

        One conditional write, a compare-and-set (in SQL, ``UPDATE ... SET password_hash =
        :new WHERE id = :id AND password_hash = :replacing``), returning ``False`` when no
        row matched: the stored hash is no longer the one the Authenticator read (another
        change landed since) or the user is gone. A rehash at login and a password change
        replace the hash the password was verified against, so a late write never undoes an
        administrator's reset; a reset reads the current hash and tries again.
        """
        ...


def check_compare_and_set(users: object) -> None:
    """Refuse a user source whose ``set_password`` cannot take ``replacing`` (0.1's signature).

    Checked when the Authenticator is made, rather than at the first password change or
    rehash, where it would be a failed request.

    Raises:
        TypeError: If ``set_password`` has no ``replacing`` keyword parameter.
    """
    try:
        # Not through __wrapped__: an adapter made with functools.wraps is called as itself.
        method = users.set_password  # type: ignore[attr-defined]
        parameters = inspect.signature(method, follow_wrapped=False).parameters
    except (AttributeError, TypeError, ValueError):
        return  # no signature to read (a C callable, a mock): the protocol's type check stands
    if "replacing" in parameters or any(
        p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()
    ):
        return
    raise TypeError(
        "UserSource.set_password(user_id, password_hash, *, replacing) -> bool: replace the "
        "hash only while it is `replacing` and say whether it did (a compare-and-set; see "
        "the 0.2.0 changelog)"
    )


def replaced(answer: object) -> bool:
    """Return what ``set_password`` answered, which must be ``True`` or ``False``.

    Anything else (``None`` from a write that forgot its result, a driver's status string
    such as asyncpg's ``"UPDATE 0"``, which is truthy) cannot tell a refused write from a
    done one, and either reading of it would be a lie told to the user.

    Raises:
        TypeError: For an answer that is not a ``bool``.
    """
    if answer is True or answer is False:
        return answer
    raise TypeError(
        f"UserSource.set_password must return True (written) or False (the stored hash was "
        f"not `replacing`), not {answer!r}"
    )
