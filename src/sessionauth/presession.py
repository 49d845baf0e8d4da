"""The pre-session: CSRF tokens for clients without a session, with nothing stored.

A client without a stored session (an anonymous visitor, a script about to log in) may still
ask for a CSRF token. Binding it to a new session would store a record per asker, so every
crawler fetching ``/csrf-token`` or the login page would grow the store for a day. Instead the
token is bound to a *pre-session* cookie: a random nonce, MACed under the keyring with its issue
time, that lives two hours in the browser and nowhere else (``__Host-csrf`` when Secure, else
``csrf``; HttpOnly, with the session cookie's Secure and SameSite policy)::

    <nonce: 43 chars>.<issued: POSIX seconds>.<HMAC-SHA256(presession key, nonce.issued): 22 chars>

The token's secret is ``HMAC(csrf key, "pre-session:" + nonce)``: another site can neither read
the cookie nor plant one under the ``__Host-`` prefix, so it cannot produce a matching token.
Once the cookie is present, unsafe requests must carry a token bound to it (or to the session);
a client with neither cookie is judged by the origin layer alone, which keeps a cookieless
``POST /login`` working. A login clears the cookie: the session's own token takes over.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass

from sessionauth.tokens import Keyring

__all__ = ["MAX_AGE", "PreSession", "sign_nonce", "unsign_nonce"]

MAX_AGE = 2 * 3600
"""Seconds a pre-session cookie lives, in the browser and when verified."""

PURPOSE = "presession"
_NONCE_LENGTH = 43  # base64url(32 bytes), unpadded
_MAC_LENGTH = 22  # base64url(16 bytes), unpadded
_MAX_VALUE = 128
_CLOCK_SKEW = 60  # seconds an issue time may lie in the future (workers' clocks differ)


def _mac(key: bytes, payload: str) -> str:
    digest = hmac.new(key, payload.encode("ascii"), hashlib.sha256).digest()[:16]
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def sign_nonce(keyring: Keyring, nonce: str, issued: float) -> str:
    """Return the cookie value for ``nonce`` issued at ``issued`` (MACed with the current key)."""
    payload = f"{nonce}.{int(issued)}"
    return f"{payload}.{_mac(keyring.subkeys(PURPOSE)[0], payload)}"


def unsign_nonce(keyring: Keyring, value: str, now: float) -> str | None:
    """Return the nonce of a cookie value, or ``None`` if malformed, forged or expired.

    Args:
        keyring: Any of its keys may have signed the value (rotation keeps cookies valid).
        value: The cookie's value.
        now: The current time, POSIX seconds.
    """
    if len(value) > _MAX_VALUE or not value.isascii():
        return None
    nonce, _, rest = value.partition(".")
    issued, _, mac = rest.partition(".")
    if len(nonce) != _NONCE_LENGTH or not issued.isdigit() or len(mac) != _MAC_LENGTH:
        return None
    if not now - MAX_AGE <= int(issued) <= now + _CLOCK_SKEW:
        return None
    payload = f"{nonce}.{issued}"
    matched = False
    for key in keyring.subkeys(PURPOSE):
        matched |= hmac.compare_digest(_mac(key, payload), mac)
    return nonce if matched else None


@dataclass(slots=True)
class PreSession:
    """The pre-session of one request.

    Attributes:
        nonce: The verified nonce of the request's cookie, or one minted during the request.
        cookie_sent: Whether the request carried a pre-session cookie at all, valid or not;
            if it did, unsafe requests need a token.
        minted: Whether ``nonce`` was made during this request (the cookie must be set).
    """

    nonce: str | None = None
    cookie_sent: bool = False
    minted: bool = False

    def secret(self, key: bytes, *, mint: bool) -> bytes | None:
        """Return ``HMAC(key, nonce)``; with ``mint``, make a nonce first if there is none.

        Returns:
            The secret, or ``None`` without a nonce when ``mint`` is false.
        """
        if self.nonce is None:
            if not mint:
                return None
            self.nonce = secrets.token_urlsafe(32)
            self.minted = True
        return hmac.new(key, b"pre-session:" + self.nonce.encode("ascii"), hashlib.sha256).digest()
