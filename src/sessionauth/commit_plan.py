"""What a request's session needs from the store when its response starts, decided as data.

:func:`plan_commit` turns a session's state (what it was loaded as, what the request did to it),
the clock and the :class:`~sessionauth.policy.TimeoutPolicy` into one :data:`CommitPlan`:

* :class:`Create`: store a new record under a new token's id (a first write, a regeneration, a
  login bound by ``set_user``, a renewal due), deleting the record it ``replaces``; set the
  cookie. The record keeps the session's principal epoch, so a renewal or regeneration is
  refused by the store (create-if-current) once the session was revoked. A renewal leaves a
  forward from the old record to the new one for a short grace (:mod:`sessionauth.forwards`).
* :class:`Adopt`: a login the Authenticator already stored (eagerly, create-if-current): set
  the cookie, delete the record it ``replaces``, write the keys changed after the login.
* :class:`Update`: write only the changed keys of the stored record.
* :class:`Touch`: push the stored record's idle deadline forward (at most once per
  ``touch_interval``).
* :class:`Delete`: delete the stored record, if there is one, and clear the cookie
  (:meth:`Session.destroy`, an emptied session, or a stale cookie naming nothing); a login
  ended this way names its lineage, so that a rotation which replaced the record while the
  request ran ends too (:mod:`sessionauth.lineage`).
* :data:`NOTHING`: leave the store and the cookie alone (most requests).

Nothing here does I/O: :class:`~sessionauth.middleware.SessionMiddleware` runs the plan against
the store and turns it into ``Set-Cookie`` headers. Deciding is pure (randomness, for a token
made here, comes from the injected ``mint``), so every case is one row of a table test.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, replace
from typing import Any, Final

from sessionauth.policy import TimeoutPolicy
from sessionauth.record import CSRF_SEED, RecordUpdate, SessionRecord, is_remembered
from sessionauth.tokens import csrf_seed, new_token, storage_id

__all__ = [
    "FORGET",
    "NOTHING",
    "Adopt",
    "CommitPlan",
    "Create",
    "Delete",
    "Fate",
    "Lineage",
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
class Lineage:
    """A loaded login that a request ends (see :mod:`sessionauth.lineage`).

    Attributes:
        sid: The record the request loaded (and deletes).
        user_id: Its user.
        created: When the login began, as the store gave it: its rotations keep it.
    """

    sid: str
    user_id: str
    created: float


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
        superseded: The record a login of this request replaced, deleted too (``None``: none).
        continues: Whether the new record carries on the session of ``replaces`` (a
            regeneration or a renewal, not a login): it must then not outlive it.
            ``replaces`` is deleted first, and the new record stored only if it was still
            there (no logout, revocation or other rotation landed while this request ran).
        ends: The loaded login a login of this request ended (``None``: none): see
            :class:`Delete`.
        forward: Seconds for which ``replaces`` leads to the new record (a renewal; ``0``:
            no forward): requests still carrying the old cookie are served the new record
            (:mod:`sessionauth.forwards`).
        changes: The keys a renewing request changed (``None``: none): if another request
            renewed the session first, they are written to the record it stored.
    """

    sid: str
    token: str
    record: SessionRecord
    replaces: str | None
    superseded: str | None = None
    continues: bool = False
    ends: Lineage | None = None
    forward: float = 0.0
    changes: RecordUpdate | None = None


@dataclass(frozen=True, slots=True)
class Adopt:
    """A login stored ``sid`` already: set the cookie, delete ``replaces``, write ``update``.

    Attributes:
        sid: The login's record, stored by the Authenticator.
        token: The token the cookie carries from now on.
        created: When the login's lifetime began (the cookie's ``Max-Age`` counts from it).
        replaces: The session the login replaced (deleted now), or ``None``.
        update: Keys the application changed after the login, or ``None``.
        remembered: Whether the login asked to be remembered (a persistent cookie).
        ends: The loaded login this login ended (``None``: none): see :class:`Delete`.
    """

    sid: str
    token: str
    created: float
    replaces: str | None
    update: RecordUpdate | None
    remembered: bool = True
    ends: Lineage | None = None


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
    """Delete the stored record ``sid`` (``None``: nothing is stored) and clear the cookie.

    Attributes:
        sid: The record to delete.
        superseded: The record a login of this request replaced, deleted too (``None``: none).
        ends: The loaded login the request ended (``None``: none). If its record is gone
            when deleted, a rotation replaced it meanwhile: the lineage ends instead.
    """

    sid: str | None
    superseded: str | None = None
    ends: Lineage | None = None


