"""The two-step login: a password accepted for an account with a second factor, then its code.

:meth:`TwoStepLogin.hold_login` keeps what the password step learned in the values of an
*anonymous* session (the user id, the principal's epoch read before the password check, the
remember-me choice, a digest of the verified password hash and the time), under a new token:
such a session grants nothing, since every guard reads the session's user and there is none.
:meth:`TwoStepLogin.complete_login` checks that the account's password hash is still the one
verified, then the code (throttled, a recovery code consumed once), and then stores the
session only if that epoch is still current (the store's create-if-current): a password
change, a factor enabled, disabled or reset, a disable or a revocation in between gives the
principal a new epoch, and the held login is refused like a wrong password.
"""

from __future__ import annotations

import abc
import hashlib
import hmac
from typing import Any, cast

from sessionauth.auth.factor_admin import FactorAdministration
from sessionauth.auth.logins import Login
from sessionauth.auth.user_ids import IdT
from sessionauth.errors import InvalidCredentials
from sessionauth.principal import Principal
from sessionauth.session import Session
from sessionauth.stores.users import User
from sessionauth.user_text import user_id_text

__all__ = ["PENDING_KEY", "PENDING_TTL", "TwoStepLogin"]

PENDING_KEY = "_sessionauth_mfa"
"""The session value holding a login that waits for its second factor."""

PENDING_TTL = 300.0
"""Seconds a held login waits for its code."""


def _hash_digest(password_hash: str) -> str:
    """A digest of a password hash, kept in the held login in place of the hash itself.

    Session values may live in Redis, next to nothing that protects a password hash; the
    digest only tells whether the account's hash is still the one verified.
    """
    return hashlib.sha256(password_hash.encode("utf-8", "surrogatepass")).hexdigest()


class TwoStepLogin(FactorAdministration[IdT]):
    """Hold a login that needs a second factor; complete it with a code.

    A mixin of :class:`~sessionauth.auth.authenticator.Authenticator`, which provides
    :meth:`login` and ``clock``.
    """

    @abc.abstractmethod
    async def login(
        self,
        session: Session,
        login: Login,
        *,
        address: str | None,
        user_agent: str | None,
        remember: bool = False,
    ) -> Principal:
        """Store a new session for ``login`` (see the Authenticator)."""

    def _now(self) -> float:
        clock = getattr(self, "clock", None)
        return float(clock()) if clock is not None else 0.0

    async def second_factor_methods(self, login: Login) -> list[str]:
        """The second factors ``login``'s account must use (empty: the password suffices)."""
        if self.factors is None:
            return []
        return list(await self.factors.methods(str(login.user.id)))

    def hold_login(self, session: Session, login: Login, *, remember: bool = False) -> None:
        """Keep ``login`` in ``session`` until its second factor: the session stays anonymous.

        The session always gets a new token: a token planted before the password step (session
        fixation) must not own the held login, which one code of the victim's completes. A
        session signed in as someone else is also emptied first, so the held login never
        rides on another user's rights or data.
        """
        if session.user_id is not None:
            session.set_user(None)
            session.clear()
        session.regenerate()
        session[PENDING_KEY] = {
            "uid": str(login.user.id),
            "epoch": login.principal.epoch,
            "role": login.principal.role,
            "pw": _hash_digest(login.password_hash),
            "remember": remember,
            "at": self._now(),
        }

    def pending_login(self, session: Session) -> dict[str, Any] | None:
        """The login ``session`` holds, if any and not expired."""
        held = session.get(PENDING_KEY)
        if not isinstance(held, dict) or session.user_id is not None:
            return None
        at = held.get("at")
        if not isinstance(at, (int, float)) or self._now() - at > PENDING_TTL:
            return None
        return held

    async def complete_login(
        self,
        session: Session,
        *,
        code: str | None = None,
        recovery_code: str | None = None,
        address: str | None,
        user_agent: str | None,
    ) -> tuple[Login, Principal]:
        """Finish the held login with a TOTP or recovery code; return it and its principal.

        Raises:
            InvalidCredentials: Without a held login (none, expired, the account gone or
                disabled), or if the account changed since the password step (a new epoch).
            TooManyAttempts: If the account or address is throttled.
            InvalidCode: For a wrong, replayed or used code (the login stays held).
        """
        held = self.pending_login(session)
        if held is None:
            raise InvalidCredentials("Invalid credentials")
        user_id = self._typed(str(held["uid"]))
        user = await self.users.get(user_id) if user_id is not None else None
        # The password verified at the first step must still be the account's: a reset in
        # between ends the held login even if the store lost the principal whose epoch would
        # have refused it (a lost principal is installed again by the next login).
        if (
            user is None
            or user.disabled
            or not hmac.compare_digest(str(held.get("pw")), _hash_digest(user.password_hash))
        ):
            del session[PENDING_KEY]
            raise InvalidCredentials("Invalid credentials")
        # An account changed since the password step (revoked, a factor reset, a role change)
        # refuses the login below anyway: say so before the code is checked, so that a
        # recovery code is not spent on a login that cannot win. (A change racing this read is
        # still refused by the create-if-current; only then is the code spent for nothing.)
        current = await self.sessions.principal(user_id_text(user.id))
        if current is not None and (current.disabled or current.epoch != held["epoch"]):
            del session[PENDING_KEY]
            raise InvalidCredentials("Invalid credentials")
        # Only the id and email are read, which every AccountLike has.
        await self.verify_second_factor(
            cast(User, user), code=code, recovery_code=recovery_code, address=address
        )
        # The principal the password step read: the session is created only while its epoch
        # is current, so any account change since then refuses the login. The hash is the one
        # the password step verified (its digest matched above).
        login = Login(
            user,
            Principal(epoch=str(held["epoch"]), role=str(held["role"]), disabled=False),
            user.password_hash,
            second_factor_done=True,
        )
        del session[PENDING_KEY]
        principal = await self.login(
            session,
            login,
            address=address,
            user_agent=user_agent,
            remember=bool(held.get("remember")),
        )
        return login, principal
