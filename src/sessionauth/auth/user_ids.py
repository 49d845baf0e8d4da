"""The one spelling of a user id that a route accepts: what the database assigned, in ASCII.

Python's ``int()`` and ``str.isdigit()`` are generous: ``int(" 1")``, ``int("+2")``,
``int("01")`` and ``int()`` of Arabic-Indic or mathematical double-struck digits all give real
ids, and a superscript two is ``isdigit()`` while ``int()`` of it raises. A path such as
``DELETE /users/%20 1`` therefore addressed user 1, and ``/ui/admin/users/%C2%B2/disable`` was
a 500. Every route (API and forms, path and body) parses ids with :func:`parse_user_id`, so each
user has exactly one way to be named, and anything else is simply "no such user".
"""

from __future__ import annotations

import re
from typing import Final

from sessionauth.errors import UserNotFound

__all__ = ["MAX_USER_ID", "parse_user_id"]

MAX_USER_ID: Final = 2**63 - 1
"""The largest id a database assigns (a signed 64-bit integer)."""

# Spelled out as [0-9], never \d, which matches every Unicode decimal digit.
_USER_ID = re.compile(r"[1-9][0-9]{0,18}")


def parse_user_id(text: str) -> int:
    """Return the id ``text`` spells: ``^[1-9][0-9]{0,18}$`` and at most :data:`MAX_USER_ID`.

    Raises:
        UserNotFound: For anything else (spaces, signs, leading zeros, non-ASCII digits,
            decimals, ids beyond 2**63 - 1): no user is named so, which the edge answers 404.
    """
    if _USER_ID.fullmatch(text) is None or int(text) > MAX_USER_ID:
        raise UserNotFound("no such user")
    return int(text)
