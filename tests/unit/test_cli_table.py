"""The CLI's tables: tab-separated for scripts, lined up for a reader at a terminal."""

from __future__ import annotations

from sessionauth.cli_accounts import _table

ROWS = [
    ("HANDLE", "USER", "BROWSER"),
    ("a1", "ann@example.com", "curl/8"),
    ("long-handle", "b@x", "-"),
]


def test_unaligned_cells_are_separated_by_one_tab_and_kept_as_they_are() -> None:
    """Piped output: each cell as it is, no padding, so that `cut -f` gets the values back."""
    assert _table(ROWS, aligned=False) == [
        "HANDLE\tUSER\tBROWSER",
        "a1\tann@example.com\tcurl/8",
        "long-handle\tb@x\t-",
    ]


def test_aligned_columns_start_at_the_same_place_on_every_line() -> None:
    """At a terminal each column is as wide as its widest cell, two spaces apart, no tail."""
    assert _table(ROWS, aligned=True) == [
        "HANDLE       USER             BROWSER",
        "a1           ann@example.com  curl/8",
        "long-handle  b@x              -",
    ]
