"""Session tokens, their signed cookie form, and their hashed storage form.

A session token is 32 bytes from :mod:`secrets` (256 bits), written as 43 characters of
unpadded base64url. The token of a logged-in session is prefixed with the user's *group*: 11
characters naming a hash of the user id (:func:`user_group`), so that a store can keep all of a
user's sessions under one key and find them from the token alone (the Redis store does: one
key per user instead of a key per session plus an index). The cookie carries the token followed
by a MAC of it::

    [<group: 11 chars>]<random: 43 chars>.<HMAC-SHA256(cookie key, token), 128 bits: 22 chars>

The group hides nothing from the cookie's holder (a guessable user id can be found from it); it
adds nothing to guessing a session, which still needs the 256 random bits.

The MAC lets the middleware reject forged, truncated or guessed cookies without asking the store
(a flood of random cookies costs CPU, never a database query). The store never sees the token:
records are keyed by ``storage_id(token)``, its SHA-256 (after the group, for a logged-in
session: ``<group>.<sha256>``). A dump of Redis or of the database
therefore yields no usable cookie, and the storage id doubles as the *handle* shown when listing
a user's sessions: it can name (and revoke) a session but cannot be presented as one.

The :class:`Keyring` holds the server secrets. The first key signs; every key verifies, so keys
rotate by prepending a new one and dropping the oldest later, without logging anyone out.
Purpose-specific subkeys are derived with HMAC so that a cookie MAC can never be replayed as a
CSRF token or the other way round.
"""

from __future__ import annotations

import binascii
import hashlib
import hmac
import secrets
from collections.abc import Iterable

from sessionauth.errors import ConfigurationError
from sessionauth.hmac_sha256 import HmacSha256, sha256

__all__ = [
    "COOKIE_VALUE_LENGTHS",
    "Keyring",
    "b64url",
    "csrf_seed",
    "group_of",
    "new_token",
    "storage_id",
    "user_group",
]

TOKEN_BYTES = 32
RANDOM_LENGTH = 43  # len(base64url(32 bytes)) without padding
GROUP_BYTES = 8
GROUP_LENGTH = 11  # len(base64url(8 bytes)) without padding
TOKEN_LENGTHS = (RANDOM_LENGTH, GROUP_LENGTH + RANDOM_LENGTH)
DIGEST_BYTES = 16
MAC_BYTES = 16
MAC_LENGTH = 22  # len(base64url(16 bytes)) without padding
COOKIE_VALUE_LENGTHS = frozenset(length + 1 + MAC_LENGTH for length in TOKEN_LENGTHS)
MIN_KEY_BYTES = 32


_URLSAFE = bytes.maketrans(b"+/", b"-_")


def _b64_bytes(raw: bytes) -> bytes:
    """base64url of ``raw``, padding kept (``base64.urlsafe_b64encode``, a third faster)."""
    return binascii.b2a_base64(raw, newline=False).translate(_URLSAFE)


def b64url(raw: bytes) -> str:
    """base64url of ``raw`` without padding: how tokens, MACs and storage ids are written."""
    return _b64_bytes(raw).rstrip(b"=").decode("ascii")


def user_group(user_id: str) -> str:
    """Return the 11-character group of ``user_id``: a 64-bit hash, base64url.

    Deterministic, so a store can find every session of a user from the user id; two users may
    share a group (stores filter by the record's user id), which costs nothing but a few bytes.
    """
    digest = hashlib.sha256(b"sessionauth/user-group/" + user_id.encode()).digest()
    return b64url(digest[:GROUP_BYTES])


def csrf_seed(token: str) -> str:
    """Return the CSRF seed of a session first stored under ``token`` (128 bits, base64url).

    A one-way hash of the token, apart from the storage id's (its own prefix): the record
    keeps it through renewals (:data:`~sessionauth.record.CSRF_SEED`), and it reveals nothing
    of the token, nor is it a secret itself (the CSRF secret is an HMAC of it under the
    server's key).
    """
    return b64url(hashlib.sha256(b"sessionauth/csrf-seed/" + token.encode()).digest()[:16])


def new_token(user_id: str | None = None) -> str:
    """Return a fresh session token: 256 bits from the OS CSPRNG, base64url without padding.

    Args:
        user_id: The user a logged-in session belongs to; the token then starts with the
            user's group (see :func:`user_group`).
    """
    random_part = secrets.token_urlsafe(TOKEN_BYTES)
    return random_part if user_id is None else user_group(user_id) + random_part


