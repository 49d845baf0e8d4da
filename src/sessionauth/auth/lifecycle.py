"""The account lifecycle: sign-up, email verification, email change, forgotten passwords.

:class:`AccountLifecycle` holds the flows an application (or the reference server) calls; it
works through an :class:`~sessionauth.auth.authenticator.Authenticator` (accounts, password
hashing, revocation), :class:`~sessionauth.auth.single_use.SingleUseTokens` (the links'
tokens) and a :data:`~sessionauth.auth.letters.Postbox` (the mail). What each promises:

* **Nothing tells whether an address has an account.** :meth:`~AccountLifecycle.sign_up` and
  :meth:`~AccountLifecycle.forgot_password` return nothing and raise only for what the input
  itself says (a malformed address, a password the policy refuses) or the throttle. They do
  the same work for every address: one account lookup, and for a sign-up one password hash
  (of the new account, or thrown away for an existing one). Which mail goes out is decided,
  and the token issued, in the background after the answer (:class:`~.letters.Courier`):
  a new account gets a link to verify its address, an existing one a note that it has an
  account, an unknown address asking for a reset gets nothing.
* **Sign-ups are not logins.** A new account is unverified, and no session is made: the owner
  of the address signs in after following the link. (Signing in only new accounts would tell
  them apart.)
* **Mail is throttled per recipient and per client address** (a :class:`LoginThrottle` with
  its own scope): nobody can bury a victim's mailbox, nor send without limit from one address.
* **Links prove the mailbox, once.** Tokens are single-use, expire, and die when the password
  or the address changes. A reset sets the password, ends every session of the user and never
  signs anyone in; it also confirms the address (the link came through it). A new address
  replaces the old one only when the link sent to the new address is followed.
* **Pre-registration does not hijack.** A sign-up for an address whose account was never
  confirmed sends that address a link to choose the password (``finish-signup``, a reset
  token), never a link that would confirm an account someone else holds the password of.
"""

from __future__ import annotations

from typing import Final

from sessionauth.auth.authenticator import Authenticator
from sessionauth.auth.events import EmailVerified, UserCreated
from sessionauth.auth.letters import Courier, Letter, LetterKind, Postbox
from sessionauth.auth.single_use import (
    CHANGE_EMAIL,
    LIFETIMES,
    RESET_PASSWORD,
    VERIFY_EMAIL,
    SingleUseTokens,
)
from sessionauth.auth.throttle import LoginThrottle
from sessionauth.errors import (
    AlreadyVerified,
    DuplicateUser,
    InvalidCredentials,
    InvalidEmail,
    InvalidToken,
    UserNotFound,
)
from sessionauth.session import Session
from sessionauth.stores.users import User, normalize_email

__all__ = ["SIGNUP_ROLE", "AccountLifecycle"]

SIGNUP_ROLE: Final = "user"
"""The role of an account made by a sign-up."""

_PATHS: Final = {
    VERIFY_EMAIL: "/verify",
    CHANGE_EMAIL: "/verify",
    RESET_PASSWORD: "/password/reset",
}


