"""SessionMiddleware: server-side sessions for any ASGI application, in pure ASGI.

Per HTTP request:

1. Find the session cookie. A missing, malformed, duplicated or forged cookie means no session
   and costs no store call (the MAC is checked first, see :mod:`sessionauth.tokens`).
2. Otherwise load the record in one store round trip; an expired or missing record means no
   session, and the stale cookie is cleared. With renewal on, a cookie a renewal replaced in the
   last ``renewal_grace`` seconds is served the renewed session (:mod:`sessionauth.forwards`).
3. Put a :class:`~sessionauth.session.Session` on ``scope["session"]``, with the request's
   pre-session cookie read (:mod:`sessionauth.presession`), and run the application.
4. When the response starts, run the session's commit plan (:mod:`sessionauth.commit_plan`):
   create (new with values, or regenerated), adopt a login the Authenticator already stored,
   write only the changed keys, a throttled touch, delete (destroyed), or nothing; then set or
   clear the cookie. A renewed or regenerated record keeps the loaded record's principal
   epoch; if the store refuses it (``StaleLogin``: the session was revoked meanwhile), the old
   record is deleted, the cookie cleared and the response served. Nothing is written on a 5xx,
   and nothing at all for a client that only asked for a CSRF token: that sets the
   pre-session cookie instead, which a login clears. A store failure at either end answers
   503 with ``Retry-After`` (the ``on_unavailable`` response): the request fails closed,
   never as a 500, a hang, or an anonymous pass. The one exception is a touch refused by a
   full store (``StoreFull``): the idle deadline can wait, so the response is served and the
   skip reported to ``on_touch_skipped``.

Websocket and lifespan scopes pass through untouched.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterable
from typing import TypeVar

from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sessionauth.commit_plan import (
    NOTHING,
    Adopt,
    CommitPlan,
    Create,
    Delete,
    Lineage,
    Touch,
    Update,
)
from sessionauth.config import CookieConfig
from sessionauth.errors import (
    SessionExists,
    SessionInTransit,
    StaleLogin,
    StoreFull,
    StoreUnavailable,
)
from sessionauth.forwards import (
    MAX_FORWARDS,
    forward_id,
    forward_record,
    forward_update,
    successor_of,
)
from sessionauth.lineage import end_lineage, lineage_ended
from sessionauth.outages import OutageLog
from sessionauth.plain_http import PlainHttpWarning
from sessionauth.policy import Clock, TimeoutPolicy, system_clock
from sessionauth.presession import MAX_AGE, PreSession, sign_nonce, unsign_nonce
from sessionauth.record import REMEMBER, RecordUpdate, SessionRecord, is_remembered
from sessionauth.session import Session
from sessionauth.stores.base import SessionStore
from sessionauth.tokens import COOKIE_VALUE_LENGTHS, Keyring, storage_id

__all__ = ["SessionMiddleware", "UnavailableResponder", "json_unavailable"]

UnavailableResponder = Callable[[Scope, StoreUnavailable], Response]
"""Builds the response sent when the store is unavailable; keep its ``Retry-After``."""

logger = logging.getLogger("sessionauth.store")

_T = TypeVar("_T")

_NO_STORE = (b"cache-control", b"no-store")
_VARY = b"vary"
_CLEARED = "Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT"
_Followed = tuple[str, SessionRecord | None, Lineage | None]
"""What :meth:`SessionMiddleware._follow` found: the record's id, it (if there), its lineage."""
# How long a request reaching a renewal's forward waits for the renewed record (s, in turn).
_SUCCESSOR_WAITS = (0.002, 0.008, 0.032, 0.128)
# Longest Cookie header worth parsing; browsers cap a host's cookies near 4 KiB each.
_MAX_COOKIE_HEADER = 16 * 1024


def json_unavailable(scope: Scope, exc: StoreUnavailable) -> Response:
    """The default 503: ``{"error": ...}`` with ``Retry-After``, never cached."""
    del scope
    return JSONResponse(
        {"error": "Service temporarily unavailable, please retry"},
        503,
        headers={"Retry-After": str(exc.retry_after), "Cache-Control": "no-store"},
    )


