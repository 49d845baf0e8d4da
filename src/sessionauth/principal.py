"""A user's authorization state: the one source of a session's rights.

Every user with sessions has a *principal* in the session store: the role and the disabled flag
(copied from the users database, which owns them) and an *epoch*. A session records the epoch
its login began with; the store serves it only while that epoch is the principal's, reading
both in the same single command or statement (so a request never pays a second round trip for
an always-current answer). Changes that must end sessions (disable, delete, password change or
reset, "sign out everywhere else") give the principal a new epoch in one atomic step, which ends
every session stamped with the old one, including a login that was in flight during the change.

The epoch is random, not a counter: a principal lost and rebuilt (an expired Redis key, a
restored backup) gets a fresh random epoch, which no old session can match, whereas a counter
could count back up to an old session's value and bring it back to life.

Order of writes (see :mod:`sessionauth.auth.accounts`): restrictions go to the session
store first, then to the users database; grants the other way round. Either way a failure
between the two writes leaves the sessions with less rights, never more.
"""

from __future__ import annotations

import secrets

import msgspec

__all__ = ["EPOCH_LENGTH", "Principal", "PrincipalChange", "new_epoch"]

EPOCH_LENGTH = 11
"""Characters of an epoch: 64 random bits, base64url without padding."""


def new_epoch() -> str:
    """Return a fresh random epoch (64 bits, base64url)."""
    return secrets.token_urlsafe(8)


class Principal(msgspec.Struct, frozen=True, kw_only=True):
    """A user's authorization state, as the session store keeps it.

    Attributes:
        epoch: Sessions stamped with another epoch are no sessions.
        role: The user's one role (``"user"``, ``"admin"``, ...).
        disabled: A disabled principal grants nothing; its sessions are gone.
    """

    epoch: str
    role: str
    disabled: bool = False


class PrincipalChange(msgspec.Struct, frozen=True, kw_only=True):
    """One atomic change of a user's principal, as :meth:`SessionStore.change_principal` runs it.

    Attributes:
        role: The role from now on (``None``: unchanged).
        disabled: Disabled from now on (``None``: unchanged).
        rotate: Give the principal a new epoch: every session of the user but ``keep`` is
            deleted, and ``keep`` takes the new epoch.
        keep: The one session a rotation keeps (the one changing its own password).
        fallback_role: The role to start from when the store holds no principal for the user
            (read from the users database just before the change).
        fallback_disabled: Likewise for the disabled flag.
    """

    fallback_role: str
    fallback_disabled: bool
    role: str | None = None
    disabled: bool | None = None
    rotate: bool = False
    keep: str | None = None

    def apply(self, current: Principal | None) -> Principal:
        """Return the principal after this change (a new epoch if rotating or none was stored)."""
        if current is None:
            base = Principal(
                epoch=new_epoch(), role=self.fallback_role, disabled=self.fallback_disabled
            )
        else:
            base = current
        return Principal(
            epoch=new_epoch() if self.rotate and current is not None else base.epoch,
            role=base.role if self.role is None else self.role,
            disabled=base.disabled if self.disabled is None else self.disabled,
        )
