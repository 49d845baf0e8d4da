"""Single-use tokens for the links of account mail: verify an address, reset a password.

:class:`SingleUseTokens` issues a token for a user and a purpose and consumes it once:

* A token is 256 bits from :mod:`secrets`, base64url (43 characters). The token store keeps
  only the SHA-256 digest of the purpose and the token (:func:`token_key`), so a dump of the
  store is useless, and a token presented for another purpose finds nothing (and stays valid
  for its own).
* Each token is bound to its user, to the epoch of the user's principal, and to the account's
  address and password hash (:func:`account_binding`). Every password change, "sign out
  everywhere" and confirmed address change gives the principal a new epoch; the epoch only
  moves forward (a new random value each time), so an address changed A -> B -> A brings no
  old link back. The address and hash are there too so that an application changing either
  without :meth:`~sessionauth.auth.Authenticator.principal_changed` still kills the links. A
  disabled or deleted account's tokens are dead, and a principal lost meanwhile (an expired
  Redis key) comes back with a fresh epoch, so its tokens fail closed.
* Tokens expire (:data:`LIFETIMES`: 24 hours to verify an address, 30 minutes to reset a
  password), by the injected clock.
* Consuming takes the record atomically (:meth:`~sessionauth.stores.tokens.TokenStore.take`):
  of two concurrent uses, exactly one succeeds; a used token is gone.

Every way a token can be wrong (malformed, oversized, not a string, unknown, used, expired,
another purpose, another user, stale binding) gives the same ``None``, never an exception:
the caller answers one "invalid or expired link". Store outages still raise
:class:`~sessionauth.errors.StoreUnavailable` (a 503 at the edge). The reason is logged to
``sessionauth.security`` without the token.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import logging
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from sessionauth.policy import Clock, system_clock
from sessionauth.principal import Principal, new_epoch
from sessionauth.stores.base import SessionStore
from sessionauth.stores.tokens import TokenRecord, TokenStore
from sessionauth.stores.users import User, UserStore

__all__ = [
    "CHANGE_EMAIL",
    "LIFETIMES",
    "RESET_PASSWORD",
    "TOKEN_BYTES",
    "VERIFY_EMAIL",
    "Claim",
    "SingleUseTokens",
    "account_binding",
    "token_key",
]

logger = logging.getLogger("sessionauth.security")

VERIFY_EMAIL: Final = "verify-email"
"""Proves the account's address: sent after sign-up or on request."""
RESET_PASSWORD: Final = "reset-password"  # noqa: S105 - a purpose name, not a password
"""Sets a new password without the old one: sent by "forgot password"."""
CHANGE_EMAIL: Final = "change-email"
"""Proves a new address before it replaces the account's; the payload is the new address."""

LIFETIMES: Final[Mapping[str, float]] = {
    VERIFY_EMAIL: 24 * 3600.0,
    RESET_PASSWORD: 30 * 60.0,
    CHANGE_EMAIL: 24 * 3600.0,
}
"""Seconds a token of each purpose lives unless :meth:`SingleUseTokens.issue` is told."""

TOKEN_BYTES: Final = 32
"""Random bytes in a token: 256 bits."""
_TOKEN_LENGTH: Final = 43  # base64url of 32 bytes, without padding
_TOKEN_PATTERN: Final = re.compile(r"[A-Za-z0-9_-]{43}")
_PURPOSE_PATTERN: Final = re.compile(r"[a-z][a-z0-9-]{0,31}")
# Domain separation: these digests can never collide with session ids or other hashes.
_KEY_DOMAIN: Final = b"sessionauth single-use token\x00"
_BINDING_DOMAIN: Final = b"sessionauth account binding\x00"


def _check_purpose(purpose: str) -> str:
    if not _PURPOSE_PATTERN.fullmatch(purpose):
        raise ValueError(f"invalid token purpose {purpose!r}: lower-case letters, digits and -")
    return purpose


def token_key(raw: object, purpose: str) -> str | None:
    """Return the store key of a presented token, or ``None`` if it cannot be one of ours.

    Only a string of exactly 43 base64url characters decoding to 32 bytes is looked up: a
    huge, short, non-base64 or non-string value costs nothing and reaches no store.
    """
    if not isinstance(raw, str) or len(raw) != _TOKEN_LENGTH or not _TOKEN_PATTERN.fullmatch(raw):
        return None
    try:
        secret = base64.urlsafe_b64decode(raw + "=")
    except (binascii.Error, ValueError):
        return None
    # The last character carries 2 unused bits: only the canonical spelling is a token, so
    # one token has one key.
    if len(secret) != TOKEN_BYTES or base64.urlsafe_b64encode(secret).rstrip(b"=") != raw.encode():
        return None
    return hashlib.sha256(_KEY_DOMAIN + purpose.encode() + b"\x00" + secret).hexdigest()


def account_binding(epoch: str, user: User) -> str:
    """Return the fingerprint of the account state a token is issued for.

    It covers the epoch of the user's principal (which moves at every password change and
    confirmed address change), the address and the password hash. It reveals nothing usable:
    a truncated digest.
    """
    state = b"\x00".join((epoch.encode(), user.email.encode(), user.password_hash.encode()))
    digest = hashlib.sha256(_BINDING_DOMAIN + state).digest()
    return base64.urlsafe_b64encode(digest[:16]).rstrip(b"=").decode()


