"""The Authenticator's part on second factors: enrolment, removal, and the code check.

Enabling, disabling or resetting a factor (TOTP; adding or deleting a passkey) changes what a
login needs, so it gives the user's principal a new epoch *after* the factor changed (see
:mod:`sessionauth.principal`): every other session of the user ends, and so does a two-step
login that was pending under the old epoch, while the session that made the change takes the
new epoch and a new token. An administrator's reset keeps no session of the user.

Code checks of a signed-in user (disabling TOTP, with a TOTP code or a recovery code) and of
the login's second step are throttled like passwords (six digits are guessable without a
limit): per account on a code counter of their own, which only an accepted code clears (a right
password, a password or email change never refill the code guesses), and per address together
with passwords.
"""

from __future__ import annotations

import abc
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from sessionauth.auth.factor_events import (
    FactorDisabled,
    FactorEnabled,
    FactorsReset,
    RecoveryCodesRenewed,
    RecoveryCodeUsed,
    SecondFactorFailed,
)
from sessionauth.auth.session_admin import SessionAdministration, end_unless_kept
from sessionauth.auth.throttle import LoginThrottle
from sessionauth.auth.user_ids import IdT, UserId
from sessionauth.errors import (
    ConfigurationError,
    FactorConflict,
    InvalidCode,
    NotAuthenticated,
    UserNotFound,
)
from sessionauth.session import Session
from sessionauth.stores.factors import Passkey
from sessionauth.stores.users import User
from sessionauth.user_text import user_id_text

# Imported for type checking only: these modules need the mfa extra (pyotp, py_webauthn).
if TYPE_CHECKING:
    from sessionauth.auth.factors import SecondFactors, TotpSetup
    from sessionauth.auth.passkeys import Passkeys

__all__ = ["FactorAdministration", "forget_factors"]

_T = TypeVar("_T")


async def forget_factors(
    factors: SecondFactors | None, passkeys: Passkeys | None, user_id: str
) -> None:
    """Delete every second factor of a user: TOTP, recovery codes, and passkeys.

    The passkeys' store is reset too when it is not the factors' own (an Authenticator may be
    given the two apart, or passkeys alone): a reset or a deletion must not leave a passkey
    that still signs the user in.
    """
    if factors is not None:
        await factors.reset(user_id)
    if passkeys is not None and (factors is None or passkeys.store is not factors.store):
        await passkeys.store.reset(user_id)


