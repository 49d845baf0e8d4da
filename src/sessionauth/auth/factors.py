"""Second factors of one user: TOTP enrolment and checks, recovery codes.

:class:`SecondFactors` is the logic over a :class:`~sessionauth.stores.factors.FactorStore`,
without sessions or HTTP: the :class:`~sessionauth.auth.authenticator.Authenticator` adds what
must happen to sessions (a new epoch, the caller's session kept; see
:mod:`sessionauth.auth.factor_admin`), and the two-step login uses :meth:`SecondFactors.check`.

TOTP goes through three states: none; pending (:meth:`SecondFactors.start_totp` stored an
encrypted secret); enabled (:meth:`SecondFactors.confirm_totp` checked a first code, which
also creates the recovery codes, returned once). Every accepted code moves the store's last
accepted step forward in one compare-and-set, so a code works once, also under concurrent
use; recovery codes are consumed by one atomic delete.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from sessionauth.auth import recovery
from sessionauth.auth.totp import TotpCipher, matching_step, new_secret, otpauth_url
from sessionauth.errors import FactorConflict, InvalidCode
from sessionauth.policy import Clock, system_clock
from sessionauth.stores.factors import FactorStore

__all__ = ["DEFAULT_ISSUER", "ResealReport", "SecondFactors", "TotpSetup"]

DEFAULT_ISSUER = "sessionauth"
"""The issuer authenticator apps show unless told otherwise."""

_INVALID = "Invalid code"
# A secret is sealed again at most once per key rotation; more tries cover a run of reseal-mfa
# racing a code's own move.
_RESEALED_TRIES = 3


@dataclass(frozen=True, slots=True)
class TotpSetup:
    """What a user needs to add the TOTP factor to an authenticator app (shown once).

    Attributes:
        secret: The base32 secret, for typing in by hand.
        otpauth_url: The same as an ``otpauth://`` URL, for a QR code.
    """

    secret: str
    otpauth_url: str

    def __repr__(self) -> str:
        return "TotpSetup(<secret hidden>)"


@dataclass(frozen=True, slots=True)
class ResealReport:
    """What :meth:`SecondFactors.reseal_all` did, secret by secret.

    Attributes:
        moved: Secrets now sealed under the newest key (they were under an older one); in a
            dry run, the enabled secrets only an older key opens.
        current: Secrets that were under the newest key already.
        unreadable: The users whose enabled TOTP no key of the keyring opens: they sign in
            with a recovery code (and can turn TOTP off with one), or need an administrator's
            reset of their factors.
        abandoned: Setups never confirmed that no key opens: no second factor (the password
            alone signs in, and the next setup replaces them); left as they are.
        changed: Secrets that changed while they were read (a new setup, a disable, or a
            code that moved it itself): left as they now are.
    """

    moved: int = 0
    current: int = 0
    unreadable: tuple[str, ...] = ()
    abandoned: int = 0
    changed: int = 0


class SecondFactors:
    """TOTP and recovery codes over a factor store.

    Args:
        store: Where factors live: the factor store of the backend holding the accounts
            (:meth:`~sessionauth.backends.Backend.factor_store`), not of a session store that
            may lose its keys, which would let every account in with its password alone (see
            :mod:`sessionauth.stores.factors`).
        cipher: Encrypts TOTP secrets at rest
            (:meth:`~sessionauth.auth.totp.TotpCipher.from_keyring`).
        issuer: The service's name in authenticator apps.
        clock: The time source deciding TOTP steps.

    Attributes:
        store: The factor store.
    """

    def __init__(
        self,
        *,
        store: FactorStore,
        cipher: TotpCipher,
        issuer: str = DEFAULT_ISSUER,
        clock: Clock = system_clock,
    ):
        self.store = store
        self._cipher = cipher
        self._issuer = issuer
        self._clock = clock

    async def methods(self, user_id: str) -> list[Literal["totp", "recovery", "passkey"]]:
        """Return the second factors ``user_id`` can sign in with (none: a password suffices)."""
        found: list[Literal["totp", "recovery", "passkey"]] = []
        totp = await self.store.get_totp(user_id)
        if totp is not None and totp.confirmed:
            found.append("totp")
            if await self.store.count_recovery_codes(user_id):
                found.append("recovery")
        if await self.store.list_passkeys(user_id):
            found.append("passkey")
        return found

    async def totp_enabled(self, user_id: str) -> bool:
        """Whether ``user_id`` has a confirmed TOTP factor."""
        totp = await self.store.get_totp(user_id)
        return totp is not None and totp.confirmed

    async def start_totp(self, user_id: str, account: str) -> TotpSetup:
        """Store a new pending secret for ``user_id`` and return it (replacing a pending one).

        Args:
            user_id: Whose factor.
            account: The name the app shows (the user's email).

        Raises:
            FactorConflict: If TOTP is enabled already (disabling it takes a code or a
                recovery code first).
        """
        secret = new_secret()
        if not await self.store.begin_totp(user_id, self._cipher.encrypt(user_id, secret)):
            raise FactorConflict("two-factor authentication is already enabled")
        return TotpSetup(secret, otpauth_url(secret, account=account, issuer=self._issuer))

    async def pending_totp(self, user_id: str, account: str) -> TotpSetup | None:
        """Return the setup :meth:`start_totp` stored and no code confirmed yet, if any.

        ``None`` without one, once TOTP is enabled, or if its secret was sealed under a key
        no longer in the keyring (a new setup is then needed).
        """
        totp = await self.store.get_totp(user_id)
        if totp is None or totp.confirmed:
            return None
        secret = self._cipher.decrypt(user_id, totp.secret)
        if secret is None:
            return None
        return TotpSetup(secret, otpauth_url(secret, account=account, issuer=self._issuer))

    async def confirm_totp(self, user_id: str, code: str) -> list[str]:
        """Enable the pending TOTP factor with its first code; return new recovery codes.

        The codes replace any earlier ones; only their hashes are stored, so this is the one
        time they can be shown.

        Raises:
            FactorConflict: Without a pending setup (none, or enabled already).
            InvalidCode: If ``code`` is not a current code of the pending secret.
        """
        totp = await self.store.get_totp(user_id)
        if totp is None or totp.confirmed:
            raise FactorConflict("no two-factor setup is pending")
        await self._accept(user_id, totp.secret, code, confirm=True)
        codes = recovery.new_codes()
        await self.store.set_recovery_codes(
            user_id, [hashed for c in codes if (hashed := recovery.hash_code(user_id, c))]
        )
        return codes

    async def verify_totp(self, user_id: str, code: str) -> None:
        """Accept a code of the enabled TOTP factor, once.

        Raises:
            InvalidCode: If TOTP is not enabled, or the code is wrong, outside the drift
                window, or of a step already accepted (replayed, even concurrently).
        """
        totp = await self.store.get_totp(user_id)
        if totp is None or not totp.confirmed:
            raise InvalidCode(_INVALID)
        await self._accept(user_id, totp.secret, code, confirm=False)

    async def disable_totp(
        self, user_id: str, code: str | None = None, *, recovery_code: str | None = None
    ) -> None:
        """Remove the TOTP factor and the recovery codes, given a current code or a recovery code.

        A recovery code is consumed first (:meth:`use_recovery_code`: one atomic delete), so of
        two disables sending the same code only one gets past it. The rest of the set goes
        with the factor: recovery codes stand in for TOTP and mean nothing without it.

        Raises:
            InvalidCode: Unless exactly one of ``code`` and ``recovery_code`` is given; for a
                code refused as by :meth:`verify_totp`; for a recovery code malformed, unknown
                or used already.
            FactorConflict: If TOTP is not enabled.
        """
        if (code is None) == (recovery_code is None):
            raise InvalidCode(_INVALID)
        if not await self.totp_enabled(user_id):
            raise FactorConflict("two-factor authentication is not enabled")
        if code is not None:
            await self.verify_totp(user_id, code)
        else:
            assert recovery_code is not None  # noqa: S101 - exactly one of the two, checked above
            await self.use_recovery_code(user_id, recovery_code)
        await self.reset_totp(user_id)

    async def use_recovery_code(self, user_id: str, code: str) -> int:
        """Consume one recovery code (single use, also concurrently); return how many are left.

        Raises:
            InvalidCode: If the code is malformed, unknown or used already.
        """
        hashed = recovery.hash_code(user_id, code)
        # Recovery codes stand in for TOTP: with TOTP off they are no factor, even if a renewal
        # racing the disable left some behind.
        if hashed is None or not await self.totp_enabled(user_id):
            raise InvalidCode(_INVALID)
        if not await self.store.consume_recovery_code(user_id, hashed):
            raise InvalidCode(_INVALID)
        return await self.store.count_recovery_codes(user_id)

    async def new_recovery_codes(self, user_id: str) -> list[str]:
        """Replace the recovery codes of a user with TOTP enabled; return the new ones.

        Raises:
            FactorConflict: If TOTP is not enabled.
        """
        if not await self.totp_enabled(user_id):
            raise FactorConflict("two-factor authentication is not enabled")
        codes = recovery.new_codes()
        await self.store.set_recovery_codes(
            user_id, [hashed for c in codes if (hashed := recovery.hash_code(user_id, c))]
        )
        if not await self.totp_enabled(user_id):
            # A disable ran between the check and the write: the codes go with the factor.
            await self.store.set_recovery_codes(user_id, [])
            raise FactorConflict("two-factor authentication is not enabled")
        return codes

    async def reset_totp(self, user_id: str) -> None:
        """Remove TOTP and its recovery codes, without a code (a disable's last step, or an undo).

        Codes first: a failure between the writes leaves TOTP on without codes (still a second
        factor, and new codes can be made), never codes that outlive their factor. And codes
        last, again: a renewal (:meth:`new_recovery_codes`) that wrote its set between the two
        finds TOTP still on when it checks, so this clear is what removes its codes; one that
        writes later finds TOTP off and clears them itself.
        """
        await self.store.set_recovery_codes(user_id, [])
        await self.store.delete_totp(user_id)
        await self.store.set_recovery_codes(user_id, [])

    async def reset(self, user_id: str) -> None:
        """Remove every factor of ``user_id`` (an administrator's reset)."""
        await self.store.reset(user_id)

    async def reseal_all(self, *, dry_run: bool = False) -> ResealReport:
        """Move every TOTP secret sealed under an older key of the keyring to the newest one.

        After a rotation (a new secret prepended to the keyring), each secret also moves with
        its next accepted code; this moves the rest at once, so the old key can leave the
        keyring without locking anyone out. Each move is a compare-and-set of the secret
        read, so a setup, a disable or a code landing meanwhile is never undone. Safe to run
        again, and while the servers serve.

        Args:
            dry_run: Write nothing: ``moved`` counts the enabled secrets an older key opens,
                the ones dropping it would lock out (``sessionauth check`` asks). A setup
                under way is not counted: the next setup replaces it anyway.
        """
        moved = current = abandoned = changed = 0
        unreadable: list[str] = []
        for user_id in await self.store.totp_users():
            totp = await self.store.get_totp(user_id)
            if totp is None:
                changed += 1  # disabled since it was listed
                continue
            resealed = self._cipher.reseal(user_id, totp.secret)
            if resealed is not None and dry_run:
                moved += int(totp.confirmed)  # a setup under way: the next one replaces it
            elif resealed is not None:
                if await self.store.replace_totp_secret(user_id, totp.secret, resealed):
                    moved += 1
                else:
                    changed += 1
            elif self._cipher.decrypt(user_id, totp.secret) is not None:
                current += 1
            elif totp.confirmed:
                unreadable.append(user_id)
            else:
                abandoned += 1
        return ResealReport(
            moved=moved,
            current=current,
            unreadable=tuple(unreadable),
            abandoned=abandoned,
            changed=changed,
        )

    async def _accept(self, user_id: str, sealed: bytes, code: str, *, confirm: bool) -> None:
        secret = self._cipher.decrypt(user_id, sealed)
        if secret is None:
            # Encrypted under a key no longer in the keyring: no code can match.
            raise InvalidCode(_INVALID)
        step = matching_step(secret, code, self._clock())
        if step is None:
            raise InvalidCode(_INVALID)
        for _ in range(_RESEALED_TRIES):
            # Sealed under an older key: the accepted step also moves it to the newest one.
            reseal = self._cipher.reseal(user_id, sealed)
            if await self.store.accept_totp_step(
                user_id, sealed, step, confirm=confirm, reseal=reseal
            ):
                return
            # Refused: the step was taken (a replay), the factor changed, or the same secret
            # was sealed again meanwhile (another code's move to the newest key, reseal-mfa),
            # which changes the bytes the compare-and-set compares. Only the last is tried
            # again, against the new bytes, with the same step: still accepted only once.
            totp = await self.store.get_totp(user_id)
            if (
                totp is None
                or totp.secret == sealed
                or self._cipher.decrypt(user_id, totp.secret) != secret
            ):
                break
            sealed = totp.secret
        raise InvalidCode(_INVALID)