def storage_id(token: str) -> str:
    """Return the id a store keeps for ``token``: a hash of it, base64url without padding.

    For a grouped token, the id is ``<group>.<digest of the whole token>``. The digest is
    SHA-256 truncated to 128 bits: the token has 256 random bits, so finding a token for a
    stored id still takes 2**128 hashes, and collisions between live sessions stay out of reach
    (2**64 sessions), while every stored id and every Redis key is 21 bytes shorter. An unkeyed
    hash stays valid across secret rotations.
    """
    # b64url inlined: every authenticated request computes this once.
    digest = (
        binascii.b2a_base64(sha256(token.encode("ascii")).digest()[:DIGEST_BYTES], newline=False)
        .translate(_URLSAFE)
        .rstrip(b"=")
        .decode("ascii")
    )
    if len(token) == RANDOM_LENGTH:
        return digest
    return f"{token[:GROUP_LENGTH]}.{digest}"


def group_of(sid: str) -> str | None:
    """Return the user group a storage id names, or ``None`` for an anonymous session's id."""
    group, dot, _ = sid.partition(".")
    return group if dot else None


class Keyring:
    """Server secrets: the first key is current, all keys verify.

    Args:
        keys: Secrets, newest first. Each must be at least 32 bytes (a ``str`` is UTF-8
            encoded). Generate one with ``sessionauth secret`` or
            ``python -c "import secrets; print(secrets.token_urlsafe(48))"``.

    Raises:
        ConfigurationError: If there is no key, or a key is too short to resist guessing.
    """

    __slots__ = ("_cookie_macs", "_keys")

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
        self._cookie_macs = tuple(HmacSha256(self._derive(key, b"cookie")) for key in raw)

    @classmethod
    def from_string(cls, value: str) -> Keyring:
        """Build a keyring from a comma-separated list, as in ``SESSIONAUTH_SECRET``."""
        return cls(part.strip() for part in value.split(",") if part.strip())

    @classmethod
    def generate(cls) -> Keyring:
        """Return a keyring with one random key (tests and throwaway development servers)."""
        return cls([secrets.token_bytes(48)])

    def derived_keys(self, purpose: str) -> tuple[bytes, ...]:
        """Return a 32-byte key per secret for ``purpose``, newest first (HMAC-SHA256).

        Each purpose gets keys of its own, so a key used for one thing (encrypting TOTP
        secrets) reveals nothing about the keys of another (cookie signatures).
        """
        return tuple(self._derive(key, purpose.encode()) for key in self._keys)

    @staticmethod
    def _derive(key: bytes, purpose: bytes) -> bytes:
        return hmac.new(key, b"sessionauth/" + purpose, hashlib.sha256).digest()

    def subkeys(self, purpose: str) -> tuple[bytes, ...]:
        """Return the keys for ``purpose`` (current first), independent of every other purpose."""
        return tuple(self._derive(key, purpose.encode()) for key in self._keys)

    def sign(self, token: str) -> str:
        """Return the cookie value for ``token``, MACed with the current key."""
        mac = self._cookie_macs[0].digest(token.encode("ascii"))
        return f"{token}.{b64url(mac[:MAC_BYTES])}"

    def unsign(self, value: str) -> str | None:
        """Return the token inside a cookie value, or ``None`` if it is malformed or forged.

        Checks the exact shape first (length, alphabet, separator), so oversized or odd input
        costs no hashing, then compares the MAC in constant time against every key.
        """
        if len(value) not in COOKIE_VALUE_LENGTHS:
            return None
        length = len(value) - 1 - MAC_LENGTH
        if value[length] != ".":
            return None
        try:
            raw = value.encode("ascii")
        except UnicodeEncodeError:
            return None
        given, token = raw[length + 1 :], raw[:length]
        for mac in self._cookie_macs:
            # Compared in its encoded form: base64 leaves spare bits in the last character, and
            # decoding first would accept several spellings of one MAC. Only a token we MACed
            # passes, so its alphabet needs no separate check.
            expected = binascii.b2a_base64(mac.digest(token)[:MAC_BYTES], newline=False)
            if hmac.compare_digest(expected[:MAC_LENGTH].translate(_URLSAFE), given):
                return token.decode("ascii")
        return None
