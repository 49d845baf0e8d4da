"""What a request's session needs from the store when its response starts, decided as data.

:func:`plan_commit` turns a session's state (what it was loaded as, what the request did to it),
the clock and the :class:`~sessionauth.policy.TimeoutPolicy` into one :data:`CommitPlan`:

* :class:`Create`: store a new record under a new token's id (a first write, a regeneration, a
  login, a renewal due), deleting the record it ``replaces``; set the cookie.
* :class:`Update`: write only the changed keys of the stored record.
* :class:`Touch`: push the stored record's idle deadline forward (at most once per
  ``touch_interval``).
* :class:`Delete`: delete the stored record, if there is one, and clear the cookie
  (:meth:`Session.destroy`, an emptied session, or a stale cookie naming nothing).
* :data:`NOTHING`: leave the store and the cookie alone (most requests).

Nothing here does I/O: :class:`~sessionauth.middleware.SessionMiddleware` runs the plan against
the store and turns it into ``Set-Cookie`` headers. Deciding is pure (randomness, for a token
made here, comes from the injected ``mint``), so every case is one row of a table test.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Any, Final

from sessionauth.policy import TimeoutPolicy
from sessionauth.record import RecordUpdate, SessionRecord
from sessionauth.tokens import new_token, storage_id

__all__ = [
    "FORGET",
    "NOTHING",
    "CommitPlan",
    "Create",
    "Delete",
    "Fate",
    "Nothing",
    "Touch",
    "Update",
    "plan_commit",
]


class Fate(enum.Enum):
    """What the request decided about the session's identity (the last call wins)."""

    KEEP = "keep"
    """The token stays (the default)."""
    REGENERATE = "regenerate"
    """A new token, same values and lifetime (:meth:`Session.regenerate`)."""
    RESTART = "restart"
    """A new token and a new lifetime: a login (:meth:`Session.set_user`)."""
    DESTROY = "destroy"
    """Gone: record deleted, cookie cleared (:meth:`Session.destroy`)."""


@dataclass(frozen=True, slots=True)
class Nothing:
    """Leave the store and the cookie alone."""


@dataclass(frozen=True, slots=True)
class Create:
    """Store ``record`` under ``sid`` (the id of ``token``), then delete ``replaces``.

    Attributes:
        sid: The new record's storage id.
        token: The token the cookie carries from now on.
        record: The record to store.
        replaces: The stored record this one supersedes (deleted after the create), or ``None``.
    """

    sid: str
    token: str
    record: SessionRecord
    replaces: str | None


@dataclass(frozen=True, slots=True)
class Update:
    """Write the changed keys of the stored record ``sid``, if it still exists."""

    sid: str
    update: RecordUpdate


@dataclass(frozen=True, slots=True)
class Touch:
    """Move the stored record's activity time and expiry, if it still exists."""

    sid: str
    seen: float
    expires: float


@dataclass(frozen=True, slots=True)
class Delete:
    """Delete the stored record ``sid`` (``None``: nothing is stored) and clear the cookie."""

    sid: str | None


CommitPlan = Nothing | Create | Update | Touch | Delete
"""One of the five plans; see the module docstring."""

NOTHING: Final = Nothing()
"""The plan of most requests, shared: deciding it allocates nothing."""

FORGET: Final = Delete(None)
"""Clear a cookie that names no live session; nothing to delete."""


def plan_commit(
    fate: Fate,
    keep: bool,
    sid: str | None,
    token: str | None,
    user_id: str | None,
    data: Mapping[str, Any],
    changed: Collection[str],
    deleted: Collection[str],
    created: float | None,
    seen: float | None,
    issued: float | None,
    meta: Mapping[str, Any],
    *,
    now: float,
    policy: TimeoutPolicy,
    stale_cookie: bool,
    mint: Callable[[str | None], str] = new_token,
) -> CommitPlan:
    """Decide what the store must do for a session at the end of a request.

    Args:
        fate: What the request decided about the session's identity.
        keep: Whether the session must be stored even if empty (a token bound to it was
            handed out, or :meth:`Session.keep` was called).
        sid: The stored record's id, or ``None`` if the request began without one.
        token: The session's token, or ``None`` if none was made yet.
        user_id: The session's user, or ``None``.
        data: Every value of the session.
        changed: Keys assigned (or marked changed) during the request.
        deleted: Keys deleted during the request.
        created: When the session's lifetime began, or ``None`` if new.
        seen: The stored activity time, or ``None`` if new.
        issued: When the stored token was issued, or ``None`` if new.
        meta: Facts recorded at login, stored with a created record.
        now: The current time, POSIX seconds.
        policy: The timeouts.
        stale_cookie: Whether the request sent a session cookie that named no live session.
        mint: Makes a token for a user (``tokens.new_token``; inject one in tests).

    Returns:
        The plan; :data:`NOTHING` for a stored session that needs no write.
    """
    empty = not data and user_id is None
    if fate is Fate.DESTROY or (sid is not None and empty and (changed or deleted)):
        return _forget(sid, stale_cookie)
    if sid is None or fate is not Fate.KEEP:
        if empty and not keep:
            return _forget(sid, stale_cookie)
        start = now if fate is Fate.RESTART or created is None else created
        return _create(token or mint(user_id), sid, user_id, data, meta, start, now, policy)
    start = created if created is not None else now
    if policy.needs_renewal(issued or start, now):
        return _create(mint(user_id), sid, user_id, data, meta, start, now, policy)
    if changed or deleted:
        values = {key: data[key] for key in changed}
        expires = policy.expires_at(start, now)
        return Update(
            sid, RecordUpdate(set=values, delete=tuple(deleted), seen=now, expires=expires)
        )
    if policy.needs_touch(seen or now, now):
        return Touch(sid, now, policy.expires_at(start, now))
    return NOTHING


def _forget(sid: str | None, stale_cookie: bool) -> CommitPlan:
    """Delete what is stored; clear the cookie if the browser holds one."""
    if sid is not None:
        return Delete(sid)
    return FORGET if stale_cookie else NOTHING


def _create(
    token: str,
    replaces: str | None,
    user_id: str | None,
    data: Mapping[str, Any],
    meta: Mapping[str, Any],
    created: float,
    now: float,
    policy: TimeoutPolicy,
) -> Create:
    # Copies: the record may outlive the request (the memory store keeps it as it is).
    record = SessionRecord(
        data=dict(data),
        created=created,
        seen=now,
        issued=now,
        expires=policy.expires_at(created, now),
        user_id=user_id,
        meta=dict(meta),
    )
    sid = storage_id(token)
    return Create(sid, token, record, None if replaces == sid else replaces)
