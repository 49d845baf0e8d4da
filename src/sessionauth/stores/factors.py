"""The contract every second-factor store keeps: TOTP, recovery codes and passkeys per user.

Every backend has one (:meth:`sessionauth.backends.Backend.factor_store`). Keep factors with the
accounts, in the database that holds the users, not in a session store that may lose its keys
(a Redis restarted without persistence, flushed, or failed over to a replica that missed
writes): losing sessions only signs people out, but losing factors fails open. Every account
would then sign in with its password alone, and used recovery codes and TOTP steps would work
again. The login throttles and the held login of the code step may stay with the sessions.
The store sees opaque values only: the TOTP secret arrives encrypted (see
:mod:`sessionauth.auth.totp`), recovery codes as their hashes (:mod:`sessionauth.auth.recovery`),
passkeys as public keys. Nothing it holds lets a reader of a database dump pass a second factor.

Every operation that decides a security question is one atomic step in every backend, so that
concurrent requests cannot both win:

* :meth:`FactorStore.accept_totp_step` is a compare-and-set on the last accepted time step: of
  two submissions of one code at once, exactly one is accepted.
* :meth:`FactorStore.consume_recovery_code` deletes the code's hash: exactly one use wins.
* :meth:`FactorStore.use_passkey` raises the sign count only upwards (WebAuthn §6.1.1): a
  counter that does not grow is refused, unless the authenticator keeps none (both are 0).
"""

from __future__ import annotations

import abc
import enum
from collections.abc import Sequence
from typing import Self

import msgspec

__all__ = [
    "DEFAULT_FACTOR_PREFIX",
    "DEFAULT_FACTOR_TABLE",
    "FactorStore",
    "Passkey",
    "PasskeyUse",
    "TotpRecord",
    "sign_count_grows",
]

DEFAULT_FACTOR_TABLE = "sessionauth_factors"
"""The prefix of the SQL tables (``…_totp``, ``…_recovery``, ``…_passkeys``) unless told."""

DEFAULT_FACTOR_PREFIX = "factors:"
"""Appended to the Redis backend's prefix for factor keys unless told otherwise."""


class TotpRecord(msgspec.Struct, frozen=True, kw_only=True):
    """A user's TOTP factor as stored.

    Attributes:
        secret: The shared secret, encrypted (opaque to the store; compared byte for byte).
        confirmed: Whether a code proved the user's authenticator holds it (the factor is on).
        last_step: The last time step accepted (-1: none); codes of this step or earlier are
            refused, so a code works once.
    """

    secret: bytes
    confirmed: bool
    last_step: int = -1


class Passkey(msgspec.Struct, frozen=True, kw_only=True):
    """A registered WebAuthn credential (a passkey) of one user.

    Attributes:
        credential_id: The authenticator's id of the credential (raw bytes).
        public_key: The COSE public key the assertions are verified with.
        sign_count: The last signature counter seen (0: the authenticator keeps none).
        backup_eligible: Whether the credential may be synced (it can never become so later).
        backed_up: Whether it was backed up when last seen.
        transports: How the browser reached the authenticator (``"internal"``, ``"usb"``…).
        name: The user's name for it.
        created: When it was registered (POSIX seconds).
        last_used: When it last signed a login (``None``: never).
    """

    credential_id: bytes
    public_key: bytes
    sign_count: int
    backup_eligible: bool
    backed_up: bool
    transports: tuple[str, ...] = ()
    name: str = ""
    created: float = 0.0
    last_used: float | None = None


class PasskeyUse(enum.Enum):
    """What :meth:`FactorStore.use_passkey` did."""

    ACCEPTED = "accepted"
    """The counter grew (or both were 0): the new state is stored."""
    COUNTER_REGRESSED = "counter-regressed"
    """The counter did not grow: a cloned authenticator, or a replayed assertion. Refused."""
    UNKNOWN = "unknown"
    """The user has no such passkey (deleted meanwhile)."""


def sign_count_grows(stored: int, received: int) -> bool:
    """Whether ``received`` may follow ``stored`` (WebAuthn: it grows, or both are 0)."""
    return received > stored or (received == 0 and stored == 0)


