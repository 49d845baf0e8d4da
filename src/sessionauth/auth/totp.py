"""TOTP (RFC 6238): secrets, ``otpauth://`` URLs, code checks, and the secrets' encryption.

Codes are 6 digits over 30-second steps of HMAC-SHA1 (what every authenticator app does by
default). A code is checked against the current step and one step either side (clock drift of
up to 30 s), and :func:`matching_step` says *which* step matched: the caller records it with
the store's compare-and-set (:meth:`~sessionauth.stores.factors.FactorStore.accept_totp_step`),
which refuses that step and every earlier one afterwards, so a code works once even when two
requests carry it at the same moment.

Secrets are encrypted at rest with AES-256-GCM under a key derived from the server's secret
keyring (:meth:`~sessionauth.tokens.Keyring.derived_keys`), bound to the user's id as
associated data: a database dump alone yields no secret, and a secret copied onto another
account does not decrypt. Rotating ``SESSIONAUTH_SECRET`` keeps older keys for decryption,
and each secret moves to the newest key with its next accepted code (stored in the same
compare-and-set as the step, :meth:`TotpCipher.reseal`); dropping an old key for good makes
only the secrets not used since the rotation unreadable (their users then need ``users
reset-mfa``). Needs the ``mfa`` extra (pyotp, cryptography).
"""

from __future__ import annotations

import hmac
import os
import re
from collections.abc import Sequence

try:
    import pyotp
    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM
except ImportError as exc:
    raise ImportError(
        f"TOTP needs the 'mfa' extra: pip install 'sessionauth[mfa]' ({exc})"
    ) from exc

from sessionauth.errors import ConfigurationError
from sessionauth.tokens import Keyring

__all__ = [
    "DIGITS",
    "DRIFT_STEPS",
    "STEP_SECONDS",
    "TotpCipher",
    "matching_step",
    "new_secret",
    "otpauth_url",
]

STEP_SECONDS = 30
"""Seconds per time step (RFC 6238's default, which authenticator apps assume)."""

DIGITS = 6
"""Digits per code."""

DRIFT_STEPS = 1
"""Steps accepted either side of the current one: up to 30 s of clock drift."""

_VERSION = b"\x01"  # the ciphertext format: version, 12-byte nonce, AES-GCM output
_NONCE = 12
_CODE = re.compile(r"[0-9]+")


def new_secret() -> str:
    """Return a fresh secret: 160 random bits (RFC 4226's recommendation), base32."""
    return pyotp.random_base32(32)


def otpauth_url(secret: str, *, account: str, issuer: str) -> str:
    """Return the ``otpauth://totp/`` URL (for a QR code) of ``secret``.

    Args:
        secret: The base32 secret.
        account: What the app shows under the issuer (the user's email).
        issuer: The service's name, shown by the app and used to group entries.
    """
    return pyotp.TOTP(secret, digits=DIGITS, interval=STEP_SECONDS).provisioning_uri(
        name=account, issuer_name=issuer
    )


def _normalize(code: str) -> str | None:
    """The digits of ``code`` without spaces (``"123 456"`` as apps show it), or ``None``."""
    cleaned = "".join(code.split())
    return cleaned if _CODE.fullmatch(cleaned) else None


def matching_step(secret: str, code: str, now: float, *, digits: int = DIGITS) -> int | None:
    """Return the time step whose code ``code`` is, within the drift window, or ``None``.

    Every candidate step is computed and compared in constant time, so the answer's timing
    says nothing about which step (or how many digits) matched.

    Args:
        secret: The base32 secret.
        code: What the user typed; spaces are ignored.
        now: The current time (POSIX seconds) from the caller's clock.
        digits: The code's length (6; RFC 6238's test vectors use 8).
    """
    typed = _normalize(code)
    if typed is None or len(typed) != digits:
        return None
    totp = pyotp.TOTP(secret, digits=digits, interval=STEP_SECONDS)
    current = int(now // STEP_SECONDS)
    found = None
    for step in range(current - DRIFT_STEPS, current + DRIFT_STEPS + 1):
        if step >= 0 and hmac.compare_digest(totp.generate_otp(step), typed) and found is None:
            found = step
    return found


class TotpCipher:
    """Encrypts TOTP secrets for the store and decrypts them, with AES-256-GCM.

    Args:
        keys: 32-byte keys, newest first: the first encrypts, all decrypt.

    Raises:
        ConfigurationError: Without keys, or with a key that is not 32 bytes.
    """

    __slots__ = ("_keys",)

    def __init__(self, keys: Sequence[bytes]):
        if not keys or any(len(key) != 32 for key in keys):
            raise ConfigurationError("the TOTP cipher needs 32-byte keys, newest first")
        self._keys = tuple(AESGCM(key) for key in keys)

    @classmethod
    def from_keyring(cls, keyring: Keyring) -> TotpCipher:
        """Return the cipher under keys derived from the server's keyring."""
        return cls(keyring.derived_keys("totp-secret"))

    def encrypt(self, user_id: str, secret: str) -> bytes:
        """Return ``secret`` encrypted for ``user_id`` under the newest key."""
        nonce = os.urandom(_NONCE)
        return _VERSION + nonce + self._keys[0].encrypt(nonce, secret.encode(), _bound(user_id))

    def decrypt(self, user_id: str, blob: bytes) -> str | None:
        """Return the secret in ``blob``, or ``None`` if no key opens it for ``user_id``."""
        opened = self._open(user_id, blob)
        return None if opened is None else opened[0]

    def reseal(self, user_id: str, blob: bytes) -> bytes | None:
        """Return ``blob``'s secret encrypted under the newest key, if an older key sealed it.

        ``None`` when the newest key sealed it already, or no key opens it. Stored at the
        secret's next accepted code, so that keys can leave the keyring once every secret in
        use has moved on.
        """
        opened = self._open(user_id, blob)
        if opened is None or opened[1] == 0:
            return None
        return self.encrypt(user_id, opened[0])

    def _open(self, user_id: str, blob: bytes) -> tuple[str, int] | None:
        """The secret in ``blob`` and the position of the key that opened it."""
        if blob[:1] != _VERSION or len(blob) < 1 + _NONCE + 16:
            return None
        nonce, sealed = blob[1 : 1 + _NONCE], blob[1 + _NONCE :]
        for position, key in enumerate(self._keys):
            try:
                return key.decrypt(nonce, sealed, _bound(user_id)).decode(), position
            except InvalidTag:
                continue
        return None

    def __repr__(self) -> str:
        return f"TotpCipher(<{len(self._keys)} keys>)"


def _bound(user_id: str) -> bytes:
    return b"sessionauth-totp:" + user_id.encode()
