"""Password hashing: parameters, legacy bcrypt, length policy, normalisation, worker threads."""

from __future__ import annotations

import asyncio
import os
import sys
import threading
from collections.abc import Awaitable, Callable
from typing import Any

import argon2
import bcrypt
import pytest
from pwdlib.hashers.argon2 import Argon2Hasher
from pwdlib.hashers.bcrypt import BcryptHasher

from sessionauth.auth.passwords import HASH_THREAD_NICENESS, PasswordHasher, PasswordPolicy
from sessionauth.errors import ConfigurationError, PasswordPolicyError

PRODUCTION_PREFIX = "$argon2id$v=19$m=19456,t=2,p=1$"
TEST_PREFIX = "$argon2id$v=19$m=1024,t=1,p=1$"


@pytest.fixture
def hasher() -> PasswordHasher:
    """A hasher with the cheap test costs."""
    return PasswordHasher.for_tests()


class CallLog:
    """Records calls to a wrapped hasher method, and the threads they ran on."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []
        self.threads: set[int] = set()

    def wrap(self, original: Callable[..., Any]) -> Callable[..., Any]:
        """Return a replacement method that logs each call, then runs ``original``."""

        def wrapper(hasher: Any, *args: Any, **kwargs: Any) -> Any:
            self.calls.append(args)
            self.threads.add(threading.get_ident())
            return original(hasher, *args, **kwargs)

        return wrapper


def cheap_hash(password: str) -> str:
    """An argon2id hash with the for_tests() costs, made without the policy in the way."""
    return argon2.PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1).hash(password)


def spy(monkeypatch: pytest.MonkeyPatch, cls: type, method: str) -> CallLog:
    log = CallLog()
    monkeypatch.setattr(cls, method, log.wrap(getattr(cls, method)))
    return log


# --------------------------------------------------------------------------- argon2 parameters


async def test_production_defaults_are_owasp_argon2id() -> None:
    """PasswordHasher() makes argon2id hashes encoding m=19456, t=2, p=1, which verify unchanged."""
    production = PasswordHasher()
    password_hash = await production.hash("correct horse battery")
    assert password_hash.startswith(PRODUCTION_PREFIX)
    assert await production.verify("correct horse battery", password_hash) == (True, None)


@pytest.mark.parametrize(
    "weaker",
    [{"memory_cost": 19_455}, {"time_cost": 1}, {"parallelism": 0}, {"max_concurrency": 0}],
)
def test_parameters_below_the_minimum_are_refused(weaker: dict[str, Any]) -> None:
    """The constructor raises ConfigurationError for argon2 costs below OWASP's or no workers."""
    with pytest.raises(ConfigurationError):
        PasswordHasher(**weaker)


async def test_stronger_hashes_are_not_downgraded() -> None:
    """A hash made with higher costs than the current ones verifies without a rehash."""
    stronger = await PasswordHasher(time_cost=3).hash("correct horse battery")
    assert await PasswordHasher().verify("correct horse battery", stronger) == (True, None)


async def test_weaker_argon2_hash_is_rehashed_on_success(hasher: PasswordHasher) -> None:
    """A verified hash with weaker argon2 costs comes back with a fresh production-strength hash."""
    weak = await hasher.hash("correct horse battery")
    assert weak.startswith(TEST_PREFIX)
    production = PasswordHasher()
    ok, new_hash = await production.verify("correct horse battery", weak)
    assert ok
    assert new_hash is not None
    assert new_hash.startswith(PRODUCTION_PREFIX)
    assert await production.verify("correct horse battery", new_hash) == (True, None)


async def test_wrong_password_never_yields_a_rehash(hasher: PasswordHasher) -> None:
    """A failed verification of an outdated hash returns (False, None): nothing to store."""
    weak = await hasher.hash("correct horse battery")
    assert await PasswordHasher().verify("wrong horse battery", weak) == (False, None)
    legacy = bcrypt.hashpw(b"correct horse battery", bcrypt.gensalt(4)).decode()
    assert await hasher.verify("wrong horse battery", legacy) == (False, None)


