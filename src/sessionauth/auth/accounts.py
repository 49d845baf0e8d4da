"""Account administration: the only code that creates, changes or deletes a user.

The API, the admin pages, the CLI and the first-admin bootstrap all come here, so that every
change keeps the rules of :mod:`.admin_rules` (roles from the configured set; never the last
enabled administrator demoted, disabled or deleted unless forced from the CLI; never an
administrator acting on itself), applies at once to the user's live sessions through the
user's principal (see :mod:`sessionauth.principal`: a role change is read by every session on
its next request; a password reset, a disable or a delete gives it a new epoch, which ends
them all), and is published as an :class:`~sessionauth.auth.events.AccountEvent`.

Order of writes: restrictions (demote, disable, delete, password reset) go to the session
store first, then to the users database; grants (promote to admin, enable) the other way
round. A failure between the two writes leaves the sessions with fewer rights, never more,
and the change can simply be retried.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, cast

from sessionauth.auth.admin_rules import DEFAULT_ROLES, check_removal, check_role, role_set
from sessionauth.auth.event_hub import EventHub
from sessionauth.auth.events import (
    AccountDisabled,
    AccountEnabled,
    EmailVerified,
    PasswordReset,
    RoleChanged,
    UserCreated,
    UserDeleted,
)
from sessionauth.auth.factor_admin import forget_factors
from sessionauth.auth.logins import missed_restriction
from sessionauth.auth.passwords import PasswordHasher
from sessionauth.auth.session_admin import SessionAdministration
from sessionauth.auth.user_ids import IdT, UserId
from sessionauth.auth.user_source import AccountLike, UserSource, check_compare_and_set, replaced
from sessionauth.errors import AdminLockout, InvalidCredentials, StoreUnavailable, UserNotFound
from sessionauth.stores.base import SessionStore
from sessionauth.stores.users import ADMIN_ROLE, User, UserPage, UserStore
from sessionauth.user_text import user_id_text

# Imported for type checking only: these modules need the mfa extra (pyotp, py_webauthn).
if TYPE_CHECKING:
    from sessionauth.auth.factors import SecondFactors
    from sessionauth.auth.passkeys import Passkeys

__all__ = ["AccountAdministration"]

# A reset reads the stored hash and replaces it if unchanged; each retry means another change
# landed in between, which a password change cannot do more than once per login it holds.
_RESET_TRIES = 5


class AccountAdministration(SessionAdministration[IdT]):
    """Accounts: read, create, change roles, passwords and states, delete.

    The administration of accounts (everything but :meth:`principal_changed`) needs a built-in
    :class:`~sessionauth.stores.users.UserStore`, whose ids are ``int``.

    Args:
        users: Where accounts live.
        sessions: The session store the middleware uses.
        hasher: Hashes passwords off the event loop.
        events: Where events are published.
        roles: The roles accounts may have; must include ``admin``.
        user_id_type: ``int`` (the default) or ``str``: the type of the users' ids.

    Attributes:
        users: Where accounts live.
        hasher: Hashes passwords (its ``policy`` says what a password must be).
        roles: The roles accounts may have.
        factors: Second factors (set by the Authenticator; deleted with their user).
        passkeys: Passkeys (set by the Authenticator; deleted with their user).

    Raises:
        ConfigurationError: For an invalid role name or roles without ``admin``.
    """

    factors: SecondFactors | None = None
    passkeys: Passkeys | None = None

    def __init__(
        self,
        *,
        users: UserSource[AccountLike],
        sessions: SessionStore,
        hasher: PasswordHasher,
        events: EventHub,
        roles: Iterable[str] = DEFAULT_ROLES,
        user_id_type: type[IdT] = int,  # type: ignore[assignment]  # see SessionAdministration
    ):
        check_compare_and_set(users)
        super().__init__(sessions=sessions, events=events, users=users)
        self.user_id_type = user_id_type
        self.roles = role_set(roles)
        self.hasher = hasher

    def user_store(self) -> UserStore:
        """Return the built-in user store, for the administration only it offers.

        Raises:
            TypeError: If the users are the application's own (a :class:`UserSource` without
                the store's writes): change them yourself and call :meth:`principal_changed`.
        """
        # Duck-typed rather than isinstance: a wrapper around a store (tests, metrics) counts.
        if not callable(getattr(self.users, "create", None)):
            raise TypeError(
                "account administration needs a built-in UserStore; with your own users, "
                "change them yourself and call principal_changed()"
            )
        return cast(UserStore, self.users)

    async def list_users(self) -> list[User]:
        """Return every account, oldest first."""
        return await self.user_store().list()

    async def page_users(
        self, *, search: str = "", after: int = 0, before: int | None = None, limit: int = 50
    ) -> UserPage:
        """Return one page of accounts whose email contains ``search``, by id.

        See :meth:`~sessionauth.stores.users.UserStore.page`.

        Raises:
            ValueError: If ``limit``, ``after`` or ``before`` is out of range.
        """
        return await self.user_store().page(search=search, after=after, before=before, limit=limit)

    async def get_user(self, user_id: int) -> User:
        """Return the account with this id.

        Raises:
            UserNotFound: If there is none.
        """
        user = await self.user_store().get(user_id)
        if user is None:
            raise UserNotFound(f"no user with id {user_id}")
        return user

    async def find_user(self, email: str) -> User | None:
        """Return the account with this email (normalised as stored), or ``None``."""
        return await self.user_store().get_by_email(email)

    async def create_user(
        self,
        email: str,
        password: str,
        role: str = "user",
        *,
        actor: int | None = None,
        verified: bool = True,
    ) -> User:
        """Create an account with a password under the policy and a role from :attr:`roles`.

        Args:
            email: The account's email address.
            password: Its password, hashed here.
            role: One of :attr:`roles`.
            actor: The administrator asking (``None``: the CLI or the server itself).
            verified: Whether its email counts as confirmed: accounts an administrator or
                the CLI makes do; a self sign-up passes ``False`` until the owner confirms.

        Raises:
            InvalidRole: If ``role`` is not one of :attr:`roles`.
            InvalidEmail: If ``email`` cannot be normalised.
            PasswordPolicyError: If the password breaks the policy.
            DuplicateUser: If the email is taken.
        """
        check_role(role, self.roles)
        password_hash = await self.hasher.hash(password)
        user = await self.user_store().create(email, password_hash, role=role, verified=verified)
        await self.events.publish(UserCreated(user_id=user.id, role=user.role, actor=actor))
        return user

    async def mark_email_verified(
        self, user_id: int, *, email: str | None = None, actor: int | None = None
    ) -> User:
        """Record that a user's email is confirmed (see ``UserStore.mark_email_verified``).

        Args:
            user_id: The account.
            email: Confirm only while this is still its email (a confirmation link's address).
            actor: The administrator asking (``None``: the CLI, or the owner through a link).

        Raises:
            UserNotFound: If there is no such user, or it no longer has ``email``.
        """
        user = await self.user_store().mark_email_verified(user_id, email=email)
        await self.events.publish(EmailVerified(user_id=user_id, actor=actor))
        return user

    async def set_role(
        self, user_id: int, role: str, *, actor: int | None = None, force: bool = False
    ) -> User:
        """Change a user's role; every live session of theirs has the new role at once.

        Giving ``admin`` is a grant: the users database changes first, then the principal.
        Any other role is treated as a restriction: the principal changes first (the sessions
        lose the old role at once), then the users database; a refused change (the last
        administrator) gives the principal its role back. Sessions are kept either way.

        Args:
            user_id: Whose role changes.
            role: One of :attr:`roles`.
            actor: The administrator asking through the API or a page (never themself).
            force: Allow demoting the last enabled administrator (the CLI's ``--force``).

        Raises:
            InvalidRole: If ``role`` is not one of :attr:`roles`.
            UserNotFound: If there is no such user.
            AdminLockout: If this demotes ``actor`` or the last enabled administrator.
        """
        check_role(role, self.roles)
        if role == ADMIN_ROLE:
            await self.get_user(user_id)
            user = await self.user_store().set_role(user_id, role, keep_admin=not force)
            await self._change_principal(user_id, role=role, account=user)
        else:
            current = await check_removal(self.user_store(), user_id, actor=actor, force=force)
            await self._change_principal(user_id, role=role, account=current)
            try:
                user = await self.user_store().set_role(user_id, role, keep_admin=not force)
            except AdminLockout:
                await self._change_principal(user_id, role=current.role, account=current)
                raise
        await self._settle_principal(user_id)
        await self.events.publish(RoleChanged(user_id=user_id, role=role, actor=actor))
        return user

    async def _settle_principal(self, user_id: UserId) -> None:
        """End a role or state change: the principal grants no more than the users database.

        Run after the change's own writes, it reads the account again and repairs what a
        concurrent change of the same account may have left (see ``missed_restriction``):
        whichever of two racing changes finishes last reads the final users row, so the
        principal ends equal to it or, at worst, with fewer rights.
        """
        user = await self.users.get(user_id)
        principal = await self.sessions.principal(user_id_text(user_id))
        if user is None or principal is None:
            return
        repair = missed_restriction(user, principal)
        if repair is not None:
            await self.sessions.change_principal(user_id_text(user_id), repair)

    async def set_password(
        self,
        user_id: int,
        new_password: str,
        *,
        actor: int | None = None,
        replacing: str | None = None,
    ) -> int:
        """Set a user's password (a reset); end all their sessions and return how many.

        Args:
            user_id: Whose password.
            new_password: The new password.
            actor: The administrator asking, if any.
            replacing: The hash a mailed reset link was checked against: the reset is made
                only over that one. Without it (an administrator), over whatever is stored.

        Raises:
            UserNotFound: If there is no such user.
            PasswordPolicyError: If the password breaks the policy.
            InvalidCredentials: With ``replacing``, if the password changed since (the change
                stands: it killed the link), or the account is gone (a dead link too, never a
                "no such user" to whoever holds the link).
        """
        if replacing is not None:
            # Refused before anything changes when the password changed already (the usual
            # case of a dead link): no session ends for a reset that is not made.
            current = await self.users.get(user_id)
            if current is None or current.password_hash != replacing:
                raise InvalidCredentials("Invalid credentials")
        new_hash = await self.hasher.hash(new_password)
        done, revoked = await self._rotating(
            user_id,
            lambda: (
                self._replace_password(user_id, new_hash)
                if replacing is None
                else self._replace_exactly(user_id, new_hash, replacing)
            ),
        )
        if done:
            await self.events.publish(PasswordReset(user_id=user_id, actor=actor))
        await self._revoked(user_id, revoked, "password-reset", actor=actor)
        if not done:
            raise InvalidCredentials("Invalid credentials")
        return revoked

    async def _replace_exactly(self, user_id: int, new_hash: str, replacing: str) -> bool:
        return replaced(await self.users.set_password(user_id, new_hash, replacing=replacing))

    async def _replace_password(self, user_id: int, new_hash: str) -> bool:
        """Write a reset's hash over whatever is stored, through the compare-and-set write.

        A source only replaces a hash it is told (see ``UserSource.set_password``), so the
        reset reads the current one first and reads again if a change slipped in between.

        Raises:
            UserNotFound: If there is no such user.
            StoreUnavailable: If the hash changed under every try (try the reset again).
        """
        for _ in range(_RESET_TRIES):
            user = await self.users.get(user_id)
            if user is None:
                raise UserNotFound(f"no user with id {user_id}")
            if await self._replace_exactly(user_id, new_hash, user.password_hash):
                return True
        raise StoreUnavailable(f"the password changed {_RESET_TRIES} times during the reset")

    async def set_disabled(
        self, user_id: int, disabled: bool, *, actor: int | None = None, force: bool = False
    ) -> User:
        """Disable (ending every session) or re-enable a user.

        Re-enabling brings no session back: they ended with the disable, and may have been
        stolen.

        Args:
            user_id: Who is disabled or enabled.
            disabled: Which of the two.
            actor: The administrator asking through the API or a page (never themself).
            force: Allow disabling the last enabled administrator (the CLI's ``--force``).

        Raises:
            UserNotFound: If there is no such user.
            AdminLockout: If this disables ``actor`` or the last enabled administrator.
        """
        if not disabled:
            before = await self.user_store().get(user_id)
            user = await self.user_store().set_disabled(user_id, False)
            # The principal is written even for an enabled account (it repairs one that a
            # failure left disabled), but only a change is an event in the audit trail.
            await self._change_principal(user_id, disabled=False, account=user)
            await self._settle_principal(user_id)
            if before is None or before.disabled:
                await self.events.publish(AccountEnabled(user_id=user_id, actor=actor))
            return user
        current = await check_removal(self.user_store(), user_id, actor=actor, force=force)
        _, revoked = await self._change_principal(
            user_id, disabled=True, rotate=True, account=current
        )
        try:
            user = await self.user_store().set_disabled(user_id, True, keep_admin=not force)
        except AdminLockout:
            await self._change_principal(user_id, disabled=current.disabled, account=current)
            raise
        await self._settle_principal(user_id)
        await self.events.publish(AccountDisabled(user_id=user_id, actor=actor))
        await self._revoked(user_id, revoked, "disabled", actor=actor)
        return user

    async def delete_user(
        self, user_id: int, *, actor: int | None = None, force: bool = False
    ) -> int:
        """Delete a user, their second factors, and end all their sessions; return how many.

        The principal is disabled (with a new epoch) before the row goes: a tombstone that
        refuses any login still in flight, until the store forgets it. The user's TOTP
        secret, recovery codes and passkeys go after the row: kept secrets would outlive
        their account, and an id that comes back must not inherit them.

        Args:
            user_id: Who is deleted.
            actor: The administrator asking through the API or a page (never themself).
            force: Allow deleting the last enabled administrator (the CLI's ``--force``).

        Raises:
            UserNotFound: If there is no such user.
            AdminLockout: If this deletes ``actor`` or the last enabled administrator.
        """
        current = await check_removal(self.user_store(), user_id, actor=actor, force=force)
        _, revoked = await self._change_principal(
            user_id, disabled=True, rotate=True, account=current
        )
        try:
            await self.user_store().delete(user_id, keep_admin=not force)
        except AdminLockout:
            await self._change_principal(user_id, disabled=current.disabled, account=current)
            raise
        await forget_factors(self.factors, self.passkeys, user_id_text(user_id))
        await self.events.publish(UserDeleted(user_id=user_id, actor=actor))
        await self._revoked(user_id, revoked, "deleted", actor=actor)
        return revoked

    async def principal_changed(self, user_id: IdT, *, end_sessions: bool) -> int:
        """Apply a change made to an account outside the Authenticator to its sessions.

        For applications that change roles, the disabled flag or passwords in their own code
        (or straight in the users database): call it after the change. **Until it runs, the
        old rights stand**: sessions keep the role, the enabled state and the password epoch
        the session store last knew of. (The user's next login does apply a demotion or a
        disable it finds in the users database, see ``missed_restriction``; never a grant,
        and never a password change.)

        Args:
            user_id: The account that changed, of :attr:`user_id_type`.
            end_sessions: End every session of the user (a password change or reset, a
                suspected theft). A disabled or deleted account always ends them.

        Returns:
            How many sessions ended.
        """
        user = await self.users.get(user_id)
        if user is None:
            _, ended = await self._change_principal(user_id, disabled=True, rotate=True)
        else:
            _, ended = await self._change_principal(
                user_id,
                role=user.role,
                disabled=user.disabled,
                rotate=end_sessions or user.disabled,
                account=user,
            )
        if ended:
            await self._revoked(user_id, ended, "account-changed", actor=None)
        return ended
