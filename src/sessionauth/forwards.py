"""Where a renewed session went: for a short grace, the old cookie leads to the new record.

A renewal (``TimeoutPolicy.renewal_interval``) stores the session under a new token and deletes
the old record. The requests a browser sent before the renewing response came back (a second
tab, a page's parallel fetches, a slow network) still carry the old cookie. Before, each of them
found no session: it answered as signed out and cleared the cookie, and when its response came
last the browser dropped the new cookie as well, so a user was signed out by their own traffic.
A write by a request that loaded the session before the renewal and committed after it was
lost, and its response cleared the cookie too.

So a renewal first stores a *forward*: an anonymous record of the store's ordinary kind, under
an id derived from the old record's (:func:`forward_id`; no cookie names it, that would take a
SHA-256 preimage), holding the new record's id and kept for ``TimeoutPolicy.renewal_grace``
seconds. The forward goes before the old record's delete, so a request that finds the old
record gone always finds the forward. Such a request (its cookie names no record, or its write
finds the record it loaded gone) follows the forward (:func:`successor_of`):

* the new record alive: the request is served it (its writes go there, a logout ends it), and
  the response leaves the cookie alone, since the renewing response sets the new one;
* the new record not there: the request waits a moment for it (up to about 170 ms: the
  renewal stores it right after its delete of the old record), then is served no session,
  and still leaves the cookie alone (whatever ended the session cleared it, or the browser
  holds a newer one); values it writes are refused with a 503 to retry, never lost silently
  nor stored as a session of their own.

Whoever holds a replaced cookie never gets a token of its own: a request that followed a
forward is not renewed, and a :meth:`~sessionauth.session.Session.regenerate` through it ends
the session (fail closed). Only a renewal leaves a forward: a regeneration and a login change
what the session may do, so their old token must die at once, and a regeneration that a
renewal beat to the old record deletes the renewal's forward. The price: a cookie stolen
before a renewal keeps reaching the session for ``renewal_grace`` seconds after it (30 by
default), no longer, and never learns a new token.
"""

from __future__ import annotations

from dataclasses import dataclass

from sessionauth.commit_plan import Lineage
from sessionauth.hmac_sha256 import sha256
from sessionauth.record import RecordUpdate, SessionRecord
from sessionauth.stores.base import SessionStore
from sessionauth.tokens import b64url

__all__ = [
    "MAX_FORWARDS",
    "Forward",
    "forward_id",
    "forward_record",
    "forward_update",
    "successor_of",
]

MAX_FORWARDS = 3
"""How many forwards a request follows (renewals within one grace, with a short interval)."""

_SUCCESSOR = "to"
_USER = "user"
_CREATED = "created"
_DIGEST_BYTES = 16  # as a storage id's: 22 characters, the shape of an anonymous session's id


def forward_id(sid: str) -> str:
    """The id of the forward a renewal of the record ``sid`` leaves.

    Shaped as an anonymous session's storage id (no user, so no listing shows it); unlike one,
    it is not the hash of any token, so no cookie names it.
    """
    return b64url(sha256(f"sessionauth/forward/{sid}".encode()).digest()[:_DIGEST_BYTES])


@dataclass(frozen=True, slots=True)
class Forward:
    """Where a forward leads.

    Attributes:
        successor: The renewed record's id.
        lineage: The login it continues (``None``: an anonymous session): a logout that finds
            no record there yet ends it by its lineage (:mod:`sessionauth.lineage`), which the
            renewal, once it stores the record, finds ended.
    """

    successor: str
    lineage: Lineage | None


def forward_record(
    successor: str, now: float, grace: float, renewed: SessionRecord | None = None
) -> SessionRecord:
    """The forward to ``successor``, kept until ``now + grace``; ``renewed``: its record."""
    data: dict[str, object] = {_SUCCESSOR: successor}
    if renewed is not None and renewed.user_id is not None:
        data |= {_USER: renewed.user_id, _CREATED: renewed.created}
    return SessionRecord(
        data=data,
        created=now,
        seen=now,
        issued=now,
        expires=now + grace,
        user_id=None,
        meta={},
    )


def forward_update(successor: str, now: float, grace: float) -> RecordUpdate:
    """Point a forward at ``successor`` instead (two renewals of one record raced)."""
    return RecordUpdate(set={_SUCCESSOR: successor}, delete=(), seen=now, expires=now + grace)


async def successor_of(store: SessionStore, sid: str, now: float) -> Forward | None:
    """Where a renewal moved the record ``sid``, within its grace; ``None``: no forward.

    The forward's own expiry is checked against ``now`` too: a store whose clock runs behind
    the middleware's must not stretch the grace.
    """
    forward = await store.load(forward_id(sid))
    if forward is None or forward.user_id is not None or forward.expires <= now:
        return None
    successor, user, created = (forward.data.get(k) for k in (_SUCCESSOR, _USER, _CREATED))
    if not isinstance(successor, str):
        return None
    if isinstance(user, str) and isinstance(created, int | float):
        return Forward(successor, Lineage(successor, user, float(created)))
    return Forward(successor, None)
