"""Recovery codes: their shape and entropy, input normalisation, and hashing per user."""

from __future__ import annotations

import re

import pytest

from sessionauth.auth.recovery import CODE_COUNT, hash_code, new_codes, normalize_code


def test_ten_distinct_codes_of_fifty_bits() -> None:
    """Ten codes, each two groups of five Crockford base32 characters, all different."""
    codes = new_codes()
    assert len(codes) == CODE_COUNT == 10
    assert len(set(codes)) == 10
    assert all(re.fullmatch(r"[0-9A-HJKMNP-TV-Z]{5}-[0-9A-HJKMNP-TV-Z]{5}", c) for c in codes)


@pytest.mark.parametrize(
    "typed", ["ab1cd-ef2gh", "AB1CDEF2GH", " ab1c d-ef2g h ", "AB1CD--EF2GH", "aBiCd-Ef2gH"]
)
def test_case_dashes_spaces_and_lookalikes_do_not_matter(typed: str) -> None:
    """Case, dashes and spaces are ignored, and I/L read as 1, O as 0."""
    assert normalize_code(typed) == "AB1CDEF2GH"
    assert hash_code("5", typed) == hash_code("5", "AB1CD-EF2GH")


@pytest.mark.parametrize("typed", ["", "AB1CD-EF2G", "AB1CD-EF2GHJ", "AB1CD-EF2G!", "ÄB1CD-EF2GH"])
def test_malformed_codes_have_no_hash(typed: str) -> None:
    """A code of the wrong length or with foreign characters hashes to None (never matches)."""
    assert hash_code("5", typed) is None


def test_hashes_are_per_user_and_hide_the_code() -> None:
    """One code hashes differently for two users, and the hash does not contain it."""
    code = new_codes(1)[0]
    first, second = hash_code("1", code), hash_code("2", code)
    assert first is not None
    assert second is not None
    assert first != second
    assert len(first) == 64
    assert code.replace("-", "") not in first.upper()
