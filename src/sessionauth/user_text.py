"""How a user id becomes the text sessions, principals and stores keep (core: no other layer).

:func:`user_id_text` is the one way an id (``int`` or ``str``) becomes that text;
:mod:`sessionauth.auth.user_ids` reads it back as the application's ``user_id_type``.

Text ids are checked, not encoded: 1 to :data:`MAX_TEXT_ID` printable characters (no NUL, no
control characters, no lone surrogates). No store builds a key or a query out of an id (the
Redis store keys a user's hash by a SHA-256 of the id and compares the id itself inside it;
SQL stores bind it as a parameter), so ``:``, ``*`` or ``{`` in an id address nothing but that
id; the check keeps out what a store would choke on (PostgreSQL refuses NUL in text, UTF-8
cannot encode a lone surrogate) and the empty string, which stores read as "no user".
"""

from __future__ import annotations

from typing import Final

__all__ = ["MAX_TEXT_ID", "MAX_USER_ID", "user_id_text", "valid_text_id"]

MAX_USER_ID: Final = 2**63 - 1
"""The largest id a database assigns (a signed 64-bit integer)."""

MAX_TEXT_ID: Final = 255
"""The longest text id, in characters (a UUID has 36)."""


def user_id_text(user_id: int | str) -> str:
    """Return the text sessions and stores keep for ``user_id``.

    Raises:
        ValueError: For an ``int`` outside ``1..MAX_USER_ID`` (its session could never be read
            back as an id), a ``bool``, or a text id that is empty, longer than
            :data:`MAX_TEXT_ID`, or holds a control character or a lone surrogate.
        TypeError: For anything but ``int`` or ``str``.
    """
    if isinstance(user_id, bool) or not isinstance(user_id, int | str):
        raise TypeError(f"a user id is an int or a str, not {type(user_id).__name__}")
    if isinstance(user_id, int):
        if not 1 <= user_id <= MAX_USER_ID:
            raise ValueError(f"an int user id is between 1 and {MAX_USER_ID}")
        return str(user_id)
    text = str(user_id)
    if not valid_text_id(text):
        raise ValueError(
            f"a text user id has 1 to {MAX_TEXT_ID} printable characters (no control characters)"
        )
    return text


def valid_text_id(text: str) -> bool:
    """Whether ``text`` may be a text id (see the module)."""
    # isprintable() is False for NUL, every control character and every lone surrogate.
    return 1 <= len(text) <= MAX_TEXT_ID and text.isprintable()
