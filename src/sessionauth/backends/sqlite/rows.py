"""How the SQLite session store writes a session's values and reads a joined row back.

Values are kept as ``{key: [value]}``: each value wrapped in a one-element JSON array. That is
what makes ``update`` a single atomic statement: SQLite's ``json_patch`` (RFC 7396) merges a
patch object into the stored one, where a ``null`` deletes a key and an object merges
recursively. With every value wrapped, a patch entry is either ``[value]``, which replaces the
old value wholesale (``None`` and nested objects included), or ``null``, which deletes the key.
No JSON path is ever built from a key, so keys with dots, quotes, brackets or any other
character need no quoting (SQLite's path syntax cannot even express a key holding a ``"``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import msgspec

from sessionauth.backends.binding import decode_bound_meta
from sessionauth.backends.sql_sessions import served
from sessionauth.record import SessionRecord, decode_json, encode_json

__all__ = ["decode_row", "encode_values"]


def encode_values(values: Mapping[str, Any]) -> str:
    """Encode session values as the ``data`` column holds them (each wrapped in a list)."""
    return encode_json({key: (value,) for key, value in values.items()})


def decode_row(row: Sequence[Any], sid: str) -> SessionRecord | None:
    """The served record of a joined row read under ``sid``; ``None`` if it is no session."""
    data, user_id, created, seen, issued, expires, meta, epoch, version, *principal = row
    meta_values = decode_bound_meta(sid, meta)  # first: another id's row is logged, served or not
    if meta_values is None:
        return None
    joined = None if principal[0] is None else (principal[0], principal[1], principal[2])
    ok, current = served(user_id, epoch, version, joined)
    if not ok:
        return None
    try:
        values = _unwrap(decode_json(data))
    except (msgspec.DecodeError, RecursionError):  # nested deeper than any value written
        return None
    if values is None:
        return None
    return SessionRecord(
        data=values,
        created=created,
        seen=seen,
        issued=issued,
        expires=expires,
        user_id=user_id,
        meta=meta_values,
        epoch=epoch,
        principal=current,
    )


def _unwrap(wrapped: dict[str, Any]) -> dict[str, Any] | None:
    # A value that is not a one-element array was not written by this store: no session.
    values = {}
    for key, box in wrapped.items():
        if type(box) is not list or len(box) != 1:
            return None
        values[key] = box[0]
    return values
