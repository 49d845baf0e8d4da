"""Every stored record names the id it was stored under, and is no session under any other.

A store answers ``load(sid)`` with whatever bytes its backend hands back for ``sid``. If those
bytes belong to another id (a reply matched to the wrong request by a driver or a proxy, a
backup restored into the wrong key, a codec bug), the request would be served another user's
session. So each record carries a *binding*: the last :data:`BINDING_LENGTH` characters of its
storage id, written when the record is created and compared when it is read. A storage id is
a SHA-256 digest (:func:`sessionauth.tokens.storage_id`), so its tail is as random as the rest:
64 bits make an accidental match between two live ids vanishingly unlikely, at 12 bytes a
record. The binding is no secret (the id is the handle shown when listing sessions); it is a
check of integrity, not of authenticity.

A record whose binding does not match is treated as no session, and logged as an error with
its id: it means something between the store and its backend is broken.
"""

from __future__ import annotations

import logging
from typing import Any

import msgspec

__all__ = [
    "BINDING_LENGTH",
    "binding",
    "decode_bound_meta",
    "encode_bound_meta",
    "report_unbound",
]

BINDING_LENGTH = 11
"""Characters of the storage id a record keeps (the last ones: 64 bits of its digest)."""

_log = logging.getLogger("sessionauth.stores")

_encode = msgspec.json.Encoder().encode
_decode_meta = msgspec.json.Decoder(tuple[str, dict[str, Any]]).decode


def binding(sid: str) -> str:
    """Return the binding a record stored under ``sid`` carries."""
    return sid[-BINDING_LENGTH:]


def report_unbound(sid: str, bound: object) -> None:
    """Log that the record read under ``sid`` carries ``bound``, another id's binding.

    Readers compare ``bound == sid[-BINDING_LENGTH:]`` themselves (on the hot path a call costs
    more than the comparison) and call this only when the comparison fails.
    """
    _log.error(
        "the record read under session id %s is bound to another id (%r): not served; "
        "the store's backend, or something between it and this process, returned a record "
        "for the wrong key",
        sid,
        bound,
    )


def encode_bound_meta(sid: str, meta: dict[str, Any]) -> str:
    """Encode a record's ``meta`` with its binding, as the SQL stores' ``meta`` column holds it.

    The column holds the JSON array ``[binding, meta]``: the SQL stores write ``meta`` only when
    a record is created, so the binding is fixed for the record's life like the row's id.
    """
    return _encode((binding(sid), meta)).decode()


def decode_bound_meta(sid: str, text: str | bytes) -> dict[str, Any] | None:
    """Return the ``meta`` of a ``meta`` column read under ``sid``, or ``None`` if not sid's.

    ``None`` also for a column that does not decode (corrupt, or written before records were
    bound): either way the record is no session.
    """
    try:
        bound, meta = _decode_meta(text)
    except (msgspec.DecodeError, RecursionError):  # nested deeper than any value written
        return None
    if bound != sid[-BINDING_LENGTH:]:
        report_unbound(sid, bound)
        return None
    return meta
