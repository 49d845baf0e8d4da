"""Recovery codes: ten single-use codes, shown once, stored as SHA-256 hashes.

A code is 10 characters of Crockford-style base32 (50 random bits), shown as ``XXXXX-XXXXX``.
Input is normalised before hashing: case, dashes and spaces do not matter, and the letters
people confuse with digits (``O``, ``I``, ``L``) count as those digits.

A plain, fast SHA-256 is enough here, unlike for passwords: a slow hash defends low-entropy
secrets against offline guessing, but each code is 50 bits from ``secrets``, so an attacker
with the hashes must still try about 2^49 candidates per code on average, per account (the user
id is hashed in, so one table of guesses serves one account only). Online guessing is bounded
by the login throttle long before that. Hashes are compared by the store as lookup keys; they
are the digest of a uniformly random value, so their comparison leaks nothing useful.
"""

from __future__ import annotations

import hashlib
import secrets

__all__ = ["CODE_COUNT", "hash_code", "new_codes", "normalize_code"]

CODE_COUNT = 10
"""Codes generated at once."""

# Crockford's base32 alphabet: digits and letters without I, L, O, U.
_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_LENGTH = 10
_CONFUSED = str.maketrans({"O": "0", "I": "1", "L": "1"})


def new_codes(count: int = CODE_COUNT) -> list[str]:
    """Return ``count`` fresh codes, formatted for display (``XXXXX-XXXXX``)."""
    codes = []
    for _ in range(count):
        raw = "".join(secrets.choice(_ALPHABET) for _ in range(_LENGTH))
        codes.append(f"{raw[:5]}-{raw[5:]}")
    return codes


def normalize_code(code: str) -> str | None:
    """Return the code's 10 characters as generated, or ``None`` if it cannot be one."""
    cleaned = "".join(code.split()).replace("-", "").upper().translate(_CONFUSED)
    if len(cleaned) != _LENGTH or any(char not in _ALPHABET for char in cleaned):
        return None
    return cleaned


def hash_code(user_id: str, code: str) -> str | None:
    """Return the hex SHA-256 the store keeps for ``code`` of ``user_id``; ``None`` if malformed."""
    normalized = normalize_code(code)
    if normalized is None:
        return None
    return hashlib.sha256(f"sessionauth-recovery:{user_id}:{normalized}".encode()).hexdigest()