class FactorStore(abc.ABC):
    """Per-user second factors. User ids are strings, as in the session store.

    Every method raises ``StoreUnavailable`` when the backend fails or does not answer in
    time; none of them ever logs a secret.
    """

    # --- TOTP ---

    @abc.abstractmethod
    async def begin_totp(self, user_id: str, secret: bytes) -> bool:
        """Store a new, unconfirmed TOTP secret, replacing an unconfirmed one.

        Returns:
            False (and nothing changes) if the user has a confirmed TOTP factor: replacing it
            takes disabling it first, which takes a code (or a recovery code).
        """

    @abc.abstractmethod
    async def get_totp(self, user_id: str) -> TotpRecord | None:
        """Return the user's TOTP factor, confirmed or not, or ``None``."""

    @abc.abstractmethod
    async def accept_totp_step(
        self,
        user_id: str,
        secret: bytes,
        step: int,
        *,
        confirm: bool = False,
        reseal: bytes | None = None,
    ) -> bool:
        """Record ``step`` as the last accepted one: one atomic compare-and-set.

        It succeeds only if the stored secret is still ``secret`` (the one the code was
        checked against), ``step`` is later than the last accepted step, and the factor is
        unconfirmed when ``confirm`` is true (it becomes confirmed) or confirmed when it is
        false. Two concurrent calls with the same step: exactly one returns True. With
        ``reseal`` (the same secret encrypted under a newer key), a success also stores it in
        place of ``secret``, in the same step.
        """

    @abc.abstractmethod
    async def delete_totp(self, user_id: str) -> bool:
        """Delete the user's TOTP factor; return whether there was one."""

    @abc.abstractmethod
    async def totp_users(self) -> list[str]:
        """Return the id of every user with a TOTP factor, confirmed or not, in no set order.

        For maintenance (moving the secrets to a new key after a rotation), not for requests:
        it reads the whole store.
        """

    @abc.abstractmethod
    async def replace_totp_secret(self, user_id: str, secret: bytes, new: bytes) -> bool:
        """Store ``new`` in place of the TOTP secret ``secret``: one atomic compare-and-set.

        The factor keeps its state (confirmed, last step). ``False``, and nothing changes, if
        the stored secret is not ``secret`` (another setup, a disable, or a code that moved
        it meanwhile).
        """

    # --- recovery codes ---

    @abc.abstractmethod
    async def set_recovery_codes(self, user_id: str, hashes: Sequence[str]) -> None:
        """Replace every recovery code of the user with these hashes, in one atomic step."""

    @abc.abstractmethod
    async def consume_recovery_code(self, user_id: str, code_hash: str) -> bool:
        """Delete one recovery code; True only for the one call that deleted it."""

    @abc.abstractmethod
    async def count_recovery_codes(self, user_id: str) -> int:
        """Return how many unused recovery codes the user has."""

    # --- passkeys ---

    @abc.abstractmethod
    async def add_passkey(self, user_id: str, passkey: Passkey) -> bool:
        """Register a passkey; False (nothing stored) if the user has one with that id."""

    @abc.abstractmethod
    async def list_passkeys(self, user_id: str) -> list[Passkey]:
        """Return the user's passkeys, oldest first."""

    @abc.abstractmethod
    async def get_passkey(self, user_id: str, credential_id: bytes) -> Passkey | None:
        """Return one passkey of the user, or ``None``."""

    @abc.abstractmethod
    async def rename_passkey(self, user_id: str, credential_id: bytes, name: str) -> bool:
        """Rename one passkey; False if the user has no such passkey."""

    @abc.abstractmethod
    async def delete_passkey(self, user_id: str, credential_id: bytes) -> bool:
        """Delete one passkey; False if the user had no such passkey."""

    @abc.abstractmethod
    async def use_passkey(
        self, user_id: str, credential_id: bytes, *, sign_count: int, backed_up: bool, now: float
    ) -> PasskeyUse:
        """Record a login with a passkey: one atomic compare-and-set on the sign count.

        The new count, backup state and ``now`` (as ``last_used``) are stored only if
        :func:`sign_count_grows` from the stored count: of two concurrent uses reporting the
        same count, exactly one is accepted.
        """

    # --- the account ---

    @abc.abstractmethod
    async def reset(self, user_id: str) -> None:
        """Delete every factor of the user: TOTP, recovery codes and passkeys."""

    async def aclose(self) -> None:
        """Release connections this store owns. The default owns none."""

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()
