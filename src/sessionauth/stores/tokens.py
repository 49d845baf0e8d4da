"""Single-use tokens at rest: the record, and the contract every token store keeps.

A token (an email-verification or password-reset link) is issued and consumed by
:mod:`sessionauth.auth.single_use`; the store sees only the SHA-256 digest of the token, never
the token itself, so a dump of the database or of Redis lets nobody verify an address or reset
a password. Token stores live in the session store's backend
(:meth:`sessionauth.backends.Backend.token_store`); :class:`MemoryTokenStore` is the
in-process one. The contract, checked by ``tests/contract/test_token_store.py`` on every
backend:

* :meth:`TokenStore.take` removes and returns a record in one atomic step: of any number of
  concurrent takes of one key, from any number of workers, exactly one gets the record.
* A record whose ``expires`` is at or before the store's clock is no record (the store's
  clock decides, never the database server's), and a take for another user leaves the record
  in place.
* Failures to reach the backend raise :class:`~sessionauth.errors.StoreUnavailable`.
"""

from __future__ import annotations

import abc
from typing import Final, Self

import msgspec

from sessionauth.policy import Clock, system_clock

__all__ = ["DEFAULT_PREFIX", "DEFAULT_TABLE", "MemoryTokenStore", "TokenRecord", "TokenStore"]

DEFAULT_TABLE: Final = "sessionauth_tokens"
"""The table SQL token stores use unless told otherwise."""
DEFAULT_PREFIX: Final = "sessionauth:tokens:"
"""The key prefix Redis token stores use unless told otherwise."""


class TokenRecord(msgspec.Struct, frozen=True, kw_only=True):
    """What a single-use token stands for, stored under the digest of the token.

    Attributes:
        user_id: The user the token was issued to (``str(user.id)``).
        purpose: What it may be used for (``"verify-email"``, ``"reset-password"``…).
        binding: A fingerprint of the account state it was issued for (see
            :func:`sessionauth.auth.single_use.account_binding`); a token whose binding is no
            longer the account's is dead.
        expires: POSIX seconds after which the token is no token.
        payload: Data the purpose needs (the new address of an email change), or ``None``.
    """

    user_id: str
    purpose: str
    binding: str
    expires: float
    payload: str | None = None


class TokenStore(abc.ABC):
    """Keeps token records under their keys (digests) until taken or expired."""

    @abc.abstractmethod
    async def add(self, key: str, record: TokenRecord) -> None:
        """Store ``record`` under ``key`` until ``record.expires``.

        Raises:
            StoreUnavailable: If the backend failed or did not answer in time.
        """

    @abc.abstractmethod
    async def take(self, key: str, *, user_id: str | None = None) -> TokenRecord | None:
        """Remove and return the record under ``key``, atomically: one take wins.

        Args:
            key: The token's digest.
            user_id: Take the record only if it belongs to this user; a record of another
                user is left in place and ``None`` returned.

        Returns:
            The record, or ``None`` if there is none, it expired, or it is another user's.

        Raises:
            StoreUnavailable: If the backend failed or did not answer in time.
        """

    async def purge_expired(self, now: float | None = None) -> int:
        """Delete records expired at ``now`` (default: the clock's now); return how many.

        Expired records already count as missing: this only reclaims space. Backends that
        expire keys by themselves (Redis TTLs) return 0.
        """
        del now
        return 0

    async def aclose(self) -> None:
        """Release connections this store owns. The default owns none."""

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()


class MemoryTokenStore(TokenStore):
    """Token records in a dict of one process, for tests and development.

    Each operation runs without awaiting, so it is atomic on the event loop.

    Args:
        clock: The time source deciding expiry.
    """

    def __init__(self, clock: Clock = system_clock):
        self._clock = clock
        self._records: dict[str, TokenRecord] = {}

    async def add(self, key: str, record: TokenRecord) -> None:
        """Store ``record`` under ``key``."""
        self._records[key] = record

    async def take(self, key: str, *, user_id: str | None = None) -> TokenRecord | None:
        """Remove and return the live record under ``key`` (see :meth:`TokenStore.take`)."""
        record = self._records.get(key)
        if record is None or (user_id is not None and record.user_id != user_id):
            return None
        del self._records[key]
        return record if record.expires > self._clock() else None

    async def purge_expired(self, now: float | None = None) -> int:
        """Delete expired records; return how many."""
        cutoff = self._clock() if now is None else now
        expired = [key for key, record in self._records.items() if record.expires <= cutoff]
        for key in expired:
            del self._records[key]
        return len(expired)
