"""How the Redis store writes a session record and a group's principals: msgpack Lua can edit.

A record is the array::

    [version, created ms, expires - created, seen - created, issued - created, user id,
     meta JSON, {key: value JSON}, binding, epoch, sequence]

small integers and strings that Redis's Lua ``cmsgpack`` round-trips exactly, so the scripts of
:mod:`sessionauth.backends.redis.scripts` can merge changed keys into a record without
understanding the values (they stay opaque JSON text), and keep the elements they do not touch.

* ``version`` is :data:`sessionauth.record.FORMAT_VERSION`; a record of any other version is no
  session. sessionauth 0.1 wrote an 8-element array without it (``[expires, created, ...,
  binding]``): it fails to decode here and in the scripts, which is how 0.1 sessions end.
* Times are milliseconds; all but ``created`` are stored relative to it, which keeps them in
  5 bytes of msgpack rather than 9 (a tutorial session must fit a 200-byte budget).
* ``binding`` is the last characters of the storage id (:mod:`sessionauth.backends.binding`):
  a record read under any other id is no session. The hash field holds the first characters
  of the digest (:meth:`~sessionauth.backends.redis.keys.SessionKeys.locate`), so field and
  binding together check all of it.
* ``epoch`` is the principal epoch the login began with (``""``: none, for an anonymous session
  or one bound by ``session.set_user()``); ``sequence`` is the record's place in its user hash's
  creation order (0 for an anonymous one), the key of its index entry.

A user hash's principals (field ``p``) are the map ``{user id: [epoch, role, disabled]}``: two
users may share a hash (:func:`sessionauth.tokens.user_group`). Nothing is ever pickled; a
record that fails to decode is no session.
"""

from __future__ import annotations

from typing import Any

import msgspec

from sessionauth.backends.binding import BINDING_LENGTH, binding, report_unbound
from sessionauth.principal import Principal
from sessionauth.record import FORMAT_VERSION, SessionRecord

__all__ = [
    "decode_principal",
    "decode_record",
    "encode_record",
    "to_ms",
    "value_json",
]

_pack = msgspec.msgpack.Encoder().encode
_unpack = msgspec.msgpack.Decoder(list[Any]).decode
_unpack_principals = msgspec.msgpack.Decoder(dict[str, tuple[str, str, bool]]).decode
# Principals maps by their bytes: every request of a user reads the same few bytes, and a
# Principal built once (it is frozen) spares each load the decode (see benchmarks/hot_path.py).
_principals_seen: dict[bytes, dict[str, Principal]] = {}
_PRINCIPALS_KEPT = 1024
value_json = msgspec.json.Encoder().encode
"""Encode one session value (or the meta mapping) as JSON bytes."""
_from_json = msgspec.json.Decoder().decode
_meta_from_json = msgspec.json.Decoder(dict[str, Any]).decode


def to_ms(seconds: float) -> int:
    """Seconds (a float timestamp or duration) as whole milliseconds."""
    return round(seconds * 1000)


def encode_record(record: SessionRecord, sid: str) -> bytes:
    """Return ``record``, to be stored under ``sid``, as the store's msgpack array.

    The sequence is 0: the create script gives a user's record its place.
    """
    created = to_ms(record.created)
    return _pack(
        [
            FORMAT_VERSION,
            created,
            to_ms(record.expires) - created,
            to_ms(record.seen) - created,
            to_ms(record.issued) - created,
            record.user_id or "",
            value_json(record.meta).decode() if record.meta else "",
            {key: value_json(value).decode() for key, value in record.data.items()},
            binding(sid),
            record.epoch or "",
            0,
        ]
    )


def decode_record(blob: bytes, now_ms: int, sid: str) -> SessionRecord | None:
    """Build the record read under ``sid`` from its bytes (without its principal).

    Returns ``None`` if it expired by ``now_ms``, is corrupt, has another format version, or
    is bound to another id.
    """
    try:
        version, created, expires, seen, issued, user, meta, data, bound, epoch, _ = _unpack(blob)
        if version != FORMAT_VERSION:
            return None
        if bound != sid[-BINDING_LENGTH:]:
            report_unbound(sid, bound)
            return None
        if created + expires <= now_ms:
            return None
        return SessionRecord(
            # Lua's cmsgpack writes an empty table as an empty array.
            data={key: _from_json(value) for key, value in data.items()} if data else {},
            created=created / 1000,
            seen=(created + seen) / 1000,
            issued=(created + issued) / 1000,
            expires=(created + expires) / 1000,
            user_id=user or None,
            meta=_meta_from_json(meta) if meta else {},
            epoch=epoch or None,
        )
    except (TypeError, ValueError, AttributeError, RecursionError, msgspec.DecodeError):
        return None  # RecursionError: JSON nested deeper than any value this store wrote


def decode_principal(blob: bytes | None, user_id: str) -> Principal | None:
    """Return the principal of ``user_id`` in a principals map (field ``p``), or ``None``.

    ``None`` also for a map that fails to decode: no principal means no rights.
    """
    if blob is None:
        return None
    principals = _principals_seen.get(blob)
    if principals is None:
        try:
            principals = {
                user: Principal(epoch=epoch, role=role, disabled=disabled)
                for user, (epoch, role, disabled) in _unpack_principals(blob).items()
            }
        except msgspec.DecodeError:  # also Lua's empty table, an empty array
            return None
        if len(_principals_seen) >= _PRINCIPALS_KEPT:
            _principals_seen.clear()
        _principals_seen[blob] = principals
    return principals.get(user_id)