CommitPlan = Nothing | Create | Adopt | Update | Touch | Delete
"""One of the six plans; see the module docstring."""

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
    epoch: str | None = None,
    adopted: bool = False,
    superseded: str | None = None,
    ends: Lineage | None = None,
    forwarded: bool = False,
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
        meta: Facts recorded at login, stored with a created record; whether the session is
            remembered (:func:`sessionauth.record.is_remembered`) picks its absolute timeout.
        now: The current time, POSIX seconds.
        policy: The timeouts.
        stale_cookie: Whether the request sent a session cookie that named no live session.
        mint: Makes a token for a user (``tokens.new_token``; inject one in tests).
        epoch: The session's principal epoch; a record created from the session keeps it.
        adopted: Whether ``sid`` is a login the Authenticator stored during this request
            (its cookie is not set yet).
        superseded: The record such a login replaced (deleted with whatever the plan does).
        ends: The loaded login the request ended (a logout, another login), which the plan
            carries: if its record is gone when deleted, the lineage ends instead.
        forwarded: Whether the request reached the session through a renewal's forward (its
            cookie is the token a renewal replaced): such a request never gives it a new token,
            so no renewal is due, and a regeneration ends the session instead (fail closed:
            the token's holder may be whoever stole it before the renewal).

    Returns:
        The plan; :data:`NOTHING` for a stored session that needs no write.
    """
    empty = not data and user_id is None
    if forwarded and fate is Fate.REGENERATE and sid is not None:
        if user_id is not None and created is not None:
            ends = Lineage(sid, user_id, created)
        return Delete(sid, superseded, ends)
    if fate is Fate.DESTROY or (sid is not None and empty and (changed or deleted)):
        if sid is None and ends is not None and fate is Fate.DESTROY:
            # A logout through a renewal's forward to a record not stored yet: end the login
            # by its lineage (the renewal finds it ended once it stores the record).
            return Delete(ends.sid, superseded, ends)
        return _forget(sid, stale_cookie, superseded, ends)
    if sid is None or fate is not Fate.KEEP:
        if empty and not keep:
            return _forget(sid, stale_cookie, superseded, ends)
        start = now if fate is Fate.RESTART or created is None else created
        plan = _create(token or mint(user_id), sid, user_id, data, meta, start, now, policy, epoch)
        if fate is Fate.REGENERATE and created is not None and plan.replaces is not None:
            # The session's lifetime carries over (no login in this request): it continues.
            plan = replace(plan, continues=True)
        if superseded is not None or ends is not None:
            plan = replace(plan, superseded=superseded, ends=ends)
        return plan
    start = created if created is not None else now
    if adopted:
        # A login stored this record moments ago: nothing is due but the cookie and the keys
        # changed since.
        remembered = is_remembered(meta)
        written = (
            _update(data, changed, deleted, start, now, policy, remembered)
            if changed or deleted
            else None
        )
        return Adopt(sid, token or "", start, superseded, written, remembered, ends)
    if not forwarded and policy.needs_renewal(issued or start, now):
        if CSRF_SEED in meta:  # the CSRF tokens of the pages open in the user's tabs still post
            renewal = _create(
                mint(user_id), sid, user_id, data, meta, start, now, policy, epoch, seeded=True
            )
        else:
            renewal = _create(mint(user_id), sid, user_id, data, meta, start, now, policy, epoch)
        changes = (
            _update(data, changed, deleted, start, now, policy, is_remembered(meta))
            if changed or deleted
            else None
        )
        return replace(renewal, continues=True, forward=policy.renewal_grace, changes=changes)
    if changed or deleted:
        return Update(sid, _update(data, changed, deleted, start, now, policy, is_remembered(meta)))
    if policy.needs_touch(seen or now, now):
        return Touch(sid, now, policy.expires_at(start, now, is_remembered(meta)))
    return NOTHING


def _update(
    data: Mapping[str, Any],
    changed: Collection[str],
    deleted: Collection[str],
    start: float,
    now: float,
    policy: TimeoutPolicy,
    remembered: bool,
) -> RecordUpdate:
    values = {key: data[key] for key in changed}
    expires = policy.expires_at(start, now, remembered)
    return RecordUpdate(set=values, delete=tuple(deleted), seen=now, expires=expires)


def _forget(
    sid: str | None, stale_cookie: bool, superseded: str | None, ends: Lineage | None
) -> CommitPlan:
    """Delete what is stored; clear the cookie if the browser holds one."""
    if sid is not None:
        return Delete(sid, superseded, ends)
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
    epoch: str | None,
    *,
    seeded: bool = False,
) -> Create:
    # Copies: the record may outlive the request (the memory store keeps it as it is). Its
    # CSRF seed is the new token's (Session.bound_secret), but for a renewal that keeps one.
    record = SessionRecord(
        data=dict(data),
        created=created,
        seen=now,
        issued=now,
        expires=policy.expires_at(created, now, is_remembered(meta)),
        user_id=user_id,
        meta=dict(meta) if seeded else {**meta, CSRF_SEED: csrf_seed(token)},
        epoch=epoch,
    )
    sid = storage_id(token)
    return Create(sid, token, record, None if replaces == sid else replaces)