async def test_argon2i_hash_is_rehashed_to_argon2id(hasher: PasswordHasher) -> None:
    """A verified argon2i hash with equal costs is still upgraded to argon2id."""
    old = argon2.PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1, type=argon2.Type.I)
    ok, new_hash = await hasher.verify("correct horse battery", old.hash("correct horse battery"))
    assert ok
    assert new_hash is not None
    assert new_hash.startswith(TEST_PREFIX)


# --------------------------------------------------------------------------- bcrypt


async def test_bcrypt_hash_verifies_and_is_rehashed(hasher: PasswordHasher) -> None:
    """A tutorial-style bcrypt hash verifies and returns an argon2id replacement."""
    legacy = bcrypt.hashpw(b"tutorial-password", bcrypt.gensalt(10)).decode()
    ok, new_hash = await hasher.verify("tutorial-password", legacy)
    assert ok
    assert new_hash is not None
    assert new_hash.startswith("$argon2id$")
    assert await hasher.verify("tutorial-password", new_hash) == (True, None)


@pytest.mark.parametrize(
    ("stored", "typed"),
    [
        ("a" * 72, "a" * 72 + "b"),  # 73 ASCII bytes: bcrypt would compare only the first 72
        ("a" * 72, "a" * 72 + "anything at all"),
        ("é" * 36, "é" * 37),  # 74 bytes in UTF-8, the first 72 being the stored password
        ("password", "password\x00suffix"),  # a C library would stop reading at the NUL
    ],
)
async def test_bcrypt_never_matches_a_truncated_prefix(
    hasher: PasswordHasher, stored: str, typed: str
) -> None:
    """A password over 72 bytes (or with a NUL) never verifies against a hash of its prefix."""
    legacy = bcrypt.hashpw(stored.encode(), bcrypt.gensalt(4)).decode()
    ok, _ = await hasher.verify(stored, legacy)
    assert ok
    assert await hasher.verify(typed, legacy) == (False, None)


@pytest.mark.parametrize("typed", ["a" * 73, "é" * 37, "password\x00suffix"])
async def test_an_uncheckable_bcrypt_candidate_costs_the_dummy_verification(
    hasher: PasswordHasher, monkeypatch: pytest.MonkeyPatch, typed: str
) -> None:
    """When bcrypt can check no form of the password, the unknown-account argon2 verify runs."""
    legacy = bcrypt.hashpw(b"password", bcrypt.gensalt(4)).decode()
    verifies = spy(monkeypatch, Argon2Hasher, "verify")
    assert await hasher.verify(typed, legacy) == (False, None)
    assert len(verifies.calls) == 1


