"""How the PostgreSQL session store reads its rows back.

JSON crosses the wire as text and is encoded and decoded with msgspec (see
:mod:`sessionauth.record`); casting in SQL (``::text``) keeps that independent of any jsonb codec
the owner of an injected pool may have registered. A ``data`` value that is not a JSON object,
or a ``meta`` value that is not bound to the row's id, counts as no session.
"""

from __future__ import annotations

import asyncpg
import msgspec

from sessionauth.backends.binding import decode_bound_meta
from sessionauth.backends.sql_sessions import served
from sessionauth.record import SessionRecord, decode_json

__all__ = ["affected", "to_record"]


def affected(status: str) -> int:
    """Return the row count of a command status such as ``UPDATE 3``."""
    return int(status.rpartition(" ")[2])


def to_record(row: asyncpg.Record, sid: str) -> SessionRecord | None:
    """The served record of a joined row read under ``sid``; ``None`` if it is no session."""
    principal = None if row[9] is None else (row[9], row[10], row[11])
    ok, current = served(row[2], row[7], row[8], principal)
    if not ok:
        return None
    meta = decode_bound_meta(sid, row[1])
    if meta is None:
        return None
    try:
        data = decode_json(row[0])
    except (msgspec.DecodeError, RecursionError):  # nested deeper than any value written
        return None
    return SessionRecord(
        data=data,
        meta=meta,
        user_id=row[2],
        created=row[3],
        seen=row[4],
        issued=row[5],
        expires=row[6],
        epoch=row[7],
        principal=current,
    )
