"""The Authenticator: the one way into accounts and sessions.

:class:`Authenticator` turns sessions into logins and keeps them honest afterwards; it is also
an :class:`~sessionauth.auth.accounts.AccountAdministration` (accounts) and a
:class:`~sessionauth.auth.session_admin.SessionAdministration` (sessions), so the API, the
pages and the CLI change nothing any other way.

* ``authenticate`` gives unknown email, wrong password and disabled account the same exception
  after the same work (one principal read and exactly one password hash each, a dummy one for
  unknown emails), and is throttled per account and per client address before any hashing:
  each attempt is reserved atomically first, so a burst of concurrent guesses verifies no more
  passwords than the limit allows. It reads the account's principal (see
  :mod:`sessionauth.principal`) *before* the password check.
* ``login`` stores the new session itself, eagerly, with that principal's epoch: the store
  creates it only if the epoch is still current (create-if-current), so a login in flight
  while the account is disabled, deleted, or its password changed never yields a session. A
  login refused that way reads the account once more (:mod:`.logins`) and otherwise fails
  like a wrong password. The session adopts the stored record (new token, CSRF secret rotated
  with it); the middleware then only sets the cookie and deletes the record it replaced.
* Every change of trust applies at once to every live session of the user (the principal is
  read with each session): a password change ends the others and keeps this one, and so
  does enabling or disabling a second factor (:mod:`.factor_admin`).

Each event (see :mod:`sessionauth.auth.events`) goes to the ``sessionauth.security`` logger and
to the subscribers of :attr:`~Authenticator.events`; neither ever sees a password or a session
token.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Literal, cast

from sessionauth.auth.accounts import AccountAdministration
from sessionauth.auth.admin_rules import DEFAULT_ROLES
from sessionauth.auth.event_hub import EventHub, Hook
from sessionauth.auth.events import (
    AuthEvent,
    LoggedOut,
    LoginFailed,
    LoginSucceeded,
    LoginThrottled,
    PasswordChanged,
    PasswordChangeFailed,
)
from sessionauth.auth.logins import Login, principal_after_stale, read_account
from sessionauth.auth.passkey_login import PasskeyLogin
from sessionauth.auth.passwords import PasswordHasher
from sessionauth.auth.throttle import Attempt, LoginThrottle
from sessionauth.auth.user_ids import IdT, UserId
from sessionauth.auth.user_source import AccountLike, UserSource, replaced
from sessionauth.errors import (
    EmailNotVerified,
    InvalidCredentials,
    NotAuthenticated,
    SecondFactorRequired,
    StaleLogin,
    TooManyAttempts,
)
from sessionauth.policy import Clock, system_clock
from sessionauth.principal import Principal
from sessionauth.record import REMEMBER
from sessionauth.session import Session
from sessionauth.stores.base import SessionStore
from sessionauth.stores.users import InvalidEmail, User, normalize_email
from sessionauth.tokens import new_token, storage_id
from sessionauth.user_text import user_id_text

if TYPE_CHECKING:
    from sessionauth.auth.factors import SecondFactors
    from sessionauth.auth.passkeys import Passkeys

__all__ = ["Authenticator"]

# Longest user agent kept with a session: enough to tell devices apart, bounded storage.
_MAX_USER_AGENT = 256
# A password's hash is upgraded once per change of the hashing costs: one retry is enough,
# the second covers an upgrade racing another upgrade.
_REHASH_TRIES = 3


class Authenticator(AccountAdministration[IdT], PasskeyLogin[IdT]):
    """Logins, logouts, password changes; with account and session administration.

    Generic in the user id type, ``int`` (the default: the built-in stores' ids) or ``str``
    (text ids such as UUIDs, from a :class:`~sessionauth.auth.UserSource` of your own)::

        auth = Authenticator(users=MyUsers(), sessions=store, hasher=hasher, throttle=None,
                             user_id_type=str)            # an Authenticator[str]

    Its methods take and its events carry ids of that type; sessions and stores keep them as
    text.

    Args:
        users: Where accounts live: a built-in :class:`~sessionauth.stores.users.UserStore`
            (with account administration) or any :class:`~sessionauth.auth.UserSource` of
            the application's own (see :mod:`sessionauth.auth.user_source`).
        sessions: The session store the middleware uses (revocation acts on it directly).
        hasher: Hashes and verifies passwords off the event loop.
        throttle: Limits failed logins; ``None`` disables throttling (the CLI, tests).
        clock: Time source for authentication times.
        hooks: Subscribed to every event (:class:`~sessionauth.auth.events.AuthEvent`); use
            ``events.subscribe(SomeEvent, hook)`` for one type.
        roles: The roles accounts may have; must include ``admin``.
        require_verified: Refuse logins to accounts whose email is not confirmed (with
            :class:`~sessionauth.errors.EmailNotVerified`, and only once the password was
            judged right).
        user_id_type: ``int`` (the default) or ``str``: the type of the users' ids (each
            user's ``id`` must be of it).
        factors: Second factors (TOTP, recovery codes); ``None`` offers none. See
            :class:`~sessionauth.auth.factor_admin.FactorAdministration` for the methods.
            Their store belongs with ``users`` (the accounts' database), not with
            ``sessions``: a session store that loses its keys must not switch the second
            factor off (see :mod:`sessionauth.stores.factors`).
        passkeys: Passkeys; ``None`` offers none (their store belongs with ``users`` too). See
            :class:`~sessionauth.auth.passkey_login.PasskeyLogin` for the sign-in.

    Attributes:
        throttle: The login throttle, if any.
        clock: The time source.
        require_verified: Whether logins need a confirmed email.
        factors: The second factors, if any.
        passkeys: The passkeys, if any.

    Raises:
        ConfigurationError: For an invalid role name or roles without ``admin``.
    """

    def __init__(
        self,
        *,
        users: UserSource[AccountLike],
        sessions: SessionStore,
        hasher: PasswordHasher,
        throttle: LoginThrottle | None,
        clock: Clock = system_clock,
        hooks: Sequence[Hook[AuthEvent]] = (),
        roles: Iterable[str] = DEFAULT_ROLES,
        require_verified: bool = False,
        user_id_type: type[IdT] = int,  # type: ignore[assignment]  # see SessionAdministration
        factors: SecondFactors | None = None,
        passkeys: Passkeys | None = None,
    ):
        events = EventHub()
        for hook in hooks:
            events.subscribe(AuthEvent, hook)
        super().__init__(
            users=users,
            sessions=sessions,
            hasher=hasher,
            events=events,
            roles=roles,
        )
        self.user_id_type = user_id_type
        self.throttle = throttle
        self.clock = clock
        self.require_verified = require_verified
        self.factors = factors
        self.passkeys = passkeys

    async def _reserve(
        self,
        account: str,
        address: str,
        *,
        user_id: UserId | None,
        during: Literal["login", "password-change"],
    ) -> Attempt | None:
        """Take an attempt from the throttle (``None`` without one); publish a refusal."""
        if self.throttle is None:
            return None
        try:
            return await self.throttle.reserve(account, address)
        except TooManyAttempts as exc:
            await self.events.publish(
                LoginThrottled(
                    user_id=user_id, address=address, retry_after=exc.retry_after, during=during
                )
            )
            raise

    async def _release(self, attempt: Attempt | None, after: BaseException) -> None:
        if self.throttle is not None and attempt is not None:
            await self.throttle.release(attempt, after=after)

    async def _succeeded(self, attempt: Attempt | None) -> None:
        if self.throttle is not None and attempt is not None:
            await self.throttle.succeeded(attempt)

    async def authenticate(self, email: str, password: str, *, address: str) -> Login:
        """Return the login of the active user whose email and password these are.

        The account's principal is read before the password check (installed from a fresh
        users read if the store holds none); pass the result to :meth:`login`.

        Raises:
            TooManyAttempts: If the account or the address has no attempt left (refused before
                any hashing; the attempt is reserved before the password is verified).
            PasswordPolicyError: If the password is longer than the policy allows (refused
                before hashing; the answer does not depend on the account).
            InvalidCredentials: For an unknown email, a wrong password or a disabled account,
                indistinguishably.
            EmailNotVerified: With ``require_verified``, for the right password of an enabled
                account whose email is not confirmed (never before the password is judged
                right, so a wrong password looks the same on every account).
        """
        try:
            account = normalize_email(email)
        except InvalidEmail:
            account = None
        throttle_key = account if account is not None else email.strip().casefold()[:320]
        attempt = await self._reserve(throttle_key, address, user_id=None, during="login")
        try:
            # Refuse an oversized password before the user lookup: no hashing, and the answer
            # cannot depend on the account, not even through the lookup's timing.
            self.hasher.policy.normalize(password)
            user, principal = await read_account(self.users, self.sessions, account)
            if user is None:
                await self.hasher.dummy_verify(password)
                ok, new_hash = False, None
            else:
                ok, new_hash = await self.hasher.verify(password, user.password_hash)
        except BaseException as exc:
            # No password was judged (too long, an outage, a cancelled request): the attempt
            # does not count.
            await self._release(attempt, exc)
            raise
        if user is None or not ok or user.disabled or principal is None or principal.disabled:
            # The reservation stays: it is this failure's count.
            reason: Literal["unknown", "password", "disabled"] = (
                "password"
                if user is not None and not ok
                else "unknown"
                if user is None or principal is None
                else "disabled"
            )
            await self.events.publish(
                LoginFailed(user_id=user.id if user else None, address=address, reason=reason)
            )
            raise InvalidCredentials("Invalid credentials")
        # The password was judged right: the throttle settles it now. A login that then loses
        # the race with an account change (stale) is refused without counting as a failure.
        await self._succeeded(attempt)
        # email_verified is not part of AccountLike: users of an application's own without
        # it count as unverified, so require_verified fails closed for them.
        if self.require_verified and not getattr(user, "email_verified", False):
            await self.events.publish(
                LoginFailed(user_id=user.id, address=address, reason="unverified")
            )
            raise EmailNotVerified("Email not verified")
        if new_hash is not None and replaced(
            await self.users.set_password(user.id, new_hash, replacing=user.password_hash)
        ):
            # Upgraded a bcrypt or weaker argon2 hash now that we hold the right password, and
            # only for a login that goes on: a refused one (unverified) keeps the stored hash,
            # and with it the mailed links bound to it. Only while the hash is the one the
            # password matched: a late upgrade must not bring back a password an administrator
            # has just replaced (this login then fails as stale, at its commit).
            return Login(user, principal, new_hash)
        return Login(user, principal, user.password_hash)

    async def login(
        self,
        session: Session,
        login: Login,
        *,
        address: str | None,
        user_agent: str | None,
        remember: bool = False,
    ) -> Principal:
        """Store a new session for ``login`` and make ``session`` that session.

        The record (new token, fresh lifetime, the client's address and user agent, the
        authentication time) is created now, and only while the principal ``authenticate``
        read is still current. Values of an anonymous session (a cart) carry over; those of
        another user's session do not, so a shared browser never hands one user's data to the
        next.

        ``remember`` ("keep me signed in") gives the session a persistent cookie and the
        policy's ``absolute_timeout``; without it (the default) the cookie is a browser-session
        cookie and the session ends ``short_absolute_timeout`` after the login, whatever the
        browser keeps. The flag is stored in the record (``meta["remember"]``).

        Returns:
            The principal in force: the rights the new session has (its ``role`` is the one
            to show, even if an administrator changed it during the login).

        Raises:
            InvalidCredentials: If the account changed while the login ran (password changed,
                disabled, deleted, sessions revoked) and reading it again does not allow the
                login: the same answer as a wrong password.
            SecondFactorRequired: If the account has a second factor and ``login`` did not
                come from its second step (:meth:`complete_login`, a passkey): hold it with
                :meth:`hold_login` and ask for the code. A password alone never signs in such
                an account, even in an application that forgot to ask.
        """
        if not isinstance(login.user.id, self.user_id_type):
            # Its session would name no user of this application: say so rather than log in.
            raise TypeError(
                f"the user source's ids are {type(login.user.id).__name__}, "
                f"not the Authenticator's user_id_type {self.user_id_type.__name__}"
            )
        if not login.second_factor_done and self.factors is not None:
            methods = await self.second_factor_methods(login)
            if methods:
                raise SecondFactorRequired(methods)
        user_id = user_id_text(login.user.id)
        meta = {
            "ip": address,
            "ua": (user_agent or "")[:_MAX_USER_AGENT],
            "auth": self.clock(),
            REMEMBER: remember,
        }
        principal: Principal | None = login.principal
        retried = False
        while principal is not None:
            token = new_token(user_id)
            sid = storage_id(token)
            record = session.login_record(
                user_id, token=token, meta=meta, epoch=principal.epoch, now=self.clock()
            )
            try:
                stored = await self.sessions.create(sid, record)
            except StaleLogin:
                if retried:
                    break
                retried = True
                principal = await principal_after_stale(self.users, self.sessions, login)
                continue
            assert stored is not None  # noqa: S101 - a user's record always has a principal
            session.adopt(token, sid, record, stored)
            await self.events.publish(LoginSucceeded(user_id=login.user.id, address=address))
            return stored
        await self.events.publish(
            LoginFailed(user_id=login.user.id, address=address, reason="stale")
        )
        raise InvalidCredentials("Invalid credentials")

    async def logout(self, session: Session, *, address: str | None = None) -> None:
        """Destroy ``session``: its record is deleted and its cookie cleared."""
        user_id = self.session_user_id(session)
        session.destroy()
        await self.events.publish(LoggedOut(user_id=user_id, address=address))

    async def current_user(self, session: Session) -> User:
        """Return the active user of an authenticated session (a built-in store's ``User``).

        With users of your own, :class:`~sessionauth.auth.CurrentUser` returns your user
        object, typed.

        Raises:
            NotAuthenticated: If the session is anonymous, or its user is gone or disabled
                (a session that outlived its account is destroyed on the spot).
        """
        return cast(User, await self._active_account(session))

    async def _active_account(self, session: Session) -> AccountLike:
        if session.user_id is None:
            raise NotAuthenticated("Authentication required")
        user_id = self.session_user_id(session)
        # A session whose id is not of user_id_type names no user of ours: it ends too.
        user = await self.users.get(user_id) if user_id is not None else None
        if user is None or user.disabled:
            session.destroy()
            raise NotAuthenticated("Authentication required")
        return user

    async def _replace_proved(
        self, user_id: UserId, new_hash: str, proved: str, password: str
    ) -> bool:
        """Write ``new_hash`` over the hash ``password`` was proved against, or its rehash.

        A login with the same password may upgrade the hash between the check and the write
        (bcrypt or older argon2 costs to today's): the stored hash is then another one of the
        same password, which the change may still replace. Any other change wins.
        """
        for _ in range(_REHASH_TRIES):
            if replaced(await self.users.set_password(user_id, new_hash, replacing=proved)):
                return True
            fresh = await self.users.get(user_id)
            if fresh is None or not (await self.hasher.verify(password, fresh.password_hash))[0]:
                return False
            proved = fresh.password_hash
        return False

    async def change_password(
        self, session: Session, current_password: str, new_password: str, *, address: str | None
    ) -> int:
        """Change the session user's password; return how many other sessions were revoked.

        Checks the current password (the same uniform failure as a login), hashes the new one
        under the policy, ends every other session (a new principal epoch, before and again
        after the new hash is written: see ``_rotating``) and regenerates this one.

        Raises:
            NotAuthenticated: Without an authenticated session.
            TooManyAttempts: If the account is throttled (failed checks count as failed logins).
            InvalidCredentials: If ``current_password`` is wrong, or stopped being the
                password while this ran (another change or a reset landed first, and stands).
            PasswordPolicyError: If the new password breaks the policy.
        """
        user = await self._active_account(session)
        # Both lengths before any hashing: an oversized password must cost no argon2 run.
        self.hasher.policy.normalize(current_password)
        self.hasher.policy.validate(new_password)
        # A stolen cookie must not become an unthrottled oracle for the current password: the
        # check counts against the account exactly like a login.
        attempt = await self._reserve(
            user.email, address or "unknown", user_id=user.id, during="password-change"
        )
        try:
            ok, _ = await self.hasher.verify(current_password, user.password_hash)
        except BaseException as exc:
            await self._release(attempt, exc)
            raise
        if not ok:
            await self.events.publish(PasswordChangeFailed(user_id=user.id, address=address))
            raise InvalidCredentials("Invalid credentials")
        await self._succeeded(attempt)
        new_hash = await self.hasher.hash(new_password)
        done, revoked = await self._rotating(
            user.id,
            lambda: self._replace_proved(user.id, new_hash, user.password_hash, current_password),
            keep=session,
        )
        if done:
            session.regenerate()
            await self.events.publish(PasswordChanged(user_id=user.id, address=address))
        await self._revoked(user.id, revoked, "password-changed", actor=user.id, address=address)
        if not done:
            # Another change landed after the current password was checked (an administrator's
            # reset ending a thief's sessions, or a second change): the password this request
            # proved is no longer the account's, and the later change stands.
            await self.events.publish(PasswordChangeFailed(user_id=user.id, address=address))
            raise InvalidCredentials("Invalid credentials")
        return revoked
