"""The session a request sees: a mutable mapping that records what changed.

The middleware builds a :class:`Session` from the stored record (or an empty one) and puts it on
``scope["session"]``, so ``request.session`` works in Starlette and FastAPI. When the response
starts, the middleware asks it for its :meth:`~Session.commit_plan` (see
:mod:`sessionauth.commit_plan`): create, write the changed keys, touch, delete, or nothing.

Assigning or deleting a key is tracked; mutating a stored list or dict in place is not, so call
:meth:`Session.mark_changed` after doing that (as with Django's ``session.modified``).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterator, MutableMapping
from typing import Any

from sessionauth.commit_plan import NOTHING, CommitPlan, Fate, Lineage, plan_commit
from sessionauth.policy import TimeoutPolicy
from sessionauth.presession import PreSession
from sessionauth.principal import Principal
from sessionauth.record import CSRF_SEED, REMEMBER, SessionRecord, is_remembered
from sessionauth.tokens import csrf_seed, new_token
from sessionauth.user_text import user_id_text

__all__ = ["Session"]

# Module constants: the hot path compares identities without an enum attribute lookup.
_KEEP, _REGENERATE, _RESTART, _DESTROY = Fate.KEEP, Fate.REGENERATE, Fate.RESTART, Fate.DESTROY
_DEFAULT_POLICY = TimeoutPolicy()


class Session(MutableMapping[str, Any]):
    """Server-side session state for one request.

    Args:
        data: The stored values (owned by the session from now on).
        token: The session token from the cookie, or ``None`` for a new session (one is made
            when first needed).
        handle: The stored session's handle, or ``None`` for a session not stored yet.
        user_id: The authenticated user, if any.
        created: When the session began (POSIX seconds), or ``None`` if new.
        seen: Last recorded activity, or ``None`` if new.
        issued: When the current token was issued, or ``None`` if new.
        meta: Facts recorded at login (``ip``, ``ua``, ``auth`` time, ``remember``).
        epoch: The principal epoch the stored record carries (``None``: anonymous, or bound by
            :meth:`set_user` without the Authenticator).
        principal: The user's principal as the store read it with the record.
        policy: The timeouts a login record made by :meth:`login_record` gets (the middleware
            passes its own).
    """

    __slots__ = (
        "_accessed",
        "_adopted",
        "_changed",
        "_data",
        "_deleted",
        "_ends",
        "_epoch",
        "_fate",
        "_forwarded",
        "_handle",
        "_keep_empty",
        "_meta",
        "_policy",
        "_presession",
        "_principal",
        "_superseded",
        "_token",
        "_user_id",
        "created",
        "issued",
        "seen",
    )

    def __init__(
        self,
        data: dict[str, Any] | None = None,
        *,
        token: str | None = None,
        handle: str | None = None,
        user_id: str | None = None,
        created: float | None = None,
        seen: float | None = None,
        issued: float | None = None,
        meta: dict[str, Any] | None = None,
        epoch: str | None = None,
        principal: Principal | None = None,
        policy: TimeoutPolicy | None = None,
    ):
        self._data: dict[str, Any] = data if data is not None else {}
        self._token = token
        self._handle = handle
        self._user_id = user_id
        self._meta: dict[str, Any] = meta if meta is not None else {}
        self.created = created
        self.seen = seen
        self.issued = issued
        self._changed: set[str] = set()
        self._deleted: set[str] = set()
        self._accessed = False
        self._fate = _KEEP
        self._keep_empty = False
        self._presession: PreSession | None = None
        self._epoch = epoch
        self._principal = principal
        self._policy = policy
        self._adopted = False
        self._superseded: str | None = None
        self._ends: Lineage | None = None
        self._forwarded = False

    # -- mapping ---------------------------------------------------------------------------

    def __getitem__(self, key: str) -> Any:
        self._accessed = True
        return self._data[key]

    def __setitem__(self, key: str, value: Any) -> None:
        if not isinstance(key, str):
            raise TypeError(f"session keys must be str, not {type(key).__name__}")
        self._accessed = True
        self._data[key] = value
        self._changed.add(key)
        self._deleted.discard(key)

    def __delitem__(self, key: str) -> None:
        self._accessed = True
        del self._data[key]
        self._changed.discard(key)
        self._deleted.add(key)

    def __iter__(self) -> Iterator[str]:
        self._accessed = True
        return iter(self._data)

    def __len__(self) -> int:
        self._accessed = True
        return len(self._data)

    def __contains__(self, key: object) -> bool:
        self._accessed = True
        return key in self._data

    def get(self, key: str, default: Any = None) -> Any:
        """Return the value for ``key``, or ``default``."""
        self._accessed = True
        return self._data.get(key, default)

    def clear(self) -> None:
        """Remove every value; on a logged-in session, end the login.

        This is the common ``session.clear()`` logout: a logged-in session is destroyed (its
        record deleted and its cookie cleared when the response starts, as :meth:`destroy`
        does), an anonymous one emptied this way is deleted when the response starts.
        """
        if self._user_id is not None:
            self.destroy()
            return
        self._accessed = True
        for key in self._data:
            self._deleted.add(key)
        self._data.clear()
        self._changed.clear()

    def __repr__(self) -> str:
        state = "new" if self._handle is None else "stored"
        return f"<Session {state} user={self._user_id!r} keys={sorted(self._data)!r}>"

    # -- identity and lifecycle ------------------------------------------------------------

    @property
    def handle(self) -> str | None:
        """The stored session's revocation handle (not a credential), or ``None`` if new."""
        return self._handle

    @property
    def is_new(self) -> bool:
        """Whether this request started without a stored session."""
        return self._handle is None

    @property
    def user_id(self) -> str | None:
        """The authenticated user's id as the text stores keep, or ``None`` when anonymous.

        The id in the application's ``user_id_type`` comes from the guards
        (:meth:`Guards.user_id <sessionauth.auth.Guards.user_id>`) or the Authenticator
        (:meth:`~sessionauth.auth.Authenticator.session_user_id`).
        """
        self._accessed = True
        return self._user_id

    @property
    def principal(self) -> Principal | None:
        """The user's authorization state, as the store read it with the session; read-only.

        Rights come from here only: ``None`` for an anonymous session and for one bound by
        :meth:`set_user` without the Authenticator (authenticated, no role).
        """
        self._accessed = True
        return self._principal

    @property
    def epoch(self) -> str | None:
        """The principal epoch this session is stamped with (``None``: no principal)."""
        return self._epoch

    @property
    def meta(self) -> dict[str, Any]:
        """Facts recorded at login: ``ip``, ``ua``, ``auth`` (POSIX seconds), ``remember``.

        Read-only; without the CSRF seed, which is no fact about the client.
        """
        return {key: value for key, value in self._meta.items() if key != CSRF_SEED}

    @property
    def remembered(self) -> bool:
        """Whether the login asked to be remembered: a persistent cookie, the long timeout.

        ``False``: a browser-session cookie and the policy's ``short_absolute_timeout``.
        Anonymous sessions, and records stored before remember-me existed, are remembered.
        A regeneration or renewal keeps it; only a new login changes it.
        """
        return is_remembered(self._meta)

    @property
    def modified(self) -> bool:
        """Whether any value was assigned or deleted during this request."""
        return bool(self._changed or self._deleted)

    @property
    def accessed(self) -> bool:
        """Whether the request read or wrote the session (its response must not be cached)."""
        return self._accessed

    def mark_changed(self, key: str) -> None:
        """Record that the value under ``key`` was mutated in place and must be written."""
        if key not in self._data:
            raise KeyError(key)
        self._changed.add(key)

    def keep(self) -> None:
        """Store this session even if it holds no values (used when its token is relied on)."""
        self._keep_empty = True

    def data(self) -> dict[str, Any]:
        """Return a shallow copy of every value, without marking the session as read."""
        return dict(self._data)

    def commit_plan(
        self, policy: TimeoutPolicy, now: float, *, stale_cookie: bool = False
    ) -> CommitPlan:
        """Return what the store must do for this session now that the response starts.

        The middleware calls it once per response and runs the plan (see
        :func:`sessionauth.commit_plan.plan_commit`, which decides it).

        Args:
            policy: The timeouts.
            now: The current time, POSIX seconds.
            stale_cookie: Whether the request's session cookie named no live session.
        """
        if (
            self._fate is _KEEP
            and self._handle is not None
            and not self._changed
            and not self._deleted
            and not self._adopted
            and policy.renewal_interval is None
            and now - (self.seen or now) < policy.touch_interval
        ):
            # Most requests: a stored session, untouched, not due for a touch. The same answer
            # plan_commit gives, without its eighteen arguments.
            return NOTHING
        return plan_commit(
            self._fate,
            self._keep_empty,
            self._handle,
            self._token,
            self._user_id,
            self._data,
            self._changed,
            self._deleted,
            self.created,
            self.seen,
            self.issued,
            self._meta,
            now=now,
            policy=policy,
            stale_cookie=stale_cookie,
            epoch=self._epoch,
            adopted=self._adopted,
            superseded=self._superseded,
            ends=self._ends,
            forwarded=self._forwarded,
        )

    def _current_token(self) -> str:
        """The session token, made now if the session has none yet. Never send it anywhere."""
        if self._token is None:
            self._token = new_token(self._user_id)
        return self._token

    @property
    def forwarded(self) -> bool:
        """Whether this request reached the session through a renewal's forward."""
        return self._forwarded

    def mark_forwarded(self, pending: Lineage | None = None) -> None:
        """Note that this request reached the session through a renewal's forward (middleware).

        Its cookie is the token a renewal replaced (:mod:`sessionauth.forwards`): whoever holds
        it is served the session for the grace but never given a new token, so the session
        is not renewed from here, and a :meth:`regenerate` ends it instead. ``pending``: the
        login the forward leads to when its record is not stored yet, which a :meth:`destroy`
        of this (so far anonymous) session ends by its lineage.
        """
        self._forwarded = True
        if pending is not None and self._handle is None and self._ends is None:
            self._ends = pending

    def bound_secret(self, key: bytes) -> bytes:
        """Return ``HMAC-SHA256(key, seed)``: a secret tied to this session.

        The seed (:data:`~sessionauth.record.CSRF_SEED`) is a hash of the token the session
        was stored under at its login, regeneration or first write, and a renewal keeps it:
        CSRF tokens are derived this way, so they need no storage, change at login and
        regeneration, and survive a renewal. A stored record without a seed (written before
        seeds) is bound to its token, as it was. Asking for one keeps even an empty session
        alive, since the browser will come back with something bound to it.
        """
        self._accessed = True
        self._keep_empty = True
        if self._fate is _KEEP and self._handle is not None:
            seed = self._meta.get(CSRF_SEED)
            # Without one: a record stored before seeds, whose tokens were bound to the token.
            material = seed if isinstance(seed, str) else self._current_token()
        else:  # stored anew when the response starts, with the seed of its new token
            material = csrf_seed(self._current_token())
        return hmac.new(key, material.encode("ascii"), hashlib.sha256).digest()

    @property
    def presession(self) -> PreSession | None:
        """The request's pre-session (see :mod:`sessionauth.presession`), if it has one.

        The middleware sets it when the request carries the cookie; :meth:`presession_secret`
        makes one when a token is handed out without a session. ``None`` otherwise (most
        requests), which costs nothing on the hot path.
        """
        return self._presession

    @presession.setter
    def presession(self, value: PreSession | None) -> None:
        self._presession = value

    @property
    def will_be_stored(self) -> bool:
        """Whether the session is stored, or will be when the response starts.

        False for an anonymous visitor who wrote nothing: what it is handed (a CSRF token) must
        then not depend on a record, since none will exist.
        """
        return (
            self._handle is not None
            or self._keep_empty
            or bool(self._data)
            or self._user_id is not None
        )

    def presession_secret(self, key: bytes) -> bytes:
        """Return ``HMAC(key, pre-session nonce)``, making the nonce (and cookie) if needed.

        CSRF tokens of a session that is not stored are derived this way: nothing is stored,
        the middleware sets the pre-session cookie instead.
        """
        self._accessed = True
        if self._presession is None:
            self._presession = PreSession()
        secret = self._presession.secret(key, mint=True)
        assert secret is not None  # noqa: S101 - minted above when missing
        return secret

    def regenerate(self) -> None:
        """Switch to a new token now and delete the old record when the response starts.

        Values stay. Call it whenever privilege changes (login, role change, password change)
        so that a token an attacker planted or observed before the change is worthless after.
        """
        self._accessed = True
        if self._fate is not _RESTART:  # a login stays a login
            self._fate = _REGENERATE
        # A logged-in session's token names the user's group, so stores can group by user.
        self._token = new_token(self._user_id)

    def set_user(
        self,
        user_id: int | str | None,
        *,
        meta: dict[str, Any] | None = None,
        remember: bool = False,
    ) -> None:
        """Bind the session to ``user_id`` (``None``: anonymous) and regenerate it.

        The user is part of the record's identity, so it only ever changes together with the
        token: there is no way to authenticate an existing token in place (session fixation).

        Args:
            user_id: The user the session now belongs to, an ``int`` or a ``str``; the
                session keeps it as text (:attr:`user_id` is ``"42"`` after ``set_user(42)``).
            meta: Facts about the login (``ip``, ``ua``, ``auth``) to store with the record.
            remember: "Keep me signed in": a persistent cookie and the policy's
                ``absolute_timeout``. ``False`` (the default): a browser-session cookie and
                its ``short_absolute_timeout``.

        Raises:
            ValueError: For an id no store can keep (see
                :func:`~sessionauth.user_text.user_id_text`): nothing changes.
            TypeError: For an id neither ``int`` nor ``str``.
        """
        user = None if user_id is None else user_id_text(user_id)
        self._end_loaded_login()
        self._user_id = user
        self._meta = {**(meta or {}), REMEMBER: remember}
        # Bound without the Authenticator: no principal, so no role (see ``principal``).
        self._epoch = None
        self._principal = None
        self._fate = _RESTART
        self.regenerate()

    def login_record(
        self, user_id: str, *, token: str, meta: dict[str, Any], epoch: str, now: float
    ) -> SessionRecord:
        """Return the record a login of ``user_id`` at ``now`` stores under ``token``'s id.

        The Authenticator's part of a login; the record's CSRF seed is ``token``'s.

        Values of an anonymous session (a cart) and of the same user's session carry over;
        another user's do not, so a shared browser never hands one user's data to the next.
        ``meta`` holds :data:`~sessionauth.record.REMEMBER`, which picks the absolute timeout.
        """
        policy = self._policy or _DEFAULT_POLICY
        data = dict(self._data) if self._user_id in (None, user_id) else {}
        return SessionRecord(
            data=data,
            created=now,
            seen=now,
            issued=now,
            expires=policy.expires_at(now, now, is_remembered(meta)),
            user_id=user_id,
            meta={**meta, CSRF_SEED: csrf_seed(token)},
            epoch=epoch,
        )

    def adopt(self, token: str, sid: str, record: SessionRecord, principal: Principal) -> None:
        """Become the session a login stored under ``sid`` (the id of ``token``).

        The store already holds ``record`` (created eagerly, only if ``principal``'s epoch was
        current): when the response starts the middleware sets the cookie, deletes the record
        this one replaces, and writes only keys changed after the login.
        """
        self._accessed = True
        self._end_loaded_login()
        if not self._adopted:
            self._superseded = self._handle
        self._adopted = True
        self._fate = _KEEP
        self._keep_empty = False
        self._token = token
        self._handle = sid
        self._user_id = record.user_id
        self._data = dict(record.data)
        self._meta = dict(record.meta)
        self.created, self.seen, self.issued = record.created, record.seen, record.issued
        self._changed.clear()
        self._deleted.clear()
        self._epoch = record.epoch
        self._principal = principal

    def restamp(self, principal: Principal) -> None:
        """Follow a rotation that kept this session: its record now has ``principal``'s epoch.

        A regeneration or renewal later in the same request then stores the new epoch.
        """
        self._epoch = principal.epoch
        self._principal = principal

    def _end_loaded_login(self) -> None:
        """Note that this request ends the login it loaded, if it loaded one.

        Its record is deleted when the response starts; a rotation racing this request may
        have replaced it by then, and what continues it must end too (:mod:`sessionauth.lineage`).
        Only the identity as loaded counts: not a login of this request, nor a second ending.
        """
        if (
            self._ends is None
            and self._user_id is not None
            and self.created is not None
            and self._handle is not None
            and not self._adopted
            and self._fate is not _RESTART
        ):
            self._ends = Lineage(self._handle, self._user_id, self.created)

    def destroy(self) -> None:
        """Delete the session from the store and expire the cookie when the response starts."""
        self._accessed = True
        self._end_loaded_login()
        self._fate = _DESTROY
        self._keep_empty = False
        self._user_id = None
        self._meta = {}
        self._epoch = None
        self._principal = None
        self._data.clear()
        self._changed.clear()
        self._deleted.clear()