class FactorAdministration(SessionAdministration[IdT]):
    """TOTP enrolment and removal, administrators' resets, and the throttled code check.

    A mixin of :class:`~sessionauth.auth.authenticator.Authenticator`, which sets
    :attr:`factors`, :attr:`passkeys` and :attr:`throttle` and provides :meth:`current_user`.

    Attributes:
        factors: TOTP and recovery codes (``None``: the application offers none).
        passkeys: Passkeys (``None``: the application offers none).
        throttle: The login throttle, if any.
    """

    factors: SecondFactors | None
    passkeys: Passkeys | None
    throttle: LoginThrottle | None

    @abc.abstractmethod
    async def current_user(self, session: Session) -> User:
        """Return the active user of an authenticated session (see the Authenticator)."""

    def _second_factors(self) -> SecondFactors:
        if self.factors is None:
            raise ConfigurationError("this Authenticator was built without second factors")
        return self.factors

    def _passkeys(self) -> Passkeys:
        if self.passkeys is None:
            raise ConfigurationError("this Authenticator was built without passkeys")
        return self.passkeys

    async def passkey_registration_options(self, session: Session) -> str:
        """Return the options JSON that registers a passkey for the session's user.

        Raises:
            NotAuthenticated: Without an authenticated session.
        """
        user = await self.current_user(session)
        return await self._passkeys().registration_options(
            session, user_id=str(user.id), user_name=user.email
        )

    async def register_passkey(
        self,
        session: Session,
        credential: str | dict[str, Any],
        *,
        name: str,
        address: str | None = None,
    ) -> Passkey:
        """Verify and store a new passkey of the session's user; other sessions end.

        Raises:
            NotAuthenticated: Without an authenticated session.
            InvalidCode: Without a current registration challenge in the session.
            PasskeyRejected: If the response fails verification or is registered already.
        """
        user = await self.current_user(session)
        passkeys = self._passkeys()
        passkey = await passkeys.register(
            session, user_id=str(user.id), credential=credential, name=name
        )
        try:
            await self._factor_changed(user.id, session, address)
        except NotAuthenticated:
            # Registered by a session that a reset or revocation ended meanwhile: a passkey
            # signs in on its own, so it must not outlive the revocation meant to end it.
            await passkeys.store.delete_passkey(str(user.id), passkey.credential_id)
            raise
        await self.events.publish(FactorEnabled(user_id=user.id, address=address, kind="passkey"))
        return passkey

    async def delete_passkey(
        self, session: Session, credential_id: bytes, *, address: str | None = None
    ) -> int:
        """Delete one passkey of the session's user; return how many other sessions ended.

        Raises:
            NotAuthenticated: Without an authenticated session.
            FactorConflict: If the user has no such passkey.
        """
        user = await self.current_user(session)
        if not await self._passkeys().store.delete_passkey(str(user.id), credential_id):
            raise FactorConflict("no such passkey")
        ended = await self._factor_changed(user.id, session, address)
        await self.events.publish(FactorDisabled(user_id=user.id, address=address, kind="passkey"))
        return ended

    async def list_passkeys(self, session: Session) -> list[Passkey]:
        """Return the passkeys of the session's user, oldest first.

        Raises:
            NotAuthenticated: Without an authenticated session.
        """
        user = await self.current_user(session)
        return await self._passkeys().store.list_passkeys(str(user.id))

    async def rename_passkey(self, session: Session, credential_id: bytes, name: str) -> Passkey:
        """Rename one passkey of the session's user; return it as stored.

        Sessions are untouched: a name changes nothing a login needs.

        Raises:
            NotAuthenticated: Without an authenticated session.
            FactorConflict: If the user has no such passkey.
        """
        user = await self.current_user(session)
        passkeys = self._passkeys()
        renamed = await passkeys.rename(str(user.id), credential_id, name)
        found = await passkeys.store.get_passkey(str(user.id), credential_id) if renamed else None
        if found is None:
            raise FactorConflict("no such passkey")
        return found

    async def start_totp_setup(self, session: Session) -> TotpSetup:
        """Begin enabling TOTP for the session's user: a new pending secret, shown once.

        Nothing changes for sessions until :meth:`confirm_totp`.

        Raises:
            NotAuthenticated: Without an authenticated session.
            FactorConflict: If TOTP is enabled already.
        """
        user = await self.current_user(session)
        return await self._second_factors().start_totp(str(user.id), user.email)

    async def confirm_totp(
        self, session: Session, code: str, *, address: str | None = None
    ) -> list[str]:
        """Enable TOTP with a first code; return the recovery codes (shown only now).

        The user's other sessions end; this one is kept, with a new token.

        Raises:
            NotAuthenticated: Without an authenticated session.
            FactorConflict: Without a pending setup.
            InvalidCode: If the code is not current for the pending secret.
        """
        user = await self.current_user(session)
        factors = self._second_factors()
        codes = await factors.confirm_totp(str(user.id), code)
        try:
            await self._factor_changed(user.id, session, address)
        except NotAuthenticated:
            # Enabled by a session that a revocation ended meanwhile: undone, so that whoever
            # held it cannot leave the account behind a secret only they have.
            await factors.reset_totp(str(user.id))
            raise
        await self.events.publish(FactorEnabled(user_id=user.id, address=address, kind="totp"))
        return codes

    async def disable_totp(
        self,
        session: Session,
        code: str | None = None,
        *,
        recovery_code: str | None = None,
        address: str | None = None,
    ) -> int:
        """Disable TOTP given a current code or a recovery code; return how many sessions ended.

        Exactly one of ``code`` and ``recovery_code``: a user who lost their authenticator
        app turns TOTP off with a recovery code (then enrols the new app), which is consumed
        like one used to sign in (single use, also concurrently; a
        :class:`~sessionauth.auth.factor_events.RecoveryCodeUsed` event). The remaining
        recovery codes go with the factor. Either kind is throttled like the login's code.

        Raises:
            NotAuthenticated: Without an authenticated session.
            TooManyAttempts: If the account or address is throttled.
            FactorConflict: If TOTP is not enabled.
            InvalidCode: For a wrong or replayed code, a used or unknown recovery code
                (counted by the throttle), or neither or both given (not counted).
        """
        user = await self.current_user(session)
        factors = self._second_factors()
        if (code is None) == (recovery_code is None):
            raise InvalidCode("Invalid code")
        await self._throttled(
            user,
            address,
            "totp" if code is not None else "recovery",
            lambda: factors.disable_totp(str(user.id), code, recovery_code=recovery_code),
        )
        if recovery_code is not None:
            # Consumed, and the rest of the set went with the factor: none is left.
            await self.events.publish(
                RecoveryCodeUsed(user_id=user.id, address=address, remaining=0)
            )
        ended = await self._factor_changed(user.id, session, address)
        await self.events.publish(FactorDisabled(user_id=user.id, address=address, kind="totp"))
        return ended

    async def new_recovery_codes(
        self, session: Session, *, address: str | None = None
    ) -> list[str]:
        """Replace the recovery codes of the session's user; return the new ones (shown once).

        The old codes stop working at once (the store swaps the whole set). The epoch does not
        move and no session ends: what a login needs is unchanged (the password, then a TOTP
        code or a recovery code), and a pending two-step login can only go on with a code
        that is valid now. A user who fears a code was used against them signs out their
        other sessions as a separate, visible step.

        Raises:
            NotAuthenticated: Without an authenticated session.
            FactorConflict: If TOTP is not enabled (recovery codes stand in for it).
        """
        user = await self.current_user(session)
        codes = await self._second_factors().new_recovery_codes(str(user.id))
        await self.events.publish(RecoveryCodesRenewed(user_id=user.id, address=address))
        return codes

    async def pending_totp_setup(self, session: Session) -> TotpSetup | None:
        """Return the session's user's TOTP setup still waiting for its first code, if any.

        For a page that shows the secret again until it is confirmed (a reload, a second
        look); ``None`` once TOTP is enabled, or without a setup.

        Raises:
            NotAuthenticated: Without an authenticated session.
        """
        user = await self.current_user(session)
        return await self._second_factors().pending_totp(str(user.id), user.email)

    async def verify_second_factor(
        self,
        user: User,
        *,
        code: str | None = None,
        recovery_code: str | None = None,
        address: str | None = None,
    ) -> None:
        """Check the login's second step: a TOTP code or a recovery code (throttled).

        Raises:
            TooManyAttempts: If the account or address is throttled.
            InvalidCode: For a wrong, replayed or used code, or neither or both given.
        """
        factors = self._second_factors()
        if (code is None) == (recovery_code is None):
            raise InvalidCode("Invalid code")
        user_id = str(user.id)
        if code is not None:
            await self._throttled(user, address, "totp", lambda: factors.verify_totp(user_id, code))
            return
        assert recovery_code is not None  # noqa: S101 - exactly one of the two, checked above
        left = await self._throttled(
            user, address, "recovery", lambda: factors.use_recovery_code(user_id, recovery_code)
        )
        await self.events.publish(
            RecoveryCodeUsed(user_id=user.id, address=address, remaining=left)
        )

    async def reset_factors(self, user_id: IdT, *, actor: IdT | None = None) -> int:
        """Remove every second factor of a user and end all their sessions; return how many.

        For a user who lost their authenticator (the CLI's ``users reset-mfa``).

        Raises:
            UserNotFound: If there is no such user.
        """
        if self.factors is None and self.passkeys is None:
            raise ConfigurationError("this Authenticator was built without second factors")
        if await self.users.get(user_id) is None:
            raise UserNotFound(f"no user with id {user_id}")
        await forget_factors(self.factors, self.passkeys, user_id_text(user_id))
        _, ended = await self._change_principal(user_id, rotate=True)
        await self.events.publish(FactorsReset(user_id=user_id, actor=actor))
        await self._revoked(user_id, ended, "account-changed", actor=actor)
        return ended

    async def _factor_changed(
        self, user_id: UserId, session: Session, address: str | None = None
    ) -> int:
        """A new epoch for the user: other sessions end, ``session`` follows with a new token.

        Raises:
            NotAuthenticated: If ``session`` itself was revoked while the change ran (the
                rotation did not carry it over): it is destroyed, not revived.
        """
        principal, ended = await self._change_principal(user_id, rotate=True, keep=session)
        await self._revoked(user_id, ended, "account-changed", actor=user_id, address=address)
        end_unless_kept(session, principal)
        session.regenerate()
        return ended

    async def _throttled(
        self,
        user: User,
        address: str | None,
        kind: Literal["totp", "recovery"],
        check: Callable[[], Awaitable[_T]],
    ) -> _T:
        """Run ``check`` on one attempt of the account's and the address's throttle.

        A refused code keeps its attempt (it is the failure's count); a check that judged no
        code (no factor, an outage) gives it back; an accepted one clears the account's code
        counter (never its password counter) and gives back its place on the address.
        """
        attempt = None
        if self.throttle is not None:
            attempt = await self.throttle.reserve_code(str(user.id), address or "unknown")
        try:
            result = await check()
        except InvalidCode:
            await self.events.publish(
                SecondFactorFailed(user_id=user.id, address=address, kind=kind)
            )
            raise
        except BaseException as exc:
            if self.throttle is not None and attempt is not None:
                await self.throttle.release(attempt, after=exc)
            raise
        if self.throttle is not None and attempt is not None:
            await self.throttle.succeeded(attempt)
        return result
