"""What a login reads before and after the password check: the account and its principal.

A login must be judged against the principal that was in force *before* its password was
verified: the session it then creates carries that principal's epoch, and the store refuses it
(:class:`~sessionauth.errors.StaleLogin`) if a password change, disable, delete or revocation
gave the principal a new epoch meanwhile (see :mod:`sessionauth.principal`). So
:func:`read_account` reads the principal before the password hash, also for an unknown email
(on a dummy id, so that the timing does not tell), and :func:`principal_after_stale` decides,
once, whether a login that lost that race may try again.

The account whose password hash is verified is read *after* its principal. A password change
rotates the principal, writes the new hash, then rotates again; a login whose hash read came
before the new hash therefore read its principal before the second rotation, and its session
is refused. (Reading the account only before the principal would let a login read the old
hash, then the principal after both rotations, and win with the old password.)
"""

from __future__ import annotations

from dataclasses import dataclass

from sessionauth.auth.user_ids import UserId
from sessionauth.auth.user_source import AccountLike, UserSource
from sessionauth.principal import Principal, PrincipalChange, new_epoch
from sessionauth.stores.base import SessionStore
from sessionauth.stores.users import ADMIN_ROLE
from sessionauth.user_text import user_id_text

__all__ = [
    "Login",
    "principal_after_stale",
    "principal_of",
    "read_account",
    "read_account_by_id",
]

# No account has id 0 (int ids start at 1): its principal is read for unknown emails, so that
# an unknown email costs the same store round trip as a known one. A text id "0" is harmless:
# the read changes nothing.
_NOBODY = "0"


@dataclass(frozen=True, slots=True)
class Login:
    """A password the Authenticator accepted: what :meth:`Authenticator.login` needs.

    Attributes:
        user: The account, as read before the password check.
        principal: The account's principal, read before the password check.
        password_hash: The hash the password was verified against (or its upgrade, stored).
        second_factor_done: The account's second factor was checked too (the two-step login
            completed it, or a passkey, which is both): :meth:`Authenticator.login` then does
            not ask for one.
    """

    user: AccountLike
    principal: Principal
    password_hash: str
    second_factor_done: bool = False


def principal_of(user: AccountLike) -> Principal:
    """A new principal (fresh epoch) with ``user``'s role and disabled flag."""
    return Principal(epoch=new_epoch(), role=user.role, disabled=user.disabled)


def missed_restriction(user: AccountLike, principal: Principal) -> PrincipalChange | None:
    """The change that brings ``principal`` down to ``user``'s rights, if it grants more.

    Two changes of one account racing each other (a demotion and a promotion, each writing
    the users database and the principal in its own order) can leave the principal with more
    rights than the users database, which owns them. Only that direction is repaired: the
    other (the users database granting more) is what a restriction in progress looks like,
    since restrictions reach the principal first, and a grant completes itself.
    """
    demoted = user.role != principal.role and user.role != ADMIN_ROLE
    disabled = user.disabled and not principal.disabled
    if not (demoted or disabled):
        return None
    return PrincipalChange(
        fallback_role=user.role,
        fallback_disabled=user.disabled,
        role=user.role if demoted else None,
        disabled=True if disabled else None,
        rotate=disabled,
    )


async def read_account(
    users: UserSource[AccountLike], sessions: SessionStore, account: str | None
) -> tuple[AccountLike | None, Principal | None]:
    """Read the account of ``account`` (a normalised email) and its principal, in that order.

    Returns the account as read *after* the principal (its password hash is the one to
    verify), and the principal, installed if the store held none; ``(None, None)`` for an
    unknown email, ``(user, None)`` if the account went meanwhile. Every path costs the same
    round trips: a users read, a principal read, a users read.

    A missing principal is installed from a users-database read made *after* seeing it
    missing: a change racing the install has then either written its principal first (the
    install keeps it) or had its users-database write seen by the read.
    """
    found = await users.get_by_email(account) if account is not None else None
    if found is None:
        await sessions.principal(_NOBODY)
        return (await users.get_by_email(account) if account is not None else None), None
    user_id = user_id_text(found.id)
    principal = await sessions.principal(user_id)
    if principal is None:
        fresh = await users.get(found.id)
        if fresh is None:
            return found, None
        principal = await sessions.install_principal(user_id, principal_of(fresh))
    again = await users.get(found.id)
    repair = missed_restriction(again, principal) if again is not None else None
    if repair is not None:
        principal, _ = await sessions.change_principal(user_id, repair)
    return again, principal


async def read_account_by_id(
    users: UserSource[AccountLike], sessions: SessionStore, user_id: UserId
) -> tuple[AccountLike | None, Principal | None]:
    """Read the principal of ``user_id``, then the account: a passkey sign-in's first step.

    Like :func:`read_account`, before the credential is checked, and with the same install
    and repair of the principal; ``(None, None)`` for a user that does not exist.
    """
    text = user_id_text(user_id)
    principal = await sessions.principal(text)
    if principal is None:
        fresh = await users.get(user_id)
        if fresh is None:
            return None, None
        principal = await sessions.install_principal(text, principal_of(fresh))
    again = await users.get(user_id)
    repair = missed_restriction(again, principal) if again is not None else None
    if repair is not None:
        principal, _ = await sessions.change_principal(text, repair)
    return again, principal


async def principal_after_stale(
    users: UserSource[AccountLike], sessions: SessionStore, login: Login
) -> Principal | None:
    """The principal a login refused as stale may retry with, or ``None`` (refuse it).

    Only a principal that merely went missing (forgotten by the store once the user had no
    session) is installed again, from a fresh read, and only if the account is still enabled
    and still has the password hash just verified. A principal that exists has a new epoch or
    is disabled: the account changed while the login ran, and the login must not win.
    """
    user_id = user_id_text(login.user.id)
    if await sessions.principal(user_id) is not None:
        return None
    fresh = await users.get(login.user.id)
    if fresh is None or fresh.disabled or fresh.password_hash != login.password_hash:
        return None
    return await sessions.install_principal(user_id, principal_of(fresh))
