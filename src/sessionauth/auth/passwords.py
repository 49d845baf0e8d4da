"""Password hashing: argon2id through pwdlib, off the event loop, behind a length policy.

* New hashes are argon2id with at least OWASP's minimum (m=19456 KiB, t=2, p=1). Parameters can
  be raised, never lowered; the only way below is :meth:`PasswordHasher.for_tests`.
* Legacy bcrypt hashes (the tutorial's) and argon2 hashes with weaker parameters still verify,
  and :meth:`PasswordHasher.verify` returns a fresh hash for them so the login flow can store it.
  It does so only after a successful verification: a wrong password never causes a write.
* Passwords are NFKC-normalised, so the same password typed on different keyboards (composed or
  decomposed accents, full-width digits) verifies. Length is checked, in characters after
  normalisation, before any hashing: a megabyte "password" costs nothing. Nothing is truncated.
* A legacy bcrypt hash never matches a password longer than 72 UTF-8 bytes: bcrypt reads only
  the first 72, so accepting one would mean accepting anything with the same prefix. Users who
  signed up with such a password under a truncating library must reset it. Whenever no hash
  could be verified at all (such a password, a malformed stored hash), the dummy verification
  of an unknown account runs instead, so the answer takes as long.
* Hashing is CPU- and memory-heavy (about 19 MiB per argon2id call), so every call runs in a
  worker thread of the hasher's own pool, which bounds how many run at once: a burst of logins
  queues instead of allocating 19 MiB each.
* Those threads run at a slightly lower scheduling priority (Linux: niceness 3), and there are
  only as many as usable cores. A hash releases the GIL: with Starlette's default 40-thread
  pool, 32 concurrent logins took 32/33 of the core from the event loop and authenticated
  requests waited 132 times longer at p99 (``benchmarks/scenarios.py``, login-burst). Now the
  loop keeps about two thirds of a contended core (p99 1.8 times idle) while logins still
  progress (3 bcrypt logins/s on a saturated core; all of it when requests are idle).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import secrets
import sys
import threading
import unicodedata
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Final, TypeVar

import argon2
import argon2.exceptions
from argon2.low_level import ARGON2_VERSION
from pwdlib.hashers.argon2 import Argon2Hasher
from pwdlib.hashers.bcrypt import BcryptHasher

from sessionauth.errors import ConfigurationError, PasswordPolicyError

__all__ = [
    "OWASP_MEMORY_COST",
    "OWASP_PARALLELISM",
    "OWASP_TIME_COST",
    "PasswordHasher",
    "PasswordPolicy",
]

OWASP_MEMORY_COST: Final = 19_456
"""Minimum argon2id memory cost in KiB (19 MiB), from the OWASP Password Storage Cheat Sheet."""
OWASP_TIME_COST: Final = 2
"""Minimum argon2id iterations at that memory cost."""
OWASP_PARALLELISM: Final = 1
"""Minimum argon2id lanes."""

_BCRYPT_MAX_BYTES: Final = 72
# NFKC composition can shrink text (a letter plus combining marks, Hangul jamo), so a raw
# password may be longer than the limit and still pass; but not by this factor. Refusing such
# input up front keeps normalisation itself from being a denial-of-service lever.
_RAW_LENGTH_FACTOR: Final = 4
# Deliberately tiny argon2 parameters for PasswordHasher.for_tests(): about a millisecond.
_TEST_MEMORY_COST: Final = 1024
_TEST_TIME_COST: Final = 1


@dataclass(frozen=True, kw_only=True, slots=True)
class PasswordPolicy:
    """Which passwords are acceptable, measured in characters after NFKC normalisation.

    Attributes:
        min_length: Shortest password :meth:`validate` accepts (NIST SP 800-63B: at least 8).
        max_length: Longest password accepted anywhere; bounds the work one request can cause.

    Raises:
        ConfigurationError: If ``min_length`` is below 1 or ``max_length`` below ``min_length``.
    """

    min_length: int = 8
    max_length: int = 1024

    def __post_init__(self) -> None:
        if self.min_length < 1:
            raise ConfigurationError("PasswordPolicy.min_length must be at least 1")
        if self.max_length < self.min_length:
            raise ConfigurationError("PasswordPolicy.max_length must be at least min_length")

    def normalize(self, password: str) -> str:
        """Return the NFKC form of ``password``, refusing one that is too long.

        Used on verification, where the minimum is not applied: raising it must not lock out
        users whose passwords were accepted under an older policy.

        Raises:
            PasswordPolicyError: If the password is longer than ``max_length``.
        """
        if len(password) > self.max_length * _RAW_LENGTH_FACTOR:
            raise PasswordPolicyError(f"password longer than {self.max_length} characters")
        normalized = unicodedata.normalize("NFKC", password)
        if len(normalized) > self.max_length:
            raise PasswordPolicyError(f"password longer than {self.max_length} characters")
        return normalized

    def validate(self, password: str) -> str:
        """Return the NFKC form of a new password, enforcing both limits.

        Raises:
            PasswordPolicyError: If the password is shorter than ``min_length`` or longer than
                ``max_length``.
        """
        normalized = self.normalize(password)
        if len(normalized) < self.min_length:
            raise PasswordPolicyError(f"password shorter than {self.min_length} characters")
        return normalized


_T = TypeVar("_T")

HASH_THREAD_NICENESS: Final = 3
"""How much lower the hashing threads' priority is than the event loop's (Linux niceness)."""


def _lower_thread_priority() -> None:
    # Per-thread niceness is Linux-specific: elsewhere PRIO_PROCESS would renice the whole
    # process, event loop included, so other platforms keep the default priority.
    if sys.platform == "linux":
        # A sandbox that forbids it leaves the threads at normal priority.
        with contextlib.suppress(OSError):
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), HASH_THREAD_NICENESS)


def _default_concurrency() -> int:
    # argon2id with p=1 keeps one core busy, so one hash per usable core saturates the CPU;
    # more threads would only add memory. sched_getaffinity respects container CPU pinning.
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - platforms without sched_getaffinity
        return os.cpu_count() or 1


class PasswordHasher:
    """Hashes and verifies passwords in worker threads, at most ``max_concurrency`` at a time.

    Args:
        policy: Length limits, checked before any hashing.
        memory_cost: argon2id memory in KiB; at least :data:`OWASP_MEMORY_COST`.
        time_cost: argon2id iterations; at least :data:`OWASP_TIME_COST`.
        parallelism: argon2id lanes; at least :data:`OWASP_PARALLELISM`.
        max_concurrency: Most hashes running at once; defaults to the number of usable CPU
            cores. Peak memory is about ``max_concurrency * memory_cost``.

    Attributes:
        policy: The length policy in force.
        max_concurrency: The bound on simultaneous hashes; further calls queue.

    Raises:
        ConfigurationError: If a cost is below the OWASP minimum or ``max_concurrency`` < 1.
    """

    def __init__(
        self,
        *,
        policy: PasswordPolicy | None = None,
        memory_cost: int = OWASP_MEMORY_COST,
        time_cost: int = OWASP_TIME_COST,
        parallelism: int = OWASP_PARALLELISM,
        max_concurrency: int | None = None,
    ):
        if (
            memory_cost < OWASP_MEMORY_COST
            or time_cost < OWASP_TIME_COST
            or parallelism < OWASP_PARALLELISM
        ):
            raise ConfigurationError(
                f"argon2id parameters may only be raised above m={OWASP_MEMORY_COST}, "
                f"t={OWASP_TIME_COST}, p={OWASP_PARALLELISM}"
            )
        self._setup(policy, memory_cost, time_cost, parallelism, max_concurrency)

    @classmethod
    def for_tests(
        cls, *, policy: PasswordPolicy | None = None, max_concurrency: int | None = None
    ) -> PasswordHasher:
        """Return a hasher with trivially cheap argon2id parameters (m=1024 KiB, t=1, p=1).

        INSECURE: hashes it makes can be brute-forced quickly. It exists so test suites run
        fast; production hashers re-hash its hashes on the next successful login.
        """
        hasher = cls.__new__(cls)
        hasher._setup(policy, _TEST_MEMORY_COST, _TEST_TIME_COST, 1, max_concurrency)
        return hasher

    def _setup(
        self,
        policy: PasswordPolicy | None,
        memory_cost: int,
        time_cost: int,
        parallelism: int,
        max_concurrency: int | None,
    ) -> None:
        concurrency = _default_concurrency() if max_concurrency is None else max_concurrency
        if concurrency < 1:
            raise ConfigurationError("max_concurrency must be at least 1")
        self.policy = policy or PasswordPolicy()
        self.max_concurrency = concurrency
        self._memory_cost = memory_cost
        self._time_cost = time_cost
        self._argon2 = Argon2Hasher(
            memory_cost=memory_cost, time_cost=time_cost, parallelism=parallelism
        )
        self._bcrypt = BcryptHasher()
        self._executor = ThreadPoolExecutor(
            max_workers=concurrency,
            thread_name_prefix="sessionauth-hash",
            initializer=_lower_thread_priority,
        )
        # Made on first use, in a worker thread, rather than blocking the constructor.
        self._dummy_hash: str | None = None

    async def hash(self, password: str) -> str:
        """Return an argon2id hash of a new password.

        Raises:
            PasswordPolicyError: If the password breaks the policy (no hashing happens then).
        """
        normalized = self.policy.validate(password)
        return await self._run(self._argon2.hash, normalized)

    async def verify(self, password: str, password_hash: str) -> tuple[bool, str | None]:
        """Check ``password`` against a stored argon2 or bcrypt hash.

        A stored value in no known format (empty, corrupted, a placeholder for an account
        without a password) matches nothing, after the same work as a real verification.

        Returns:
            ``(ok, new_hash)``: ``new_hash`` is set only when ``ok`` and the stored hash is
            bcrypt or argon2 weaker than this hasher's; store it in place of the old one.

        Raises:
            PasswordPolicyError: If the password is too long (no hashing happens then).
        """
        normalized = self.policy.normalize(password)
        return await self._run(self._verify_sync, normalized, password, password_hash)

    async def dummy_verify(self, password: str) -> None:
        """Spend exactly what :meth:`verify` spends on an argon2 hash, for an unknown user.

        The login flow calls this when no account matches, so response timing does not reveal
        which emails are registered. It verifies ``password`` against the hash of a random
        password with this hasher's parameters; the first call also makes that hash.

        Raises:
            PasswordPolicyError: If the password is too long, exactly as :meth:`verify` would.
        """
        normalized = self.policy.normalize(password)
        await self._run(self._dummy_verify_sync, normalized)

    async def _run(self, function: Callable[..., _T], *args: Any) -> _T:
        """Run ``function(*args)`` in the hasher's pool: bounded and at low priority."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, functools.partial(function, *args))

    def _verify_sync(
        self, normalized: str, raw: str, password_hash: str
    ) -> tuple[bool, str | None]:
        if Argon2Hasher.identify(password_hash):
            if not self._argon2.verify(normalized, password_hash):
                return False, None
            if self._argon2_outdated(password_hash):
                return True, self._argon2.hash(normalized)
            return True, None
        if BcryptHasher.identify(password_hash):
            matched = self._bcrypt_verify(normalized, raw, password_hash)
            if matched is None:
                # Nothing was verified: answering at once would tell this account (with its
                # legacy hash) from an unknown email, which costs a dummy verification.
                self._dummy_verify_sync(normalized)
            if not matched:
                return False, None
            return True, self._argon2.hash(normalized)
        self._dummy_verify_sync(normalized)
        return False, None

    def _bcrypt_verify(self, normalized: str, raw: str, password_hash: str) -> bool | None:
        """Whether a candidate form of the password matches; ``None`` if none could be checked."""
        # Legacy hashes were made from the password as typed, without NFKC; try that form too.
        candidates = [normalized] if raw == normalized else [normalized, raw]
        checked = False
        for candidate in candidates:
            encoded = candidate.encode()
            # bcrypt reads at most 72 bytes and, in C implementations, stops at a NUL: older
            # libraries would accept such a password by its prefix (newer ones raise). Nothing
            # longer can be the password a bcrypt hash was made from, so it never matches.
            if len(encoded) > _BCRYPT_MAX_BYTES or b"\0" in encoded:
                continue
            try:
                if self._bcrypt.verify(encoded, password_hash):
                    return True
            except ValueError:  # a malformed salt or cost in the stored hash: no work done
                return None
            checked = True
        return False if checked else None

    def _argon2_outdated(self, password_hash: str) -> bool:
        """Whether a verified argon2 hash is weaker than what this hasher makes.

        Only weaker counts: a hash made with higher costs is kept, never downgraded. The number
        of lanes does not change the work per guess, so it is not compared.
        """
        try:
            params = argon2.extract_parameters(password_hash)
        except argon2.exceptions.InvalidHashError:
            return True
        return (
            params.type is not argon2.Type.ID
            or params.version < ARGON2_VERSION
            or params.memory_cost < self._memory_cost
            or params.time_cost < self._time_cost
        )

    def _dummy_verify_sync(self, normalized: str) -> None:
        if self._dummy_hash is None:
            # Two racing first calls may both compute it; either result is as good.
            self._dummy_hash = self._argon2.hash(secrets.token_urlsafe(32))
        self._argon2.verify(normalized, self._dummy_hash)
