"""Forwards from a rotated session's old id to its new one, so that ending the old ends the new.

A rotation (:meth:`Session.regenerate`, a renewal) replaces a session's record with one under a
new id. A logout or a revocation that loaded the old record while the rotation ran finds it
gone when it deletes it; with no trace of where the session went, the rotated session would
live on under the cookie the rotating response sets. So a rotation (see
:meth:`SessionMiddleware._create <sessionauth.middleware.SessionMiddleware>`):

1. stores a *forward*: a record under :func:`forward_id` of the old id, holding the new id,
   for :data:`FORWARD_SECONDS` (a forward already there means another request is rotating the
   same session: this one gives way, and the session does not fork);
2. deletes the old record; if it was already gone, the session ended first: it deletes the
   forward and stores nothing;
3. stores the new record, then checks that the forward is still there. Ending a session that
   is already gone (:func:`end_session`) follows its forward, ends the successor and deletes
   the forward; a rotation that finds its forward deleted deletes its new record.

Whichever order the two requests' writes reach the store in, the session ends. A forward is an
anonymous record of the store's ordinary kind, so every store keeps one without knowing what it
is, and expires it like any other. Its id cannot be a cookie's: a storage id is 22 characters,
or 11, a dot and 22, while a forward's id starts with :data:`FORWARD_PREFIX` and has no dot.
"""

from __future__ import annotations

from typing import Final

from sessionauth.record import SessionRecord
from sessionauth.stores.base import SessionStore

__all__ = ["FORWARD_PREFIX", "FORWARD_SECONDS", "end_session", "forward_id", "forward_record"]

FORWARD_PREFIX: Final = "fwd-"
"""What every forward's id starts with."""

FORWARD_SECONDS: Final = 300.0
"""How long a forward lives: far longer than a request that raced the rotation can take."""

_TO = "to"
# A chain of rotations is followed this far: one per rotation that raced the ending request.
_MAX_HOPS = 8


def forward_id(sid: str) -> str:
    """The id of the forward from ``sid`` (a dot-free id: stores keep it as anonymous)."""
    return FORWARD_PREFIX + sid.replace(".", "-")


def forward_record(successor: str, now: float) -> SessionRecord:
    """A forward to ``successor``, stored at ``now``."""
    return SessionRecord(
        data={_TO: successor}, created=now, seen=now, issued=now, expires=now + FORWARD_SECONDS
    )


async def end_session(store: SessionStore, sid: str) -> bool:
    """Delete the session ``sid``, or, if a rotation moved it meanwhile, the session it became.

    Returns whether a record was deleted.
    """
    for _ in range(_MAX_HOPS):
        if await store.delete(sid) is not False:
            return True
        forward = forward_id(sid)
        record = await store.load(forward)
        if record is None:
            return False
        await store.delete(forward)
        successor = record.data.get(_TO)
        if not isinstance(successor, str):
            return False
        sid = successor
    return False
