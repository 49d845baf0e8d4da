"""Session tokens, their signed cookie form, and their hashed storage form.

A session token is 32 bytes from :mod:`secrets` (256 bits), written as 43 characters of
unpadded base64url. The cookie carries the token followed by a MAC of it::

    <token: 43 chars>.<HMAC-SHA256(cookie key, token) truncated to 128 bits: 22 chars>

The MAC lets the middleware reject forged, truncated or guessed cookies without asking the store
(a flood of random cookies costs CPU, never a database query). The store never sees the token:
records are keyed by ``storage_id(token)``, its SHA-256. A dump of Redis or of the database
therefore yields no usable cookie, and the storage id doubles as the *handle* shown when listing
a user's sessions: it can name (and revoke) a session but cannot be presented as one.

The :class:`Keyring` holds the server secrets. The first key signs; every key verifies, so keys
rotate by prepending a new one and dropping the oldest later, without logging anyone out.
Purpose-specific subkeys are derived with HMAC so that a cookie MAC can never be replayed as a
CSRF token or the other way round.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
from collections.abc import Iterable

from sessionauth.errors import ConfigurationError

__all__ = ["COOKIE_VALUE_LENGTH", "Keyring", "new_token", "storage_id"]

TOKEN_BYTES = 32
TOKEN_LENGTH = 43  # len(base64url(32 bytes)) without padding
MAC_BYTES = 16
MAC_LENGTH = 22  # len(base64url(16 bytes)) without padding
COOKIE_VALUE_LENGTH = TOKEN_LENGTH + 1 + MAC_LENGTH
MIN_KEY_BYTES = 32

_BASE64URL = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


def new_token() -> str:
    """Return a fresh session token: 256 bits from the OS CSPRNG, base64url without padding."""
    return secrets.token_urlsafe(TOKEN_BYTES)


def storage_id(token: str) -> str:
    """Return the id a store keeps for ``token``: its SHA-256, base64url without padding.

    The token has 256 bits of entropy, so an unkeyed hash is preimage-resistant on its own and
    stays valid across secret rotations.
    """
    digest = hashlib.sha256(token.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


class Keyring:
    """Server secrets: the first key is current, all keys verify.

    Args:
        keys: Secrets, newest first. Each must be at least 32 bytes (a ``str`` is UTF-8
            encoded). Generate one with ``sessionauth secret`` or
            ``python -c "import secrets; print(secrets.token_urlsafe(48))"``.

    Raises:
        ConfigurationError: If there is no key, or a key is too short to resist guessing.
    """

    __slots__ = ("_cookie_keys", "_keys")

    def __init__(self, keys: Iterable[str | bytes]):
        raw = [k.encode() if isinstance(k, str) else bytes(k) for k in keys]
        if not raw:
            raise ConfigurationError("the keyring needs at least one secret key")
        for key in raw:
            if len(key) < MIN_KEY_BYTES:
                raise ConfigurationError(
                    f"secret keys must be at least {MIN_KEY_BYTES} bytes; generate one with "
                    "`python -c 'import secrets; print(secrets.token_urlsafe(48))'`"
                )
        self._keys = tuple(raw)
        self._cookie_keys = tuple(self._derive(key, b"cookie") for key in raw)

    @classmethod
    def from_string(cls, value: str) -> Keyring:
        """Build a keyring from a comma-separated list, as in ``SESSIONAUTH_SECRET``."""
        return cls(part.strip() for part in value.split(",") if part.strip())

    @classmethod
    def generate(cls) -> Keyring:
        """Return a keyring with one random key (tests and throwaway development servers)."""
        return cls([secrets.token_bytes(48)])

    @staticmethod
    def _derive(key: bytes, purpose: bytes) -> bytes:
        return hmac.new(key, b"sessionauth/" + purpose, hashlib.sha256).digest()

    def subkeys(self, purpose: str) -> tuple[bytes, ...]:
        """Return the keys for ``purpose`` (current first), independent of every other purpose."""
        return tuple(self._derive(key, purpose.encode()) for key in self._keys)

    def sign(self, token: str) -> str:
        """Return the cookie value for ``token``, MACed with the current key."""
        mac = hmac.new(self._cookie_keys[0], token.encode("ascii"), hashlib.sha256).digest()
        return f"{token}.{_b64(mac[:MAC_BYTES])}"

    def unsign(self, value: str) -> str | None:
        """Return the token inside a cookie value, or ``None`` if it is malformed or forged.

        Checks the exact shape first (length, alphabet, separator), so oversized or odd input
        costs no hashing, then compares the MAC in constant time against every key.
        """
        if len(value) != COOKIE_VALUE_LENGTH or value[TOKEN_LENGTH] != ".":
            return None
        raw = value.encode("ascii", "replace")
        if not _BASE64URL.issuperset(raw[:TOKEN_LENGTH]) or not _BASE64URL.issuperset(
            raw[TOKEN_LENGTH + 1 :]
        ):
            return None
        try:
            given = base64.urlsafe_b64decode(raw[TOKEN_LENGTH + 1 :] + b"==")
        except binascii.Error:  # pragma: no cover - the alphabet check above excludes it
            return None
        token = raw[:TOKEN_LENGTH]
        for key in self._cookie_keys:
            if hmac.compare_digest(
                hmac.new(key, token, hashlib.sha256).digest()[:MAC_BYTES], given
            ):
                return token.decode("ascii")
        return None
