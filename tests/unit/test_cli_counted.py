"""The counts the CLI prints: the noun agrees with the number."""

from __future__ import annotations

import pytest

from sessionauth.cli_accounts import counted


@pytest.mark.parametrize(
    ("count", "said"), [(0, "0 sessions"), (1, "1 session"), (2, "2 sessions")]
)
def test_one_is_singular_every_other_count_plural(count: int, said: str) -> None:
    """1 takes the singular; 0 and 2 take the plural, ``noun`` + ``s`` by default."""
    assert counted(count, "session") == said


def test_an_irregular_plural_is_given_with_its_verb() -> None:
    """A plural that is not ``noun`` + ``s`` (or carries a verb) is used as given."""
    assert counted(1, "secret is", "secrets are") == "1 secret is"
    assert counted(3, "secret is", "secrets are") == "3 secrets are"
    assert counted(0, "was", "were") == "0 were"
