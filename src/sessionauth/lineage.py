"""Ending a login that a racing rotation carried on under a new id.

A rotation (a renewal due, :meth:`~sessionauth.session.Session.regenerate`) stores the session
under a new token's id and deletes the old record; the new record keeps the old one's
``created``, so a login's records over time form a *lineage*: one user, one ``created``. A
request that ends the login (a logout, another login in the same browser) deletes the record it
loaded. If a rotation by another request (a second tab, a second device of one cookie jar)
replaced that record after the load, the delete finds nothing, and the rotated session would
live on under the cookie the rotating response set, although its user logged out.

So when the delete of the loaded record answers that nothing was there, the ending request
ends the lineage instead: every live session of the user with the same ``created``. Two logins
of one user in the same instant (the store's resolution: a millisecond on Redis) share a
lineage, and end together in this race, never otherwise: the cost of that rare coincidence is a
second sign-in.

What stays uncovered: a logout whose delete and lineage lookup both land between the rotation's
delete of the old record and its store of the new one (two store round trips inside one). The
order the other way round, a logout landing before the rotation's delete, is the rotation's to
notice (:class:`~sessionauth.commit_plan.Create`'s ``continues``).
"""

from __future__ import annotations

from sessionauth.commit_plan import Lineage
from sessionauth.stores.base import SessionStore

__all__ = ["end_lineage"]

_ROUNDS = 4
"""Lookups before giving up on a lineage still rotating: each round follows one more rotation."""


async def end_lineage(store: SessionStore, lineage: Lineage) -> int:
    """Delete every live session continuing ``lineage``; return how many were deleted.

    A session found but gone by the time it is deleted was rotated once more meanwhile: the
    lookup runs again, for at most a few rounds (each needs a request on the newest cookie to
    have rotated it in between).
    """
    ended = 0
    for _ in range(_ROUNDS):
        raced = False
        for handle in await _continuing(store, lineage):
            if await store.delete(handle) is False:
                raced = True
            else:
                ended += 1
        if not raced:
            break
    return ended


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
