"""Ending a login that a racing rotation carried on under a new id.

A rotation (a renewal due, :meth:`~sessionauth.session.Session.regenerate`) stores the session
under a new token's id and deletes the old record; the new record keeps the old one's
``created``, so a login's records over time form a *lineage*: one user, one ``created``. A
request that ends the login (a logout, another login in the same browser) deletes the record it
loaded. If a rotation by another request (a second tab, or a thief holding the same cookie)
replaced that record after the load, the delete finds nothing, and the rotated session would
live on under the cookie the rotating response set, although its user logged out.

Two writes and two reads close that race on any store whose operations are linearizable (each
takes effect at one instant between its call and its answer, as on one Redis, PostgreSQL's
committed transactions, SQLite and the memory store):

* The ending request, finding its record gone, first stores a *marker* for the lineage
  (:func:`end_lineage`): an anonymous record of the store's ordinary kind, under an id derived
  from the user and ``created`` (:func:`marker_id`), which no cookie can name (that would take a
  SHA-256 preimage). Then it lists the user's sessions and deletes those of the lineage.
* A rotation of a logged-in session, once its new record is stored, looks for the marker
  (:func:`lineage_ended`); if it is there, the rotation deletes its new record and clears the
  cookie.

Whichever of the marker and the new record is stored first, the other request sees it: the
rotation finds the marker, or the listing finds the new record. A thief rotating over and over
gains nothing: every rotation after the marker ends itself. The marker lasts as long as a
session of the lineage could: one small record per login ended in this race.

Two logins of one user in the same instant (the store's resolution: a millisecond on Redis)
share a lineage: a request ending one of them whose record is already gone (a rotation, but
also a second click on logout, or a revocation at the same moment) ends the other too, and
its rotations then end themselves. Parallel logins of one account (an API client's workers)
can meet this; a second sign-in is the cost. A random lineage id in the record would remove
it, at a few bytes per session.

Not covered: an ending request that never loaded the record (its cookie already named nothing
when it arrived: there is no lineage to know), and one retried after a 503 (the retry's cookie
names nothing any more).
"""

from __future__ import annotations

import contextlib

from sessionauth.commit_plan import Lineage
from sessionauth.errors import SessionExists
from sessionauth.hmac_sha256 import sha256
from sessionauth.record import SessionRecord
from sessionauth.stores.base import SessionStore
from sessionauth.tokens import b64url

__all__ = ["MARKER_LIFETIME", "end_lineage", "lineage_ended", "marker_id"]

MARKER_LIFETIME = 600.0
"""The least time, in seconds, an ended lineage's marker is kept (a rotation looks for it one
store call after its write); it is kept as long as a session of the lineage could live."""

_DIGEST_BYTES = 16  # as a storage id's: 22 characters, the shape of an anonymous session's id


def marker_id(user_id: str, created: float) -> str:
    """The id of the marker that ends the lineage ``(user_id, created)``.

    Shaped as an anonymous session's storage id (no group, so no user's listing shows it);
    unlike one, it is not the hash of any token, so no cookie names it.
    """
    name = f"sessionauth/ended-lineage/{created!r}/{user_id}".encode()
    return b64url(sha256(name).digest()[:_DIGEST_BYTES])


async def end_lineage(
    store: SessionStore, lineage: Lineage, now: float, absolute_timeout: float
) -> int:
    """Mark ``lineage`` ended, then delete its live sessions; return how many were deleted.

    The marker goes first: a rotation storing a new record after this listing finds it (see
    the module docstring). A marker already there (two requests ending one lineage) is fine.
    It lasts as long as any session of the lineage could (``absolute_timeout`` after the
    login), at least :data:`MARKER_LIFETIME`: so a listing that failed (the request answers
    503) still ends the lineage at its next rotation, and clocks that disagree by minutes
    between workers and the store do not expire it early.
    """
    expires = max(now + MARKER_LIFETIME, lineage.created + absolute_timeout)
    marker = SessionRecord(
        data={},
        created=now,
        seen=now,
        issued=now,
        expires=expires,
        user_id=None,
        meta={},
    )
    with contextlib.suppress(SessionExists):  # another request ended the lineage too
        await store.create(marker_id(lineage.user_id, lineage.created), marker)
    ended = 0
    for handle in await _continuing(store, lineage):
        if await store.delete(handle) is not False:
            ended += 1
    return ended


async def lineage_ended(store: SessionStore, user_id: str, created: float) -> bool:
    """Whether a request ended the lineage ``(user_id, created)`` in the last minutes."""
    return await store.load(marker_id(user_id, created)) is not None


async def _continuing(store: SessionStore, lineage: Lineage) -> list[str]:
    """The handles of ``lineage.user_id``'s live sessions that began at ``lineage.created``."""
    handles: list[str] = []
    cursor: str | None = None
    while True:
        page = await store.list_user(lineage.user_id, cursor=cursor)
        handles.extend(
            handle for handle, record in page.sessions if record.created == lineage.created
        )
        cursor = page.next_cursor
        if cursor is None:
            return handles
