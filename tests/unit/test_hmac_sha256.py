"""HmacSha256 is HMAC-SHA256 and sha256 is SHA-256: RFC 4231's vectors, the standard library."""

from __future__ import annotations

import _hashlib
import hashlib
import hmac
import random
import sys

import pytest

from sessionauth import hmac_sha256
from sessionauth.hmac_sha256 import HmacSha256, choose_sha256

# RFC 4231, test cases 1, 2, 3, 4, 6 and 7 (case 5 truncates the output).
RFC_4231 = [
    (
        "0b" * 20,
        b"Hi There".hex(),
        "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7",
    ),
    (
        b"Jefe".hex(),
        b"what do ya want for nothing?".hex(),
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843",
    ),
    ("aa" * 20, "dd" * 50, "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe"),
    (
        "0102030405060708090a0b0c0d0e0f10111213141516171819",
        "cd" * 50,
        "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b",
    ),
    (
        "aa" * 131,
        b"Test Using Larger Than Block-Size Key - Hash Key First".hex(),
        "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54",
    ),
    (
        "aa" * 131,
        b"This is a test using a larger than block-size key and a larger than block-size data. "
        b"The key needs to be hashed before being used by the HMAC algorithm.".hex(),
        "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2",
    ),
]


@pytest.fixture(params=["built-in", "openssl"])
def hashes_with(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Each SHA-256 the hot path may use: CPython's own, and OpenSSL's (FIPS mode)."""
    fips = request.param == "openssl"
    monkeypatch.setattr(hmac_sha256, "sha256", choose_sha256(fips_mode=fips))
    return str(request.param)


@pytest.mark.parametrize(("key", "message", "mac"), RFC_4231)
def test_rfc_4231_vectors(key: str, message: str, mac: str, hashes_with: str) -> None:
    """Each RFC 4231 key and message gives the RFC's HMAC-SHA256, keys past a block included."""
    assert HmacSha256(bytes.fromhex(key)).digest(bytes.fromhex(message)).hex() == mac


def test_agrees_with_the_standard_library_on_random_keys_and_messages(hashes_with: str) -> None:
    """Keys shorter than, equal to and longer than a block; messages of every small length."""
    rng = random.Random(2104)
    for key_length in (0, 1, 31, 32, 63, 64, 65, 200):
        key = rng.randbytes(key_length)
        mac = HmacSha256(key)
        for message_length in range(0, 300, 7):
            message = rng.randbytes(message_length)
            assert mac.digest(message) == hmac.digest(key, message, "sha256")


def test_one_instance_serves_many_messages_independently() -> None:
    """No state leaks from one message into the next (the keyed states are copied)."""
    mac = HmacSha256(b"k" * 32)
    first = mac.digest(b"first")
    mac.digest(b"something else entirely")
    assert mac.digest(b"first") == first


def test_the_hot_path_hash_is_cpythons_own_unless_openssl_is_in_fips_mode() -> None:
    """Outside FIPS mode the built-in module hashes; in it, OpenSSL (hashlib) does."""
    built_in = "_sha2" if sys.version_info >= (3, 12) else "_sha256"
    assert choose_sha256(fips_mode=False) is sys.modules[built_in].sha256
    assert choose_sha256(fips_mode=True) is hashlib.sha256
    assert hmac_sha256.sha256 is choose_sha256(hmac_sha256._fips_mode())


@pytest.mark.parametrize(("reported", "fips"), [(1, True), (0, False)])
def test_fips_mode_is_what_openssl_reports(
    reported: int, fips: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On a FIPS host (OpenSSL says so) the hot path must hash through OpenSSL."""
    monkeypatch.setattr(_hashlib, "get_fips_mode", lambda: reported)
    assert hmac_sha256._fips_mode() is fips
    assert (choose_sha256(hmac_sha256._fips_mode()) is hashlib.sha256) is fips


def test_the_built_in_sha256_is_sha256_through_copies() -> None:
    """Digests of every small length agree with OpenSSL's, and a copy does not share state."""
    built_in = choose_sha256(fips_mode=False)
    rng = random.Random(6234)
    for length in range(0, 300, 5):
        data = rng.randbytes(length)
        assert built_in(data).digest() == hashlib.sha256(data).digest()
        state = built_in(data)
        copy = state.copy()
        copy.update(b"more")
        assert state.digest() == hashlib.sha256(data).digest()
        assert copy.digest() == hashlib.sha256(data + b"more").digest()


def test_a_python_without_the_built_in_module_falls_back_to_hashlib(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A build configured without CPython's own SHA-256 still hashes, through OpenSSL."""
    monkeypatch.setattr(hmac_sha256, "_BUILT_IN", ("_no_such_sha_module",))
    assert choose_sha256(fips_mode=False) is hashlib.sha256
