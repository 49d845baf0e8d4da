"""The one spelling of a user id that a route accepts: what the database assigned, in ASCII.

Python's ``int()`` and ``str.isdigit()`` are generous: ``int(" 1")``, ``int("+2")``,
``int("01")`` and ``int()`` of Arabic-Indic or mathematical double-struck digits all give real
ids, and a superscript two is ``isdigit()`` while ``int()`` of it raises. A path such as
``DELETE /users/%20 1`` therefore addressed user 1, and ``/ui/admin/users/%C2%B2/disable`` was
a 500. Every route (API and forms, path and body) parses ids with :func:`parse_user_id`, so each
user has exactly one way to be named, and anything else is simply "no such user".

Sessions, principals and every store's per-user index keep a user's id as text:
:func:`user_id_text` is the one way an id becomes that text, and :func:`typed_user_id` turns it
back into the application's ``user_id_type`` (``int``, the built-in stores' ids, or ``str``,
say UUIDs), the one type the Authenticator and the guards
(:class:`~sessionauth.auth.user_guards.Guards`) take and hand back.
"""

from __future__ import annotations

import re
from typing import TypeAlias, TypeVar

from sessionauth.errors import UserNotFound
from sessionauth.user_text import MAX_TEXT_ID, MAX_USER_ID, user_id_text, valid_text_id

__all__ = [
    "MAX_TEXT_ID",
    "MAX_USER_ID",
    "IdT",
    "UserId",
    "parse_user_id",
    "typed_user_id",
    "user_id_text",
]

# Spelled out as [0-9], never \d, which matches every Unicode decimal digit.
_USER_ID = re.compile(r"[1-9][0-9]{0,18}")

IdT = TypeVar("IdT", int, str)
"""A user id type: ``int`` or ``str`` (``user_id_type`` settings take one of the two)."""

UserId: TypeAlias = int | str
"""A user id of either type, as events carry it."""


def parse_user_id(text: str) -> int:
    """Return the id ``text`` spells: ``^[1-9][0-9]{0,18}$`` and at most :data:`MAX_USER_ID`.

    Raises:
        UserNotFound: For anything else (spaces, signs, leading zeros, non-ASCII digits,
            decimals, ids beyond 2**63 - 1): no user is named so, which the edge answers 404.
    """
    if _USER_ID.fullmatch(text) is None or int(text) > MAX_USER_ID:
        raise UserNotFound("no such user")
    return int(text)


def typed_user_id(text: str, user_id_type: type[IdT]) -> IdT:
    """Return the session's user id ``text`` as ``user_id_type`` (``int`` or ``str``).

    Raises:
        UserNotFound: If ``user_id_type`` is ``int`` and ``text`` is not the one spelling of an
            id (see :func:`parse_user_id`), or is ``str`` and ``text`` no valid text id: such a
            session names no user of this application.
    """
    if issubclass(user_id_type, int):
        return user_id_type(parse_user_id(text))
    if not valid_text_id(text):
        raise UserNotFound("no such user")
    return user_id_type(text)
