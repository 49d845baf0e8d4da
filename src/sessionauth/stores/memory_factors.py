"""Second factors in dicts of one process (``memory://``), for tests and development.

Each method runs without awaiting in between, so on one event loop every operation is atomic,
the compare-and-sets of :class:`~sessionauth.stores.factors.FactorStore` included.
"""

from __future__ import annotations

from collections.abc import Sequence

from msgspec.structs import replace as _replace

from sessionauth.stores.factors import (
    FactorStore,
    Passkey,
    PasskeyUse,
    TotpRecord,
    sign_count_grows,
)

__all__ = ["MemoryFactorStore"]


class MemoryFactorStore(FactorStore):
    """Keeps factors in dicts; nothing survives the process."""

    def __init__(self) -> None:
        self._totp: dict[str, TotpRecord] = {}
        self._codes: dict[str, set[str]] = {}
        self._passkeys: dict[str, dict[bytes, Passkey]] = {}

    async def begin_totp(self, user_id: str, secret: bytes) -> bool:
        """Store an unconfirmed secret unless a confirmed one exists."""
        current = self._totp.get(user_id)
        if current is not None and current.confirmed:
            return False
        self._totp[user_id] = TotpRecord(secret=secret, confirmed=False)
        return True

    async def get_totp(self, user_id: str) -> TotpRecord | None:
        """Return the user's TOTP factor, or ``None``."""
        return self._totp.get(user_id)

    async def accept_totp_step(
        self,
        user_id: str,
        secret: bytes,
        step: int,
        *,
        confirm: bool = False,
        reseal: bytes | None = None,
    ) -> bool:
        """Compare-and-set the last accepted step (see the contract)."""
        current = self._totp.get(user_id)
        if (
            current is None
            or current.secret != secret
            or current.confirmed == confirm
            or step <= current.last_step
        ):
            return False
        self._totp[user_id] = TotpRecord(secret=reseal or secret, confirmed=True, last_step=step)
        return True

    async def delete_totp(self, user_id: str) -> bool:
        """Delete the TOTP factor; return whether there was one."""
        return self._totp.pop(user_id, None) is not None

    async def totp_users(self) -> list[str]:
        """Return the users with a TOTP factor."""
        return list(self._totp)

    async def replace_totp_secret(self, user_id: str, secret: bytes, new: bytes) -> bool:
        """Compare-and-set the secret, keeping the factor's state."""
        current = self._totp.get(user_id)
        if current is None or current.secret != secret:
            return False
        self._totp[user_id] = TotpRecord(
            secret=new, confirmed=current.confirmed, last_step=current.last_step
        )
        return True

    async def set_recovery_codes(self, user_id: str, hashes: Sequence[str]) -> None:
        """Replace the user's recovery codes."""
        self._codes[user_id] = set(hashes)

    async def consume_recovery_code(self, user_id: str, code_hash: str) -> bool:
        """Remove one code; True only for the call that removed it."""
        codes = self._codes.get(user_id, set())
        if code_hash not in codes:
            return False
        codes.discard(code_hash)
        return True

    async def count_recovery_codes(self, user_id: str) -> int:
        """Return how many codes are left."""
        return len(self._codes.get(user_id, ()))

    async def add_passkey(self, user_id: str, passkey: Passkey) -> bool:
        """Register a passkey unless the user has one with its id."""
        keys = self._passkeys.setdefault(user_id, {})
        if passkey.credential_id in keys:
            return False
        keys[passkey.credential_id] = passkey
        return True

    async def list_passkeys(self, user_id: str) -> list[Passkey]:
        """Return the user's passkeys, oldest first."""
        return sorted(self._passkeys.get(user_id, {}).values(), key=lambda key: key.created)

    async def get_passkey(self, user_id: str, credential_id: bytes) -> Passkey | None:
        """Return one passkey, or ``None``."""
        return self._passkeys.get(user_id, {}).get(credential_id)

    async def rename_passkey(self, user_id: str, credential_id: bytes, name: str) -> bool:
        """Rename one passkey if it exists."""
        keys = self._passkeys.get(user_id, {})
        if credential_id not in keys:
            return False
        keys[credential_id] = _replace(keys[credential_id], name=name)
        return True

    async def delete_passkey(self, user_id: str, credential_id: bytes) -> bool:
        """Delete one passkey if it exists."""
        return self._passkeys.get(user_id, {}).pop(credential_id, None) is not None

    async def use_passkey(
        self, user_id: str, credential_id: bytes, *, sign_count: int, backed_up: bool, now: float
    ) -> PasskeyUse:
        """Compare-and-set the sign count (see the contract)."""
        keys = self._passkeys.get(user_id, {})
        current = keys.get(credential_id)
        if current is None:
            return PasskeyUse.UNKNOWN
        if not sign_count_grows(current.sign_count, sign_count):
            return PasskeyUse.COUNTER_REGRESSED
        keys[credential_id] = _replace(
            current, sign_count=sign_count, backed_up=backed_up, last_used=now
        )
        return PasskeyUse.ACCEPTED

    async def reset(self, user_id: str) -> None:
        """Forget every factor of the user."""
        self._totp.pop(user_id, None)
        self._codes.pop(user_id, None)
        self._passkeys.pop(user_id, None)