@dataclass(frozen=True, slots=True)
class Claim:
    """What a consumed token proved.

    Attributes:
        user: The account, as it is now (enabled, binding current).
        purpose: The purpose the token was issued and consumed for.
        payload: The data issued with it (the new address of an email change), or ``None``.
    """

    user: User
    purpose: str
    payload: str | None


class SingleUseTokens:
    """Issues and consumes single-use tokens (see the module docstring).

    Args:
        tokens: Where token digests live (the session store backend's
            :meth:`~sessionauth.backends.Backend.token_store`).
        users: The accounts tokens are bound to.
        principals: The session store holding each user's principal (whose epoch a token is
            bound to).
        clock: The time source deciding expiry (the token store's clock must be the same).
        lifetimes: Seconds a token of each purpose lives, over :data:`LIFETIMES`.

    Raises:
        ValueError: For a lifetime that is not positive.
    """

    def __init__(
        self,
        *,
        tokens: TokenStore,
        users: UserStore,
        principals: SessionStore,
        clock: Clock = system_clock,
        lifetimes: Mapping[str, float] | None = None,
    ):
        merged = {**LIFETIMES, **(lifetimes or {})}
        for purpose, seconds in merged.items():
            _check_purpose(purpose)
            if not seconds > 0:
                raise ValueError(f"the lifetime of {purpose!r} tokens must be positive")
        self._tokens = tokens
        self._users = users
        self._principals = principals
        self._clock = clock
        self._lifetimes = merged

    async def issue(
        self, user: User, purpose: str, *, ttl: float | None = None, payload: str | None = None
    ) -> str:
        """Store a new token for ``user`` and ``purpose``; return it (put it in the link).

        Args:
            user: The account, as just read from the user store.
            purpose: :data:`VERIFY_EMAIL`, :data:`RESET_PASSWORD`, :data:`CHANGE_EMAIL` or an
                application's own.
            ttl: Seconds the token lives; by default the purpose's lifetime, else 30 minutes.
            payload: Data to get back on consumption (the new address of an email change).

        Raises:
            ValueError: For a malformed purpose or a ttl that is not positive.
            StoreUnavailable: If the token store failed.
        """
        _check_purpose(purpose)
        seconds = self._lifetimes.get(purpose, LIFETIMES[RESET_PASSWORD]) if ttl is None else ttl
        if not seconds > 0:
            raise ValueError("a token's ttl must be positive")
        raw = secrets.token_urlsafe(TOKEN_BYTES)
        key = token_key(raw, purpose)
        assert key is not None  # noqa: S101 - a fresh token always parses
        record = TokenRecord(
            user_id=str(user.id),
            purpose=purpose,
            binding=account_binding(await self._epoch(user), user),
            expires=self._clock() + seconds,
            payload=payload,
        )
        await self._tokens.add(key, record)
        return raw

    async def consume(
        self, raw: object, purpose: str, *, user_id: int | None = None
    ) -> Claim | None:
        """Use a presented token once; return what it proves, or ``None`` if it proves nothing.

        Args:
            raw: The token as presented (anything: it is checked before any lookup).
            purpose: The purpose the caller serves; a token of another purpose is not found.
            user_id: The user the token must belong to (the signed-in user, where there is
                one); another user's token is not found, and left unused.

        Raises:
            StoreUnavailable: If the token store or the user store failed.
        """
        _check_purpose(purpose)
        key = token_key(raw, purpose)
        if key is None:
            return self._refused("malformed", purpose)
        record = await self._tokens.take(key, user_id=None if user_id is None else str(user_id))
        if record is None or record.purpose != purpose:
            return self._refused("unknown, used, expired or another user's", purpose)
        try:
            account_id = int(record.user_id)
        except ValueError:
            return self._refused("bound to no account", purpose)
        user = await self._users.get(account_id)
        if user is None or user.disabled:
            return self._refused("account deleted or disabled", purpose)
        principal = await self._principals.principal(record.user_id)
        if principal is None or not hmac.compare_digest(
            account_binding(principal.epoch, user), record.binding
        ):
            return self._refused("password or address changed since it was issued", purpose)
        return Claim(user=user, purpose=purpose, payload=record.payload)

    async def _epoch(self, user: User) -> str:
        """The epoch of the user's principal, installing one if the store holds none."""
        principal = await self._principals.principal(str(user.id))
        if principal is None:
            # The install contract: build it from a users read made after seeing it missing,
            # so a change racing this install either wrote its principal first or is seen here.
            account = await self._users.get(user.id) or user
            principal = await self._principals.install_principal(
                str(user.id),
                Principal(role=account.role, disabled=account.disabled, epoch=new_epoch()),
            )
        return principal.epoch

    @staticmethod
    def _refused(reason: str, purpose: str) -> None:
        # Never the token: the log must not hand anyone a usable link.
        logger.info("single-use token refused (%s): %s", purpose, reason)
