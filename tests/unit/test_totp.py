"""TOTP codes (RFC 6238 vectors, drift, input), and the encryption of secrets at rest."""

from __future__ import annotations

import base64
from urllib.parse import parse_qs, urlsplit

import pyotp
import pytest

from sessionauth.auth.totp import (
    STEP_SECONDS,
    TotpCipher,
    matching_step,
    new_secret,
    otpauth_url,
)
from sessionauth.errors import ConfigurationError
from sessionauth.tokens import Keyring

# RFC 6238 appendix B, SHA-1: the 20-byte ASCII seed "12345678901234567890", 8 digits.
RFC_SECRET = base64.b32encode(b"12345678901234567890").decode()
RFC_VECTORS = [
    (59, "94287082"),
    (1111111109, "07081804"),
    (1111111111, "14050471"),
    (1234567890, "89005924"),
    (2000000000, "69279037"),
    (20000000000, "65353130"),
]


@pytest.mark.parametrize(("now", "code"), RFC_VECTORS)
def test_rfc_6238_vectors_match_their_step(now: int, code: str) -> None:
    """Each RFC 6238 SHA-1 vector matches at its time, naming the step floor(T / 30)."""
    assert matching_step(RFC_SECRET, code, now, digits=8) == now // STEP_SECONDS


def test_one_step_of_drift_either_way_is_accepted_two_are_not() -> None:
    """Codes of the previous and next step match (naming that step); two steps away do not."""
    secret = new_secret()
    now = 1_700_000_015.0
    step = int(now // STEP_SECONDS)
    totp = pyotp.TOTP(secret)
    for offset in (-1, 0, 1):
        assert matching_step(secret, totp.at((step + offset) * STEP_SECONDS), now) == step + offset
    for offset in (-2, 2):
        code = totp.at((step + offset) * STEP_SECONDS)
        if code not in {totp.at((step + o) * STEP_SECONDS) for o in (-1, 0, 1)}:
            assert matching_step(secret, code, now) is None


@pytest.mark.parametrize("typed", ["", "12345", "1234567", "12a456", "١٢٣٤٥٦", "123-456"])
def test_malformed_codes_match_nothing(typed: str) -> None:
    """Wrong lengths, letters, non-ASCII digits and dashes are refused without a lookup."""
    assert matching_step(new_secret(), typed, 1_700_000_000.0) is None


def test_spaces_in_a_code_are_ignored() -> None:
    """``123 456``, as apps display codes, is the code 123456."""
    secret, now = new_secret(), 1_700_000_000.0
    code = pyotp.TOTP(secret).at(now)
    assert matching_step(secret, f" {code[:3]} {code[3:]} ", now) == int(now // STEP_SECONDS)


def test_secrets_are_160_random_bits() -> None:
    """A secret is 32 base32 characters (160 bits), different every time."""
    secrets_ = {new_secret() for _ in range(50)}
    assert len(secrets_) == 50
    assert all(len(base64.b32decode(s)) == 20 for s in secrets_)


def test_otpauth_url_names_issuer_and_account() -> None:
    """The URL is otpauth://totp/Issuer:account with secret, issuer, 6 digits, 30 s."""
    url = otpauth_url(
        "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP", account="ana@example.com", issuer="Example Co"
    )
    parts = urlsplit(url)
    assert (parts.scheme, parts.netloc) == ("otpauth", "totp")
    assert parts.path == "/Example%20Co:ana%40example.com"
    query = parse_qs(parts.query)
    assert query["secret"] == ["JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"]
    assert query["issuer"] == ["Example Co"]
    assert pyotp.parse_uri(url).now() == pyotp.TOTP("JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP").now()


def test_the_cipher_round_trips_and_hides_the_secret() -> None:
    """An encrypted secret decrypts for its user; the bytes never contain the secret."""
    cipher = TotpCipher.from_keyring(Keyring(["k" * 40]))
    secret = new_secret()
    sealed = cipher.encrypt("7", secret)
    assert secret.encode() not in sealed
    assert sealed != cipher.encrypt("7", secret)  # a fresh nonce each time
    assert cipher.decrypt("7", sealed) == secret


def test_a_secret_moved_to_another_user_or_tampered_does_not_decrypt() -> None:
    """The user id is bound in: another account, a flipped byte, junk: all give None."""
    cipher = TotpCipher.from_keyring(Keyring(["k" * 40]))
    sealed = cipher.encrypt("7", new_secret())
    assert cipher.decrypt("8", sealed) is None
    assert cipher.decrypt("7", sealed[:-1] + bytes([sealed[-1] ^ 1])) is None
    assert cipher.decrypt("7", b"") is None
    assert cipher.decrypt("7", b"\x02" + sealed[1:]) is None


def test_rotated_keys_still_decrypt_and_dropped_ones_do_not() -> None:
    """After a rotation old secrets decrypt; once the old key is gone they do not."""
    old, new = "o" * 40, "n" * 40
    sealed = TotpCipher.from_keyring(Keyring([old])).encrypt("1", "SECRET")
    assert TotpCipher.from_keyring(Keyring([new, old])).decrypt("1", sealed) == "SECRET"
    assert TotpCipher.from_keyring(Keyring([new])).decrypt("1", sealed) is None


def test_cipher_keys_are_derived_for_their_purpose() -> None:
    """The TOTP keys differ from the raw secret and from another purpose's keys."""
    keyring = Keyring(["k" * 40])
    (key,) = keyring.derived_keys("totp-secret")
    assert len(key) == 32
    assert key not in (b"k" * 32, keyring.derived_keys("cookie")[0])
    with pytest.raises(ConfigurationError):
        TotpCipher([])
    with pytest.raises(ConfigurationError):
        TotpCipher([b"short"])
    assert "k" * 10 not in repr(TotpCipher([key]))