async def test_a_checked_bcrypt_candidate_costs_no_dummy_verification(
    hasher: PasswordHasher, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A wrong password bcrypt did check spends bcrypt's work only, no extra argon2 run."""
    legacy = bcrypt.hashpw(b"password", bcrypt.gensalt(4)).decode()
    verifies = spy(monkeypatch, Argon2Hasher, "verify")
    assert await hasher.verify("not the password", legacy) == (False, None)
    assert verifies.calls == []


async def test_legacy_bcrypt_of_an_unnormalised_password_verifies(hasher: PasswordHasher) -> None:
    """A bcrypt hash of a decomposed (non-NFKC) password verifies with that password as typed."""
    typed = "cafe\u0301-password"
    legacy = bcrypt.hashpw(typed.encode(), bcrypt.gensalt(4)).decode()
    ok, new_hash = await hasher.verify(typed, legacy)
    assert ok
    assert new_hash is not None
    # The replacement is of the normalised form, so either spelling verifies from now on.
    assert await hasher.verify("caf\u00e9-password", new_hash) == (True, None)


# --------------------------------------------------------------------------- length policy


@pytest.mark.parametrize("operation", ["hash", "verify", "dummy_verify"])
async def test_huge_password_is_refused_before_any_hashing(
    hasher: PasswordHasher, monkeypatch: pytest.MonkeyPatch, operation: str
) -> None:
    """A 1 MB password raises PasswordPolicyError without a single argon2 or bcrypt call."""
    logs = [
        spy(monkeypatch, Argon2Hasher, "hash"),
        spy(monkeypatch, Argon2Hasher, "verify"),
        spy(monkeypatch, BcryptHasher, "verify"),
    ]
    stored = cheap_hash("whatever1")
    huge = "x" * 1_000_000
    calls: dict[str, Callable[[], Awaitable[object]]] = {
        "hash": lambda: hasher.hash(huge),
        "verify": lambda: hasher.verify(huge, stored),
        "dummy_verify": lambda: hasher.dummy_verify(huge),
    }
    with pytest.raises(PasswordPolicyError):
        await calls[operation]()
    assert [log.calls for log in logs] == [[], [], []]


@pytest.mark.parametrize(
    ("password", "accepted"),
    [
        ("x" * 7, False),
        ("x" * 8, True),
        ("x" * 1024, True),
        ("x" * 1025, False),
        ("e\u0301" * 1024, True),  # 2048 code points, 1024 characters once composed
        ("\ufb03" * 342, False),  # 342 ligatures, 1026 characters ("ffi") once normalised
        ("\ufb03" * 3, True),  # 3 code points, 9 characters once normalised
    ],
)
async def test_length_is_counted_after_nfkc(
    hasher: PasswordHasher, password: str, accepted: bool
) -> None:
    """New passwords must be 8 to 1024 characters long, counted after NFKC normalisation."""
    if accepted:
        assert (await hasher.hash(password)).startswith(TEST_PREFIX)
    else:
        with pytest.raises(PasswordPolicyError):
            await hasher.hash(password)


async def test_verify_does_not_apply_the_minimum_length(hasher: PasswordHasher) -> None:
    """A short password from an older, laxer policy still verifies (only the maximum applies)."""
    old = cheap_hash("short")
    assert await hasher.verify("short", old) == (True, None)


@pytest.mark.parametrize("limits", [{"min_length": 0}, {"min_length": 10, "max_length": 9}])
def test_inconsistent_policy_is_refused(limits: dict[str, int]) -> None:
    """PasswordPolicy raises ConfigurationError for a minimum below 1 or above the maximum."""
    with pytest.raises(ConfigurationError):
        PasswordPolicy(**limits)


async def test_custom_policy_applies() -> None:
    """A hasher enforces the limits of the policy it was given."""
    strict = PasswordHasher.for_tests(policy=PasswordPolicy(min_length=12, max_length=16))
    with pytest.raises(PasswordPolicyError):
        await strict.hash("elevenchars")
    with pytest.raises(PasswordPolicyError):
        await strict.verify("x" * 17, cheap_hash("whatever1"))
    assert (await strict.hash("twelve chars")).startswith(TEST_PREFIX)


# --------------------------------------------------------------------------- normalisation


@pytest.mark.parametrize(
    ("set_as", "typed"),
    [
        ("caf\u00e9-password", "cafe\u0301-password"),  # composed, then decomposed é
        ("cafe\u0301-password", "caf\u00e9-password"),  # decomposed, then composed é
        ("pass\uff11\uff12\uff13\uff14", "pass1234"),  # full-width digits, then ASCII
    ],
)
async def test_equivalent_unicode_spellings_verify(
    hasher: PasswordHasher, set_as: str, typed: str
) -> None:
    """A password verifies however its characters are composed (NFKC on both sides)."""
    password_hash = await hasher.hash(set_as)
    assert await hasher.verify(typed, password_hash) == (True, None)


# --------------------------------------------------------------------------- dummy verify


async def test_dummy_verify_runs_a_real_production_verify(monkeypatch: pytest.MonkeyPatch) -> None:
    """dummy_verify() verifies against an argon2id hash with the hasher's own (production) costs."""
    verifies = spy(monkeypatch, Argon2Hasher, "verify")
    await PasswordHasher().dummy_verify("somebody's guess")
    assert len(verifies.calls) == 1
    password, dummy_hash = verifies.calls[0]
    assert password == "somebody's guess"
    assert dummy_hash.startswith(PRODUCTION_PREFIX)


async def test_dummy_hash_is_made_once(
    hasher: PasswordHasher, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Repeated dummy_verify() calls each verify, but the dummy hash is computed only once."""
    hashes = spy(monkeypatch, Argon2Hasher, "hash")
    verifies = spy(monkeypatch, Argon2Hasher, "verify")
    for _ in range(3):
        await hasher.dummy_verify("somebody's guess")
    assert (len(hashes.calls), len(verifies.calls)) == (1, 3)


@pytest.mark.parametrize("stored", ["", "not a hash", "$argon2id$broken", "$2b$04$short"])
async def test_unknown_hash_formats_fail_after_dummy_work(
    hasher: PasswordHasher, monkeypatch: pytest.MonkeyPatch, stored: str
) -> None:
    """A stored value in no known format verifies nothing, after a real argon2 verify."""
    verifies = spy(monkeypatch, Argon2Hasher, "verify")
    assert await hasher.verify("correct horse battery", stored) == (False, None)
    assert len(verifies.calls) == 1


# --------------------------------------------------------------------------- worker threads


async def test_hashing_runs_in_worker_threads(
    hasher: PasswordHasher, monkeypatch: pytest.MonkeyPatch
) -> None:
    """hash(), verify() and dummy_verify() never run argon2 on the event loop's thread."""
    hashes = spy(monkeypatch, Argon2Hasher, "hash")
    verifies = spy(monkeypatch, Argon2Hasher, "verify")
    password_hash = await hasher.hash("correct horse battery")
    await hasher.verify("correct horse battery", password_hash)
    await hasher.dummy_verify("correct horse battery")
    assert hashes.threads | verifies.threads
    assert threading.get_ident() not in hashes.threads | verifies.threads


def test_default_concurrency_is_the_usable_cores() -> None:
    """Without max_concurrency, one hash may run per CPU core available to the process."""
    assert PasswordHasher.for_tests().max_concurrency == len(os.sched_getaffinity(0))


async def test_concurrent_hashes_never_exceed_the_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fifty concurrent hashes with max_concurrency=2 run exactly two at a time, never more."""
    limit = 2
    hasher = PasswordHasher.for_tests(max_concurrency=limit)
    lock = threading.Lock()
    # Each hash waits here until `limit` hashes are running together: that proves the limit is
    # reached, and any hash beyond it would be counted before the barrier lets the pair go.
    barrier = threading.Barrier(limit, timeout=10)
    active = peak = 0
    original = Argon2Hasher.hash

    def counting_hash(self: Argon2Hasher, password: str, **kwargs: Any) -> str:
        nonlocal active, peak
        with lock:
            active += 1
            peak = max(peak, active)
        try:
            barrier.wait()
            return original(self, password, **kwargs)
        finally:
            with lock:
                active -= 1

    monkeypatch.setattr(Argon2Hasher, "hash", counting_hash)
    results = await asyncio.gather(*(hasher.hash(f"password-{n}") for n in range(50)))
    assert len(set(results)) == 50
    assert peak == limit


@pytest.mark.skipif(sys.platform != "linux", reason="per-thread niceness is Linux-only")
async def test_hashing_threads_run_at_lower_priority_than_the_event_loop(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Hashes run in threads whose niceness is raised, so they never starve request serving."""
    hasher = PasswordHasher.for_tests()
    seen: list[int] = []
    original = Argon2Hasher.hash

    def niceness() -> int:
        return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())

    def hash_noting_niceness(self: Argon2Hasher, password: str, **kwargs: Any) -> str:
        seen.append(niceness())
        return original(self, password, **kwargs)

    monkeypatch.setattr(Argon2Hasher, "hash", hash_noting_niceness)
    loop_niceness = niceness()
    await hasher.hash("correct horse battery")
    assert seen == [loop_niceness + HASH_THREAD_NICENESS]
