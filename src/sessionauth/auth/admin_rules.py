"""Who may hold which role, and the changes that would lock the administrators out.

Two rules keep an installation administrable, whoever asks (the API, the admin page, the CLI):

* Roles come from a configured set (``SESSIONAUTH_ROLES``, default ``admin,user``, which must
  contain ``admin``): a typo such as ``superuser`` or ``root`` is refused, not stored as a role
  nothing checks for.
* Demoting, disabling or deleting the last enabled administrator is refused, atomically in the
  user store (see :meth:`~sessionauth.stores.users.UserStore.set_role`'s ``keep_admin``), so two
  administrators removing each other at once cannot leave none. Through the API, an
  administrator also cannot demote, disable or delete itself. Only the CLI may override the
  first rule (``--force``), for an operator who has another way in.

:func:`check_removal` is the early, non-atomic half of the second rule: it refuses before any
session is revoked, so a refused request never signs the last administrator out. The store's
guarded statement is what makes the rule hold under concurrency.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Final

from sessionauth.errors import AdminLockout, ConfigurationError, InvalidRole, UserNotFound
from sessionauth.stores.users import ADMIN_ROLE, LAST_ADMIN, User, UserStore

__all__ = ["DEFAULT_ROLES", "check_removal", "check_role", "role_set"]

DEFAULT_ROLES: Final = (ADMIN_ROLE, "user")
"""The roles an installation has unless configured otherwise."""

_ROLE = re.compile(r"[a-z][a-z0-9_-]{0,63}")

SELF_LOCKOUT: Final = "You cannot demote, disable or delete your own account"


def role_set(roles: Iterable[str]) -> frozenset[str]:
    """Return ``roles`` as a set, after checking each name and that ``admin`` is one of them.

    Raises:
        ConfigurationError: For a name that is not lower-case letters, digits, ``-`` or ``_``
            (at most 64, starting with a letter), or a set without ``admin``.
    """
    names = frozenset(roles)
    bad = sorted(name for name in names if not _ROLE.fullmatch(name))
    if bad:
        raise ConfigurationError(
            f"invalid role names {bad}: use lower-case letters, digits, '-' or '_' (max 64)"
        )
    if ADMIN_ROLE not in names:
        raise ConfigurationError(f"the roles must include {ADMIN_ROLE!r}")
    return names


def check_role(role: str, roles: frozenset[str]) -> str:
    """Return ``role`` if it is one of ``roles``.

    Raises:
        InvalidRole: Naming the roles there are.
    """
    if role not in roles:
        raise InvalidRole(f"Unknown role {role!r}: use one of {', '.join(sorted(roles))}")
    return role


async def check_removal(users: UserStore, user_id: int, *, actor: int | None, force: bool) -> User:
    """Refuse early a change that takes ``user_id``'s administration away; return the user.

    Args:
        users: Where accounts live.
        user_id: Whose role, enabled state or account is about to go.
        actor: The administrator asking (``None`` for the CLI): never themself.
        force: Skip the last-admin rule (the CLI's ``--force``).

    Raises:
        UserNotFound: If there is no such user.
        AdminLockout: If ``actor`` is ``user_id``, or (without ``force``) ``user_id`` is the
            last enabled administrator.
    """
    target = await users.get(user_id)
    if target is None:
        raise UserNotFound(f"no user with id {user_id}")
    if actor == user_id:
        raise AdminLockout(SELF_LOCKOUT)
    if (
        not force
        and _enabled_admin(target)
        and not any(_enabled_admin(u) and u.id != user_id for u in await users.list())
    ):
        raise AdminLockout(LAST_ADMIN)
    return target


def _enabled_admin(user: User) -> bool:
    return user.role == ADMIN_ROLE and not user.disabled
