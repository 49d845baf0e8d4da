"""The curated public API of the root package."""

from __future__ import annotations

import sessionauth


def test_all_is_sorted_and_complete() -> None:
    """__all__ is sorted, and every name in it exists and is documented."""
    names = list(sessionauth.__all__)
    assert names == sorted(names)
    for name in names:
        obj = getattr(sessionauth, name)
        assert obj.__doc__, f"{name} has no docstring"


def test_every_exception_derives_from_the_base() -> None:
    """Every public exception is a SessionAuthError, so one except clause catches them all."""
    for name in sessionauth.__all__:
        obj = getattr(sessionauth, name)
        if isinstance(obj, type) and issubclass(obj, Exception):
            assert issubclass(obj, sessionauth.SessionAuthError), name
