"""What the SQL session stores (SQLite, PostgreSQL) decide alike, in Python.

Both keep, next to the sessions table ``T``, a table ``T_principals`` with one row per user
that has a principal or sessions::

    user_id text PRIMARY KEY,
    epoch text NULL,        -- NULL: no principal (the row only counts set_user() sessions)
    role text, disabled boolean,
    sessions integer        -- rows of the user in T written by this version (see below)

and give each session row two columns: ``epoch`` (the principal epoch its login began with;
NULL for anonymous and ``session.set_user()`` sessions) and ``version`` (the record format,
:data:`~sessionauth.record.FORMAT_VERSION`; NULL in rows written by sessionauth 0.1, whose
tables are migrated in place by adding the columns). A session is loaded with its principal
by one statement, a ``LEFT JOIN`` on ``user_id``, and :func:`served` decides here whether the
row is a session: the same rule for both databases, kept out of SQL so that it reads once.

``sessions`` is what makes the cap cheap: a login adds one to it in the transaction that
checks the epoch (that update also locks the row against a racing rotation), and only when
it exceeds the cap does the login delete the ``k`` oldest rows through the ``(user_id,
created)`` index, ``LIMIT k``: no count over the user's rows, however many there are. Every
path that deletes rows (logout, purge, eviction, rotation, an expired row replaced) subtracts
the rows it deleted that were counted (``version`` set), in the same transaction. Rows that
an operator deletes by hand make the count too high; an eviction that finds fewer rows than
it looked for knows the login's own row is the user's only one and sets the count to 1.

:func:`encode_cursor` and :func:`decode_cursor` make ``list_user``'s keyset cursor, the
``(created, id)`` of the last session of a page, opaque and checked: anything that does not
decode to such a pair is an empty last page, never an SQL error.
"""

from __future__ import annotations

import base64
import binascii
import math
import re

import msgspec

from sessionauth.principal import Principal
from sessionauth.record import FORMAT_VERSION

__all__ = ["FIRST_PAGE", "decode_cursor", "encode_cursor", "served"]

FIRST_PAGE = (math.inf, "")
"""The keyset position before the newest session: where a page without cursor starts."""

_MAX_ID = 200  # a storage id is 44 characters at most; anything longer is no cursor of ours
_encode_pair = msgspec.json.Encoder().encode
_decode_pair = msgspec.json.Decoder(tuple[float, str]).decode


def served(
    user_id: str | None,
    epoch: str | None,
    version: int | None,
    principal_row: tuple[str | None, str | None, object] | None,
) -> tuple[bool, Principal | None]:
    """Return whether a session row is served, and the principal it is served under.

    Args:
        user_id: The row's user (``None``: anonymous).
        epoch: The row's epoch (``None`` for anonymous and ``set_user()`` sessions).
        version: The row's format version (``None`` for a row written by 0.1).
        principal_row: The joined ``(epoch, role, disabled)`` of ``T_principals`` (``None``
            when the join found no row).

    Returns:
        ``(False, None)`` for a row of another format, a user's row whose principal is
        missing, disabled or has another epoch; ``(True, None)`` for an anonymous or
        ``set_user()`` session; ``(True, principal)`` for a current login.
    """
    if version != FORMAT_VERSION:
        return False, None
    if user_id is None or epoch is None:
        return True, None
    if principal_row is None:
        return False, None
    current, role, disabled = principal_row
    if current is None or role is None or disabled or current != epoch:
        return False, None
    return True, Principal(epoch=current, role=role, disabled=False)


def encode_cursor(created: float, sid: str) -> str:
    """Return the cursor of the page after the session ``sid`` created at ``created``."""
    return base64.urlsafe_b64encode(_encode_pair((created, sid))).decode().rstrip("=")


# A storage id is base64url (a dot after a user's group); a cursor naming anything else (NUL,
# which PostgreSQL refuses in text) is no cursor.
_SID = re.compile(r"[A-Za-z0-9_.-]+")


def decode_cursor(cursor: str | None) -> tuple[float, str] | None:
    """Return the ``(created, id)`` a cursor names, :data:`FIRST_PAGE` for none, else ``None``."""
    if cursor is None:
        return FIRST_PAGE
    if not cursor or len(cursor) > 2 * _MAX_ID or not cursor.isascii():
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        created, sid = _decode_pair(raw)
    except (binascii.Error, ValueError, msgspec.DecodeError):
        return None
    if not math.isfinite(created) or not sid or len(sid) > _MAX_ID or not _SID.fullmatch(sid):
        return None
    return created, sid