class AccountLifecycle:
    """Sign-up, verification, email change and password reset (see the module docstring).

    Args:
        auth: Accounts, password hashing and session revocation; its users must be the
            built-in :class:`~sessionauth.stores.users.UserStore` (sign-ups create accounts,
            links change them).
        tokens: Issues and consumes the links' single-use tokens.
        postbox: Renders and sends a :class:`~sessionauth.auth.letters.Letter`.
        base_url: The site's public URL; links are ``base_url`` + ``/verify?token=…`` and
            ``/password/reset?token=…`` (the pages where a person uses them).
        throttle: Limits mail per recipient and per client address; ``None`` disables it.

    Attributes:
        users: The built-in user store of ``auth``.

    Raises:
        TypeError: If ``auth`` serves the application's own users (a ``UserSource``).
    """

    def __init__(
        self,
        *,
        auth: Authenticator[int],
        tokens: SingleUseTokens,
        postbox: Postbox,
        base_url: str,
        throttle: LoginThrottle | None,
    ):
        self.auth = auth
        self.users = auth.user_store()
        self.tokens = tokens
        self.base_url = base_url.rstrip("/")
        self.throttle = throttle
        self.courier = Courier(postbox)

    # -- sign-up and verification ------------------------------------------------------------

    async def sign_up(self, email: str, password: str, *, address: str) -> None:
        """Create an unverified account, or mail the address's owner that it has one.

        Raises:
            InvalidEmail: If ``email`` cannot be an address.
            PasswordPolicyError: If the password breaks the policy.
            TooManyAttempts: If this recipient or this client asked too often.
        """
        account = normalize_email(email)
        self.auth.hasher.policy.validate(password)
        await self._reserve(account, address)
        users = self.users
        existing = await users.get_by_email(account)
        # The hash runs either way: an existing address must not answer sooner.
        password_hash = await self.auth.hasher.hash(password)
        if existing is None:
            try:
                created = await users.create(
                    account, password_hash, role=SIGNUP_ROLE, verified=False
                )
            except DuplicateUser:
                # A sign-up for the same address won the race: it is an existing account now.
                existing = await users.get_by_email(account)
            else:
                await self.auth.events.publish(
                    UserCreated(user_id=created.id, address=address, role=created.role, actor=None)
                )
                self.courier.dispatch(lambda: self._letter("verify_email", created, VERIFY_EMAIL))
                return
        if existing is not None:
            self.courier.dispatch(lambda: self._existing_account_letter(existing))

    async def _existing_account_letter(self, user: User) -> Letter | None:
        if user.disabled:
            return None
        if not user.email_verified:
            return await self._letter("finish_signup", user, RESET_PASSWORD)
        return self._notice("account_exists", user.email)

    async def request_verification(self, session: Session, *, address: str) -> None:
        """Mail the session user a new link to confirm their address.

        Raises:
            NotAuthenticated: Without an authenticated session.
            AlreadyVerified: If the address is confirmed already.
            TooManyAttempts: If this address or this client asked too often.
        """
        user = await self._current(session)
        if user.email_verified:
            raise AlreadyVerified("Email already verified")
        await self._reserve(user.email, address)
        self.courier.dispatch(lambda: self._letter("verify_email", user, VERIFY_EMAIL))

    async def verify_email(self, token: object, *, session: Session | None = None) -> User:
        """Use a link sent to confirm an address (a new account's, or a new one of an account).

        Args:
            token: The link's token, as presented (checked before any lookup).
            session: The request's session; when signed in, only the user's own links work.

        Returns:
            The account, verified (with its new address, for an email change).

        Raises:
            InvalidToken: If the token proves nothing (malformed, unknown, used, expired,
                another purpose or user, or the address or password changed since).
            DuplicateUser: If the new address of an email change got an account meanwhile.
        """
        signed_in = session.user_id if session is not None else None
        user_id = int(signed_in) if signed_in is not None else None
        claim = await self.tokens.consume(token, VERIFY_EMAIL, user_id=user_id)
        if claim is None:
            claim = await self.tokens.consume(token, CHANGE_EMAIL, user_id=user_id)
        if claim is None:
            raise InvalidToken("Invalid or expired link")
        if claim.purpose == VERIFY_EMAIL:
            try:
                return await self.auth.mark_email_verified(claim.user.id, email=claim.user.email)
            except UserNotFound:
                # Deleted, or given another address, since the token was checked.
                raise InvalidToken("Invalid or expired link") from None
        user = await self.users.set_email(claim.user.id, claim.payload or "", verified=True)
        # A new address is a new credential: the principal takes a new epoch, which ends the
        # user's other sessions (this one stays, if it is the user's) and kills every link
        # issued before, so an address changed back (A -> B -> A) revives none of them.
        if session is not None and signed_in is not None:
            await self.auth.revoke_other_sessions(session)
        else:
            await self.auth.revoke_all_sessions(user.id)
        await self.auth.events.publish(EmailVerified(user_id=user.id, actor=None))
        # The old address hears of it: if the change was not its owner's, they can act.
        notice = self._notice("email_changed", claim.user.email, new_email=user.email)
        self.courier.dispatch(lambda: _ready(notice))
        return user

    # -- email change ------------------------------------------------------------------------

    async def request_email_change(
        self, session: Session, new_email: str, password: str, *, address: str
    ) -> None:
        """Mail a link to ``new_email``; the account's address changes when it is followed.

        The current password is checked first (throttled like a login: a stolen cookie must
        not move the account to the thief's mailbox). If the new address has an account, it
        gets a note saying so instead, and the answer is the same.

        Raises:
            NotAuthenticated: Without an authenticated session.
            InvalidEmail: If ``new_email`` cannot be an address, or is the current one.
            InvalidCredentials: If ``password`` is not the current password.
            TooManyAttempts: If the account, the new address or this client is throttled.
        """
        user = await self._current(session)
        target = normalize_email(new_email)
        if target == user.email:
            raise InvalidEmail("that is already the account's address")
        await self._check_password(user, password, address)
        await self._reserve(target, address)
        taken = await self.users.get_by_email(target)
        if taken is not None:
            notice = self._notice("account_exists", target)
            self.courier.dispatch(lambda: _ready(notice))
        else:
            self.courier.dispatch(
                lambda: self._letter("change_email", user, CHANGE_EMAIL, to=target)
            )

    async def _check_password(self, user: User, password: str, address: str) -> None:
        """Verify the current password, counted against the account like a login."""
        self.auth.hasher.policy.normalize(password)
        throttle = self.auth.throttle
        attempt = await throttle.reserve(user.email, address) if throttle is not None else None
        try:
            ok, _ = await self.auth.hasher.verify(password, user.password_hash)
        except BaseException as exc:
            if throttle is not None and attempt is not None:
                await throttle.release(attempt, after=exc)
            raise
        if not ok:
            raise InvalidCredentials("Invalid credentials")
        if throttle is not None and attempt is not None:
            await throttle.succeeded(attempt)

    # -- forgotten passwords -----------------------------------------------------------------

    async def forgot_password(self, email: str, *, address: str) -> None:
        """Mail a reset link to the address if it has an enabled account; else nothing.

        Raises:
            InvalidEmail: If ``email`` cannot be an address.
            TooManyAttempts: If this recipient or this client asked too often.
        """
        account = normalize_email(email)
        await self._reserve(account, address)
        user = await self.users.get_by_email(account)
        if user is not None and not user.disabled:
            self.courier.dispatch(lambda: self._letter("reset_password", user, RESET_PASSWORD))

    async def reset_password(self, token: object, new_password: str) -> int:
        """Set a new password with a reset link; end every session of the user.

        Nobody is signed in: the user signs in with the new password. The link came through
        the account's address, so the address counts as confirmed afterwards.

        Returns:
            How many sessions ended.

        Raises:
            PasswordPolicyError: If the password breaks the policy (checked first: a refused
                password leaves the link usable).
            InvalidToken: If the token proves nothing (see :meth:`verify_email`).
        """
        self.auth.hasher.policy.validate(new_password)
        claim = await self.tokens.consume(token, RESET_PASSWORD)
        if claim is None:
            raise InvalidToken("Invalid or expired link")
        user = claim.user
        try:
            # Only over the hash the link was checked against: a change landing since (the
            # owner's, say) killed the link, and it stands.
            ended = await self.auth.set_password(
                user.id, new_password, replacing=user.password_hash
            )
        except InvalidCredentials:
            raise InvalidToken("Invalid or expired link") from None
        if not user.email_verified:
            await self.auth.mark_email_verified(user.id)
        return ended

    # -- helpers -----------------------------------------------------------------------------

    async def _current(self, session: Session) -> User:
        """The session's user, as the built-in store holds it."""
        user = await self.auth.current_user(session)
        if not isinstance(user, User):
            raise TypeError("the account lifecycle needs the built-in UserStore")
        return user

    async def _reserve(self, recipient: str, address: str) -> None:
        """Count one mail to ``recipient`` from ``address``; it stays counted (mail was sent)."""
        if self.throttle is not None:
            await self.throttle.reserve(recipient, address)

    async def _letter(
        self, kind: LetterKind, user: User, purpose: str, *, to: str | None = None
    ) -> Letter:
        """A letter with a link carrying a fresh token for ``user`` and ``purpose``."""
        payload = to if purpose == CHANGE_EMAIL else None
        token = await self.tokens.issue(user, purpose, payload=payload)
        context = {"link": f"{self.base_url}{_PATHS[purpose]}?token={token}"}
        if payload is not None:
            context["new_email"] = payload
        return Letter(kind=kind, to=to or user.email, context=context, lifetime=LIFETIMES[purpose])

    def _notice(self, kind: LetterKind, to: str, *, new_email: str | None = None) -> Letter:
        """A letter without a token: ``account_exists`` or ``email_changed``."""
        context = {
            "login_link": f"{self.base_url}/login",
            "reset_link": f"{self.base_url}/password/forgot",
        }
        if new_email is not None:
            context["new_email"] = new_email
        return Letter(kind=kind, to=to, context=context)

    async def drain(self) -> None:
        """Wait until every mail the flows dispatched has been posted (or has failed)."""
        await self.courier.drain()


async def _ready(letter: Letter) -> Letter:
    """A letter that needs no preparation, for :meth:`Courier.dispatch`."""
    return letter
