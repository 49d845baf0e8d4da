"""SHA-256 and HMAC-SHA256 for the hot path: the cookie MAC and storage id of every request.

``hmac.digest(key, message, "sha256")`` hands each call to OpenSSL 3's one-shot HMAC, which
looks the algorithm up and keys a fresh context every time: about 2.2 µs here, on every request
that carries a cookie. RFC 2104 defines HMAC as two nested hashes of the key padded with fixed
bytes, so the two keyed SHA-256 states can be computed once and copied per message: 0.9 µs,
with the same output (``tests/unit/test_hmac_sha256.py`` checks RFC 4231's test vectors and
agreement with :func:`hmac.digest` on random keys and messages).

The hash is CPython's own SHA-256 (``_sha256`` on 3.11, ``_sha2`` from 3.12: HACL*'s verified
code) rather than ``hashlib``'s OpenSSL one, unless OpenSSL runs in FIPS mode, where every hash
must come from the validated module. For the short inputs of a request, OpenSSL 3 costs more in
its provider dispatch and context allocations than in hashing: copying an OpenSSL context copies
through the provider and allocates, the built-in one is a small struct. In process, behind the
library's app on Redis, the switch saved about 4.5 µs of CPU per authenticated request of ~72
(``benchmarks/README.md``); in a tight loop: HMAC 2.0 -> 1.0 µs, SHA-256 0.76 -> 0.53 µs.
SHA-256 has no secret-dependent branches or table lookups, so either implementation is
constant-time in the key.
"""

from __future__ import annotations

import hashlib
import importlib
from collections.abc import Callable
from typing import Protocol

__all__ = ["HmacSha256", "Sha256", "Sha256State", "choose_sha256", "sha256"]

_BLOCK = 64  # SHA-256's block size in bytes
_INNER_PAD = bytes(byte ^ 0x36 for byte in range(256))  # translate tables: XOR every byte
_OUTER_PAD = bytes(byte ^ 0x5C for byte in range(256))
_BUILT_IN: tuple[str, ...] = ("_sha2", "_sha256")  # CPython 3.12 and later, 3.11


class Sha256State(Protocol):
    """A running SHA-256: what both implementations offer."""

    def update(self, data: bytes, /) -> None:
        """Hash ``data`` next."""

    def digest(self) -> bytes:
        """The 32-byte hash of everything so far."""

    def copy(self) -> Sha256State:
        """An independent state with the same input so far."""


Sha256 = Callable[[bytes], Sha256State]


def _fips_mode() -> bool:
    """Whether OpenSSL runs in FIPS mode (then it must do every hash)."""
    try:
        import _hashlib  # absent from a Python built without OpenSSL
    except ImportError:
        return False
    return bool(_hashlib.get_fips_mode())


def choose_sha256(fips_mode: bool) -> Sha256:
    """Return the SHA-256 constructor for the hot path: CPython's own, or OpenSSL's in FIPS mode.

    Falls back to :func:`hashlib.sha256` for an interpreter without the built-in module.
    """
    if not fips_mode:
        for name in _BUILT_IN:
            try:
                constructor: Sha256 = importlib.import_module(name).sha256
            except (ImportError, AttributeError):
                continue
            return constructor
    return hashlib.sha256


sha256 = choose_sha256(_fips_mode())
"""SHA-256 of bytes (``sha256(data).digest()``), chosen once: see the module."""


class HmacSha256:
    """HMAC-SHA256 under one key.

    Args:
        key: The secret; longer than a block, it is hashed first (RFC 2104).
    """

    __slots__ = ("_inner", "_outer")

    def __init__(self, key: bytes):
        if len(key) > _BLOCK:
            key = sha256(key).digest()
        block = key.ljust(_BLOCK, b"\0")
        self._inner = sha256(block.translate(_INNER_PAD))
        self._outer = sha256(block.translate(_OUTER_PAD))

    def digest(self, message: bytes) -> bytes:
        """Return the 32-byte MAC of ``message``."""
        inner = self._inner.copy()
        inner.update(message)
        outer = self._outer.copy()
        outer.update(inner.digest())
        return outer.digest()