def find_cookie(header: str, name: str) -> str | None:
    """Return the value of cookie ``name`` in a ``Cookie`` header, or ``None``.

    ``None`` also when the name appears more than once: two cookies of one name mean a planted
    cookie from a sibling domain or path, and guessing which one is real is how fixation works.
    """
    if name not in header or len(header) > _MAX_COOKIE_HEADER:
        return None
    found: str | None = None
    for part in header.split(";"):
        key, sep, value = part.partition("=")
        if sep and key.strip() == name:
            if found is not None:
                return None
            found = value.strip()
    return found


class SessionMiddleware:
    """Loads, exposes and persists server-side sessions.

    Args:
        app: The ASGI application to wrap.
        store: Where records live.
        keyring: Secrets that sign the cookie.
        cookie: Cookie name and flags; the defaults are the secure ones.
        policy: Idle, absolute and renewal timeouts.
        clock: Time source (inject a fake one in tests).
        store_timeout: An outer bound, in seconds, on each store call. Built-in stores bound
            every operation themselves (their ``timeout``, default 2 s), so the default
            ``None`` adds no second timer to the hot path; set it for a third-party store.
        on_unavailable: Builds the 503 response (the default is JSON).
        on_touch_skipped: Called with the error when a full store refused a touch and the
            request was served anyway (count it: sessions may expire early meanwhile).
        outage_log: Logs store outages as transitions (one line when one begins, one every
            few seconds while it lasts, one when it ends); the default logs to
            ``sessionauth.store``. A full store (reads work, writes fail) has a log of its
            own, ended by the next write that works, so reads do not end it line by line.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        store: SessionStore,
        keyring: Keyring,
        cookie: CookieConfig | None = None,
        policy: TimeoutPolicy | None = None,
        clock: Clock = system_clock,
        store_timeout: float | None = None,
        on_unavailable: UnavailableResponder = json_unavailable,
        on_touch_skipped: Callable[[StoreFull], None] | None = None,
        outage_log: OutageLog | None = None,
    ):
        self.app = app
        self.store = store
        self.keyring = keyring
        self.cookie = cookie or CookieConfig()
        self.policy = policy or TimeoutPolicy()
        self.clock = clock
        self.store_timeout = store_timeout
        self.on_unavailable = on_unavailable
        self.on_touch_skipped = on_touch_skipped
        self.outage_log = outage_log or OutageLog("session store", logger=logger)
        self._full_log = OutageLog("session store writes", logger=self.outage_log.logger)
        self.plain_http = PlainHttpWarning(self.cookie)
        # Only renewals leave forwards: without renewal, a stale cookie costs no second read.
        self._forwards = self.policy.renewal_interval is not None and self.policy.renewal_grace > 0
        self._attributes = self.cookie.attributes()
        self._clear_header = (
            b"set-cookie",
            f"{self.cookie.name}=; {_CLEARED}; {self._attributes}".encode("latin-1"),
        )
        self._presession_name = self.cookie.presession_name.encode("latin-1")
        self._cookie_prefix = f"{self.cookie.name}=".encode("latin-1")
        self._presession_attributes = self.cookie.presession_attributes()
        self._clear_presession = (
            b"set-cookie",
            f"{self.cookie.presession_name}=; {_CLEARED}; {self._presession_attributes}".encode(),
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one ASGI connection; only ``http`` scopes get a session."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        value, presession_sent = self._cookie_value(scope)
        session: Session | None = None
        forwarded = False
        if value is not None:
            token = self.keyring.unsign(value)
            if token is not None:
                # The load, inline rather than in a coroutine of its own: every frame between
                # the task and the store's future is stepped through again when it resumes.
                sid = storage_id(token)
                try:
                    loading = self.store.load(sid)
                    if self.store_timeout is not None:  # _call, inlined
                        loading = self._bounded(loading, self.store_timeout)
                    record = await loading
                    if record is None and self._forwards:
                        followed = await self._follow(sid)
                        if followed is not None:
                            # A renewal moved the session on: its response sets the new cookie,
                            # so this one must not clear it, whatever the forward leads to.
                            sid, record, pending = followed
                            forwarded = True
                except StoreUnavailable as exc:
                    await self._send_unavailable(scope, receive, send, exc)
                    return
                self.outage_log.succeeded()
                # Not is_remembered(): one call fewer on every authenticated request.
                if record is not None and not self.policy.is_expired(
                    record.created,
                    record.seen,
                    self.clock(),
                    record.meta.get(REMEMBER) is not False,
                ):
                    session = Session(
                        record.data,
                        token=token,
                        handle=sid,
                        user_id=record.user_id,
                        created=record.created,
                        seen=record.seen,
                        issued=record.issued,
                        meta=record.meta,
                        epoch=record.epoch,
                        principal=record.principal,
                        policy=self.policy,
                    )
        stale_cookie = value is not None and session is None and not forwarded
        if session is None:
            session = Session(policy=self.policy)
        if forwarded:
            session.mark_forwarded(pending)
        if presession_sent:
            presession = self._presession_value(scope)
            if presession is not None:
                nonce = unsign_nonce(self.keyring, presession, self.clock())
                session.presession = PreSession(nonce=nonce, cookie_sent=True)
        scope["session"] = session
        committer = _Committer(self, scope, receive, send, session, stale_cookie)
        await self.app(scope, receive, committer)

    def _cookie_value(self, scope: Scope) -> tuple[str | None, bool]:
        """Return the session cookie's value, and whether the pre-session cookie may be there.

        One pass over the headers for both: most requests carry no pre-session cookie, and
        should not pay for a second look.
        """
        name = self.cookie.name
        found: str | None = None
        presession = False
        for key, raw in scope["headers"]:
            if key == b"cookie":
                # find(), not `in`: CPython's bytes `in` first tries the operand as an integer,
                # and raises and clears a TypeError for every bytes one (1,800 instructions).
                presession = presession or raw.find(self._presession_name) >= 0
                if (
                    raw.startswith(self._cookie_prefix)
                    and raw.find(b";") < 0
                    and len(raw) <= _MAX_COOKIE_HEADER
                ):
                    # The session cookie alone: what find_cookie returns, without the split.
                    value: str | None = raw[len(self._cookie_prefix) :].decode("latin-1").strip()
                else:
                    value = find_cookie(raw.decode("latin-1"), name)
                if value is not None:
                    if found is not None:  # the same name in two Cookie headers
                        return "", presession
                    found = value
        if found is not None and len(found) not in COOKIE_VALUE_LENGTHS:
            return "", presession  # present but malformed: no session, and clear it
        return found, presession

    def _presession_value(self, scope: Scope) -> str | None:
        """Return the pre-session cookie's value; ``""`` when sent twice (it then verifies nothing).

        Present in any form, the cookie makes a token necessary: a duplicate must not turn a
        client back into a cookieless one. Headers that do not name it are not even decoded.
        """
        name, found = self._presession_name, None
        for key, raw in scope["headers"]:
            if key == b"cookie" and raw.find(name) >= 0:
                for part in raw.split(b";"):
                    cookie, sep, value = part.partition(b"=")
                    if sep and cookie.strip() == name:
                        if found is not None:
                            return ""
                        found = value.strip().decode("latin-1")
        return found

    def _call(self, operation: Awaitable[_T]) -> Awaitable[_T]:
        """Return ``operation``, bounded by ``store_timeout`` if one is set.

        Without one (the default) the store's own awaitable is returned as it is: no extra
        coroutine frame on the hot path.
        """
        if self.store_timeout is None:
            return operation
        return self._bounded(operation, self.store_timeout)

    @staticmethod
    async def _bounded(operation: Awaitable[_T], seconds: float) -> _T:
        try:
            async with asyncio.timeout(seconds):
                return await operation
        except TimeoutError:
            raise StoreUnavailable(f"session store timed out after {seconds:g} s") from None

    def _written(self) -> None:
        """A write worked: the store is up and not full."""
        self.outage_log.succeeded()
        self._full_log.succeeded()

    async def _send_unavailable(
        self, scope: Scope, receive: Receive, send: Send, exc: StoreUnavailable
    ) -> None:
        if isinstance(exc, StoreFull):
            self._full_log.failed(exc)
        elif not isinstance(exc, SessionInTransit):  # a renewal in progress: no outage
            self.outage_log.failed(exc)
        response = self.on_unavailable(scope, exc)
        await response(scope, receive, send)

    def _set_header(
        self, token: str, created: float, now: float, remembered: bool
    ) -> tuple[bytes, bytes]:
        value = self.keyring.sign(token)
        # Not remembered: no Max-Age, so the browser forgets the cookie when it closes; the
        # record's short absolute timeout ends the session even if the browser keeps it.
        if remembered and self.cookie.persistent:
            max_age = max(int(created + self.policy.absolute_timeout - now), 0)
            return (
                b"set-cookie",
                f"{self.cookie.name}={value}; Max-Age={max_age}; {self._attributes}".encode(),
            )
        return (b"set-cookie", f"{self.cookie.name}={value}; {self._attributes}".encode())

    def presession_headers(
        self, presession: PreSession, session: Session
    ) -> list[tuple[bytes, bytes]]:
        """Set a pre-session cookie minted by this request, or clear one a login superseded."""
        if presession.minted and presession.nonce is not None:
            value = sign_nonce(self.keyring, presession.nonce, self.clock())
            cookie = f"{self.cookie.presession_name}={value}; Max-Age={MAX_AGE}; "
            return [(b"set-cookie", (cookie + self._presession_attributes).encode())]
        if presession.cookie_sent and session.user_id is not None:
            return [self._clear_presession]
        return []

    async def _create(self, plan: Create) -> list[tuple[bytes, bytes]]:
        """Store a new record; a refused one (the session was revoked meanwhile) ends it.

        A rotation (``plan.continues``) deletes the old record first and stores the new one
        only if the old one was still there. Otherwise a logout, a revocation or another
        request's rotation landed while this request ran: the session must not live on under
        a new token, nor fork into two, and the response leaves the cookie alone (the request
        that ended or rotated the session set it). Deleting first also keeps the store's
        per-user cap from evicting the very session being rotated (it keeps its ``created``,
        so it is the user's oldest). The price: a store failure between the two writes ends
        the session (the request answers 503), where a login's create would leave it as it was.
        A rotation of a logged-in session then looks for the marker of a logout that loaded the
        session before the old record's delete and ended it after: found, the new record goes
        too and the cookie is cleared (:mod:`sessionauth.lineage` shows why one look suffices).
        """
        forwarded = True
        if plan.forward and plan.replaces is not None:
            forwarded = await self._leave_forward(
                plan.replaces, plan.sid, plan.forward, plan.record
            )
        if (
            plan.continues
            and plan.replaces is not None
            and not await self._end(plan.replaces, plan.ends)
        ):
            if plan.superseded is not None:
                await self._end(plan.superseded, plan.ends)
            if plan.forward and plan.changes is not None:
                # Another request renewed the session first: this one's writes go there.
                await self._write_forwarded(plan.replaces, plan.changes)
            elif not plan.forward and self._forwards:
                # A regeneration that a renewal beat: the old token must still die, so the
                # renewal's forward from it goes.
                await self._call(self.store.delete(forward_id(plan.replaces)))
            self._written()
            return []
        if not forwarded and plan.replaces is not None:
            # Two renewals of one record raced, the other left its forward first and lost the
            # delete (it stores nothing): the forward must lead to the session that lives on.
            repoint = forward_update(plan.sid, self.clock(), plan.forward)
            await self._call(self.store.update(forward_id(plan.replaces), repoint))
        record = plan.record
        try:
            await self._call(self.store.create(plan.sid, record))
        except StaleLogin:
            created = False
        else:
            created = True
        if (
            created
            and plan.continues
            and record.user_id is not None
            and await self._ended(plan.sid, record.user_id, record.created)
        ):
            # A logout that loaded the session before this rotation deleted the old record
            # has ended the login meanwhile: the new record must not outlive it.
            await self._call(self.store.delete(plan.sid))
            created = False
        replaced = None if plan.continues else plan.replaces
        for sid in (replaced, plan.superseded):
            if sid is not None:
                await self._end(sid, plan.ends)
        self._written()
        if not created:
            return [self._clear_header]
        return [
            self._set_header(plan.token, record.created, record.issued, is_remembered(record.meta))
        ]

    async def _follow(self, sid: str) -> _Followed | None:
        """Where renewals moved the record ``sid``: ``(id, record or None, lineage)``.

        ``None``: no forward. Follows up to :data:`~sessionauth.forwards.MAX_FORWARDS`
        forwards (renewals within one grace), stopping at the first live record; the lineage
        is the last forward's (``None`` for an anonymous session).
        """
        followed: _Followed | None = None
        now = self.clock()
        for _ in range(MAX_FORWARDS):
            forward = await self._call(successor_of(self.store, sid, now))
            if forward is None:
                break
            sid = forward.successor
            followed = (sid, await self._call(self.store.load(sid)), forward.lineage)
            if followed[1] is not None:
                return followed
        if followed is not None:
            # The last forward leads to no record: the renewal that left it stores it a moment
            # after (the forward goes first, then the old record's delete, then the create),
            # unless the session ended since. A short wait tells the two apart, and only a
            # request carrying a replaced cookie within the grace ever pays it. A logout that
            # still finds nothing ends the lineage, which the renewal then finds ended.
            for pause in _SUCCESSOR_WAITS:
                await asyncio.sleep(pause)
                record = await self._call(self.store.load(followed[0]))
                if record is not None:
                    return (followed[0], record, followed[2])
        return followed

    async def _write_forwarded(self, sid: str, changes: RecordUpdate | None) -> bool:
        """Write ``changes`` where renewals moved the record ``sid``; ``False``: no forward.

        Raises:
            SessionInTransit: If the forward leads to no record although there are changes to
                write: a 503 the client retries, rather than a 200 that lost them.
        """
        followed = await self._follow(sid)
        if followed is None:
            return False
        successor, current, _ = followed
        if changes is not None:
            if current is None:
                raise SessionInTransit
            await self._call(self.store.update(successor, changes))
        return True

    async def _leave_forward(
        self, old: str, new: str, grace: float, renewed: SessionRecord
    ) -> bool:
        """Store the forward from ``old`` to ``new``; ``False``: another renewal's was first.

        It goes before ``old`` is deleted, so whoever finds ``old`` gone finds the forward.
        """
        record = forward_record(new, self.clock(), grace, renewed)
        try:
            await self._call(self.store.create(forward_id(old), record))
        except SessionExists:
            return False
        return True

    async def _ended(self, sid: str, user_id: str, created: float) -> bool:
        """Whether the lineage of the record just stored under ``sid`` was ended meanwhile.

        If the store fails to say, the record is deleted (as far as the store lets) before
        the 503: its cookie is never sent, and a session nobody holds would only clutter the
        user's list and cap.
        """
        try:
            return await self._call(lineage_ended(self.store, user_id, created))
        except StoreUnavailable:
            with contextlib.suppress(StoreUnavailable):
                await self._call(self.store.delete(sid))
            raise

    async def _end(self, sid: str, ends: Lineage | None) -> bool:
        """Delete the record ``sid``; return whether it was there (``None`` from a store: yes).

        If it was gone and is the login ``ends``, a rotation by another request replaced it
        after this request loaded it, and stored the session anew under the cookie its
        response set: the logout (or the login replacing it) ends that session too, by its
        lineage (:mod:`sessionauth.lineage`).
        """
        present = await self._call(self.store.delete(sid)) is not False
        if not present and ends is not None and ends.sid == sid:
            ending = end_lineage(self.store, ends, self.clock(), self.policy.absolute_timeout)
            await self._call(ending)
        return present

    async def _execute(self, plan: CommitPlan) -> list[tuple[bytes, bytes]]:
        if isinstance(plan, Touch):
            try:
                alive = await self._call(
                    self.store.touch(plan.sid, seen=plan.seen, expires=plan.expires)
                )
            except StoreFull as exc:
                # Only the idle deadline moves: the session stays valid until it, so answering
                # beats a 503 for every signed-in user while the store is full.
                if self.on_touch_skipped is not None:
                    self.on_touch_skipped(exc)
                return []
        elif isinstance(plan, Update):
            alive = await self._call(self.store.update(plan.sid, plan.update))
        elif isinstance(plan, Create):
            return await self._create(plan)
        elif isinstance(plan, Adopt):
            if plan.replaces is not None:
                await self._end(plan.replaces, plan.ends)
            alive = plan.update is None or await self._call(
                self.store.update(plan.sid, plan.update)
            )
            self._written()
            # Revoked between the login and now: the browser gets no cookie for a dead record.
            if not alive:
                return []
            return [self._set_header(plan.token, plan.created, self.clock(), plan.remembered)]
        elif isinstance(plan, Delete):
            for sid in (plan.sid, plan.superseded):
                if sid is not None:
                    await self._end(sid, plan.ends)
            if plan.sid is not None:
                self._written()
            return [self._clear_header]
        else:
            return []
        if not alive and self._forwards:
            # A renewal moved the session on while this request ran? Then its writes go to the
            # renewed record (a touch is moot there), and its cookie stays.
            moved = await self._write_forwarded(
                plan.sid, plan.update if isinstance(plan, Update) else None
            )
            if moved:
                self._written()
                return []
        self._written()
        # A revocation raced this request: the session stays dead and the browser forgets it.
        return [] if alive else [self._clear_header]


def _refuse_in_transit(session: Session, plan: CommitPlan) -> None:
    """Refuse to store a new anonymous session for a request whose forward led to no record.

    Its cookie is one a renewal replaced, and the renewed record was not there (the renewal is
    between its writes, or the session ended since): values written now would start a session
    of their own, whose cookie would replace the renewed one in the browser. A 503 the client
    retries (with the renewed cookie by then) loses nothing.

    Raises:
        SessionInTransit: For such a plan.
    """
    if (
        isinstance(plan, Create)
        and plan.replaces is None
        and plan.record.user_id is None
        and session.forwarded
    ):
        raise SessionInTransit


class _Committer:
    """The ``send`` wrapper: commits the session when the response starts."""

    __slots__ = ("_middleware", "_receive", "_replaced", "_scope", "_send", "_session", "_stale")

    def __init__(
        self,
        middleware: SessionMiddleware,
        scope: Scope,
        receive: Receive,
        send: Send,
        session: Session,
        stale: bool,
    ):
        self._middleware = middleware
        self._scope = scope
        self._receive = receive
        self._send = send
        self._session = session
        self._stale = stale
        self._replaced = False

    def __call__(self, message: Message) -> Awaitable[None]:
        # A plain function returning the awaitable, not a coroutine: a body message goes to the
        # server's send as it is, and so does a start that needs nothing from the store (most
        # requests), with no frame of ours to step through when it is awaited.
        if self._replaced:
            return _dropped()  # the application's response was swapped for a 503
        if message["type"] != "http.response.start":
            return self._send(message)
        session = self._session
        middleware = self._middleware
        added: list[tuple[bytes, bytes]] = []
        if message["status"] < 500:
            # The commit plan is decided here: most requests need nothing from the store, and
            # should not pay for a coroutine that finds that out.
            plan = session.commit_plan(
                middleware.policy, middleware.clock(), stale_cookie=self._stale
            )
            if plan is not NOTHING:
                return self._commit_then_start(message, plan)
            if session.presession is not None:
                added = middleware.presession_headers(session.presession, session)
                if added:
                    middleware.plain_http.check(self._scope)
        return self._start(message, added)

    async def _commit_then_start(self, message: Message, plan: CommitPlan) -> None:
        """Run ``plan`` against the store, then send the start with the headers it adds."""
        middleware = self._middleware
        try:
            _refuse_in_transit(self._session, plan)
            added = await middleware._execute(plan)
        except StoreUnavailable as exc:
            self._replaced = True
            await middleware._send_unavailable(self._scope, self._receive, self._send, exc)
            return
        session = self._session
        if session.presession is not None:
            added += middleware.presession_headers(session.presession, session)
        if added:
            middleware.plain_http.check(self._scope)
        await self._start(message, added)

    def _start(self, message: Message, added: list[tuple[bytes, bytes]]) -> Awaitable[None]:
        """Send the response's start, private if it carries or read anything of the session."""
        session = self._session
        if added or session.accessed or session.handle is not None:
            message["headers"] = _private_headers(message.get("headers", ()), added)
        return self._send(message)


async def _dropped() -> None:
    """What sending a message of a response replaced by a 503 awaits: nothing."""


def _private_headers(
    headers: Iterable[tuple[bytes, bytes]], added: list[tuple[bytes, bytes]]
) -> list[tuple[bytes, bytes]]:
    """Add the session's cookies and mark the response private: ``no-store``, ``Vary: Cookie``."""
    # ASGI header names are lower-case, so exact comparisons suffice.
    out, vary = [], []
    for header in headers:
        name = header[0]
        if name == _VARY:
            vary.append(header[1])
        elif name != b"cache-control":
            out.append(header)
    out.append(_NO_STORE)
    out.append((_VARY, b", ".join([*vary, b"Cookie"]) if vary else b"Cookie"))
    out.extend(added)
    return out
