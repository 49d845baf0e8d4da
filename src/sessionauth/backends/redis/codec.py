"""How the Redis store writes a session record: a msgpack array Redis's Lua can edit.

``[expires ms, created ms, seen - created, issued - created, user id, meta JSON,
{key: value JSON}, binding]``: small integers and strings that Redis's Lua ``cmsgpack``
round-trips exactly, so the scripts of :mod:`sessionauth.backends.redis.scripts` can merge changed
keys into a record without understanding the values (they stay opaque JSON text), and keep the
elements they do not touch. The last element binds the record to its storage id
(:mod:`sessionauth.backends.binding`): a record read under any other id is no session. Nothing is
ever pickled; a record that fails to decode (or was written before records were bound) is no
session.
"""

from __future__ import annotations

from typing import Any

import msgspec

from sessionauth.backends.binding import BINDING_LENGTH, binding, report_unbound
from sessionauth.record import SessionRecord

__all__ = ["decode_record", "encode_record", "to_ms", "value_json"]

_pack = msgspec.msgpack.Encoder().encode
_unpack = msgspec.msgpack.Decoder(list[Any]).decode
value_json = msgspec.json.Encoder().encode
"""Encode one session value (or the meta mapping) as JSON bytes."""
_from_json = msgspec.json.Decoder().decode
_meta_from_json = msgspec.json.Decoder(dict[str, Any]).decode


def to_ms(seconds: float) -> int:
    """Seconds (a float timestamp or duration) as whole milliseconds."""
    return round(seconds * 1000)


def encode_record(record: SessionRecord, sid: str) -> bytes:
    """Return ``record``, to be stored under ``sid``, as the store's msgpack array."""
    created = to_ms(record.created)
    return _pack(
        [
            to_ms(record.expires),
            created,
            to_ms(record.seen) - created,
            to_ms(record.issued) - created,
            record.user_id or "",
            value_json(record.meta).decode() if record.meta else "",
            {key: value_json(value).decode() for key, value in record.data.items()},
            binding(sid),
        ]
    )


def decode_record(blob: bytes, now_ms: int, sid: str) -> SessionRecord | None:
    """Build the record read under ``sid`` from its bytes.

    Returns ``None`` if it expired by ``now_ms``, is corrupt, or is bound to another id.
    """
    try:
        expires, created, seen, issued, user, meta, data, bound = _unpack(blob)
        if bound != sid[-BINDING_LENGTH:]:
            report_unbound(sid, bound)
            return None
        if expires <= now_ms:
            return None
        return SessionRecord(
            # Lua's cmsgpack writes an empty table as an empty array.
            data={key: _from_json(value) for key, value in (data or {}).items()},
            created=created / 1000,
            seen=(created + seen) / 1000,
            issued=(created + issued) / 1000,
            expires=expires / 1000,
            user_id=user or None,
            meta=_meta_from_json(meta) if meta else {},
        )
    except (TypeError, ValueError, AttributeError, msgspec.DecodeError):
        return None
