"""Signing in with a passkey: one discoverable WebAuthn assertion, both factors at once.

The design is the password login's (see :mod:`sessionauth.auth.logins`): the account's
principal is read *before* the assertion is verified, from the user the assertion's user handle
names; a disabled account is refused like a bad assertion, and with ``require_verified`` an
unconfirmed email gets :class:`~sessionauth.errors.EmailNotVerified` only once the passkey was
judged right; the session is then stored only while that principal's epoch is current (the
store's create-if-current), so a disable, a password or factor change, the deletion of the
passkey or a revocation racing the sign-in refuses it.

A passkey proves possession of the authenticator and, since user verification is required,
the user (a PIN or biometric): the login is complete, even for an account with TOTP. Failures
are throttled per client address on the login throttle's counters (the account is not known
before the assertion is verified, and a user handle is the attacker's to choose, so it is no
key to lock a victim out by).
"""

from __future__ import annotations

from typing import Any

from sessionauth.auth.events import LoginFailed, LoginThrottled
from sessionauth.auth.factor_events import SecondFactorFailed
from sessionauth.auth.logins import Login, read_account_by_id
from sessionauth.auth.throttle import Attempt
from sessionauth.auth.two_step import PENDING_KEY, TwoStepLogin
from sessionauth.auth.user_ids import IdT
from sessionauth.errors import EmailNotVerified, InvalidCode, TooManyAttempts
from sessionauth.principal import Principal
from sessionauth.session import Session

__all__ = ["PASSKEY_THROTTLE_ACCOUNT", "PasskeyLogin"]

PASSKEY_THROTTLE_ACCOUNT = "passkey-login@"
"""The throttle's account for passkey sign-ins: this, then the client address."""


class PasskeyLogin(TwoStepLogin[IdT]):
    """Discoverable passkey sign-in.

    A mixin of :class:`~sessionauth.auth.authenticator.Authenticator`, which provides
    :meth:`login`, ``require_verified`` and the stores.
    """

    require_verified: bool

    def passkey_login_options(self) -> str:
        """Return the ``PublicKeyCredentialRequestOptions`` JSON of a passkey sign-in.

        The challenge is valid 5 minutes, for one use, and stateless: asking stores nothing
        (the options are anonymous; see :mod:`sessionauth.auth.passkeys`).

        Raises:
            ConfigurationError: If this Authenticator was built without passkeys.
        """
        return self._passkeys().authentication_options()

    async def login_with_passkey(
        self,
        session: Session,
        credential: str | dict[str, Any],
        *,
        address: str | None,
        user_agent: str | None,
        remember: bool = False,
    ) -> tuple[Login, Principal]:
        """Verify a passkey assertion and store a new session for its user.

        ``credential`` is the browser's ``PublicKeyCredential`` as JSON (base64url fields).
        A login held for a second factor in ``session`` is dropped: this one is complete.

        Returns:
            The login and the principal in force for the new session (as :meth:`login`).

        Raises:
            TooManyAttempts: If the client address has no attempt left.
            InvalidCode: For any failed assertion (no or used challenge, unknown or deleted
                passkey, bad signature, no user verification, a counter that did not grow)
                and for a disabled or deleted account, indistinguishably (counted).
            EmailNotVerified: With ``require_verified``, for a good assertion of an account
                whose email is not confirmed.
            InvalidCredentials: If the account changed while the sign-in ran (a new epoch).
        """
        passkeys = self._passkeys()
        attempt = await self._reserve_passkey(address)
        claimed = passkeys.claimed_user(credential)
        typed = self._typed(claimed) if claimed is not None else None
        try:
            # The principal first: the session will be created only while it is current.
            user, principal = (
                await read_account_by_id(self.users, self.sessions, typed)
                if typed is not None
                else (None, None)
            )
            await passkeys.authenticate(credential)
        except InvalidCode:
            # The attempt stays reserved: it is this failure's count. No user is named: the
            # user handle is the client's to choose until the assertion verifies, and naming
            # it would let anyone write failures into any account's security log.
            await self.events.publish(
                SecondFactorFailed(user_id=None, address=address, kind="passkey")
            )
            raise
        except BaseException as exc:
            await self._release_passkey(attempt, exc)
            raise
        if user is None or principal is None or user.disabled or principal.disabled:
            await self.events.publish(
                LoginFailed(
                    user_id=typed, address=address, reason="unknown" if user is None else "disabled"
                )
            )
            raise InvalidCode("Invalid passkey")
        if self.throttle is not None and attempt is not None:
            await self.throttle.succeeded(attempt)
        if self.require_verified and not getattr(user, "email_verified", False):
            await self.events.publish(
                LoginFailed(user_id=user.id, address=address, reason="unverified")
            )
            raise EmailNotVerified("Email not verified")
        session.pop(PENDING_KEY, None)
        login = Login(user, principal, user.password_hash, second_factor_done=True)
        stored = await self.login(
            session, login, address=address, user_agent=user_agent, remember=remember
        )
        return login, stored

    async def _reserve_passkey(self, address: str | None) -> Attempt | None:
        if self.throttle is None:
            return None
        where = address or "unknown"
        try:
            return await self.throttle.reserve(PASSKEY_THROTTLE_ACCOUNT + where, where)
        except TooManyAttempts as exc:
            await self.events.publish(
                LoginThrottled(
                    user_id=None, address=address, retry_after=exc.retry_after, during="login"
                )
            )
            raise

    async def _release_passkey(self, attempt: Attempt | None, after: BaseException) -> None:
        if self.throttle is not None and attempt is not None:
            await self.throttle.release(attempt, after=after)
