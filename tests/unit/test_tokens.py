"""Session tokens, cookie signing and the keyring."""

from __future__ import annotations

import base64
import hashlib

import pytest

from sessionauth.errors import ConfigurationError
from sessionauth.tokens import Keyring, csrf_seed, group_of, new_token, storage_id, user_group

COOKIE_VALUE_LENGTH = 66  # an anonymous session's cookie: 43 + 1 + 22

KEY_A = "a" * 40
KEY_B = "b" * 40


def test_tokens_carry_256_bits_and_never_repeat() -> None:
    """A token decodes to 32 random bytes, and 1000 tokens are all distinct."""
    tokens = {new_token() for _ in range(1000)}
    assert len(tokens) == 1000
    for token in list(tokens)[:10]:
        assert len(base64.urlsafe_b64decode(token + "=")) == 32


def test_storage_id_is_a_128_bit_sha256_and_not_the_token() -> None:
    """The store key is SHA-256(token) truncated to 128 bits; it never holds the token."""
    token = new_token()
    sid = storage_id(token)
    assert token not in sid
    digest = hashlib.sha256(token.encode()).digest()[:16]
    assert sid == base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def test_logged_in_tokens_start_with_the_user_group() -> None:
    """A user's tokens share the user's group prefix and still carry 256 random bits."""
    first, second = new_token("42"), new_token("42")
    assert first[:11] == second[:11] == user_group("42")
    assert first[11:] != second[11:]
    assert len(base64.urlsafe_b64decode(first[11:] + "=")) == 32
    assert user_group("42") != user_group("43")


def test_storage_id_of_a_grouped_token_names_the_group() -> None:
    """A logged-in session's storage id is '<group>.<sha256>'; an anonymous one has no group."""
    token = new_token("7")
    sid = storage_id(token)
    digest = base64.urlsafe_b64encode(hashlib.sha256(token.encode()).digest()[:16])
    assert sid == f"{user_group('7')}.{digest.rstrip(b'=').decode()}"
    assert group_of(sid) == user_group("7")
    assert group_of(storage_id(new_token())) is None
    assert token not in sid


def test_grouped_cookie_round_trips() -> None:
    """A logged-in session's longer cookie signs and verifies like an anonymous one."""
    keyring = Keyring([KEY_A])
    token = new_token("1")
    assert keyring.unsign(keyring.sign(token)) == token
    assert keyring.unsign(keyring.sign(token)[1:]) is None


def test_signed_cookie_round_trips() -> None:
    """A signed token unsigns back to itself."""
    keyring = Keyring([KEY_A])
    token = new_token()
    value = keyring.sign(token)
    assert len(value) == COOKIE_VALUE_LENGTH
    assert keyring.unsign(value) == token


def test_old_keys_verify_and_the_first_key_signs() -> None:
    """After rotation, cookies signed with the old key verify; new cookies use the new key."""
    old = Keyring([KEY_A])
    rotated = Keyring([KEY_B, KEY_A])
    token = new_token()
    assert rotated.unsign(old.sign(token)) == token
    assert old.unsign(rotated.sign(token)) is None
    assert Keyring([KEY_B]).unsign(rotated.sign(token)) == token


def test_a_removed_key_no_longer_verifies() -> None:
    """Dropping a key from the ring invalidates the cookies it signed."""
    token = new_token()
    assert Keyring([KEY_B]).unsign(Keyring([KEY_A]).sign(token)) is None


@pytest.mark.parametrize(
    "value",
    [
        "",
        "x",
        "a" * COOKIE_VALUE_LENGTH,  # right length, no separator
        "a" * 4096,
        "%" * 43 + "." + "a" * 22,  # wrong alphabet
        "a" * 43 + ".." + "a" * 21,
        "a" * 43 + "." + "a" * 21 + "é",
        "\x00" * COOKIE_VALUE_LENGTH,
    ],
)
def test_malformed_cookie_values_are_rejected(value: str) -> None:
    """Values of the wrong shape are refused before any MAC is computed."""
    assert Keyring([KEY_A]).unsign(value) is None


def test_forged_mac_is_rejected() -> None:
    """A token with a MAC made by another key, or a flipped MAC character, is refused."""
    keyring = Keyring([KEY_A])
    token = new_token()
    value = keyring.sign(token)
    flipped = value[:-1] + ("A" if value[-1] != "A" else "B")
    assert keyring.unsign(flipped) is None
    assert keyring.unsign(Keyring([KEY_B]).sign(token)) is None
    other = new_token()
    assert keyring.unsign(other + value[43:]) is None  # MAC of one token on another


@pytest.mark.parametrize("keys", [[], ["short"], [KEY_A, "x" * 31]])
def test_weak_keyrings_are_refused(keys: list[str]) -> None:
    """An empty keyring or a key under 32 bytes raises ConfigurationError."""
    with pytest.raises(ConfigurationError):
        Keyring(keys)


def test_keyring_from_comma_separated_string() -> None:
    """SESSIONAUTH_SECRET's format: comma-separated, blanks ignored, first is current."""
    keyring = Keyring.from_string(f" {KEY_B} , {KEY_A},")
    token = new_token()
    assert Keyring([KEY_B]).unsign(keyring.sign(token)) == token
    assert keyring.unsign(Keyring([KEY_A]).sign(token)) == token


def test_subkeys_differ_per_purpose_and_from_the_cookie_key() -> None:
    """Derived keys for different purposes are independent."""
    keyring = Keyring([KEY_A, KEY_B])
    csrf = keyring.subkeys("csrf")
    assert len(csrf) == 2
    assert csrf != keyring.subkeys("other")
    assert csrf[0] not in (KEY_A.encode(), KEY_B.encode())


def test_a_csrf_seed_is_a_hash_of_the_token_apart_from_its_storage_id() -> None:
    """128 bits, one per token, and not the digest the store keys the record by."""
    token = new_token("7")
    assert csrf_seed(token) == csrf_seed(token)
    assert len(csrf_seed(token)) == 22
    assert csrf_seed(token) != csrf_seed(new_token("7"))
    assert csrf_seed(token) not in storage_id(token)
    assert token not in csrf_seed(token)
