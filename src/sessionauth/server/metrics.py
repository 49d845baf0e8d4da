"""Prometheus metrics for the reference server, each app with its own registry.

Instrumentation is cheap and sits at the edges, never inside the library:

* :meth:`Metrics.subscribe` subscribes to the Authenticator's events (see
  :mod:`sessionauth.auth.events`): logins by result, logins refused by throttling (whichever
  route asked), sessions ended by revocation, one or many at a time.
* :class:`TimedStore` wraps the session store, timing every call into a histogram and counting
  the sessions it creates.
* The app's responders count CSRF rejections by reason, and requests answered 503 because a
  store failed (``store_errors``: one per failed request, whichever store it was).
* The sweep of expired sessions sets the time of its last success and counts its failures;
  the middleware counts the touches it skipped because the store was full.

:class:`TimedStore` also reports a full store (``StoreFull`` on a write) to the
:class:`~sessionauth.server.readiness.Readiness` behind ``/readyz``, and its end on the next
write that succeeds (the attempt counter's writes are watched by
:class:`~sessionauth.server.watched_counter.WatchedCounter`).

Each process keeps its own counts. With several workers (``sessionauth serve --workers N``) on
one port a scrape reaches any one of them, so the workers pool their samples in a directory
(prometheus-client's multiprocess mode, :func:`pooled_across_workers`): ``/metrics`` reports
the sum over all of them, whichever answers. ``serve`` makes a fresh directory for each run
(removed at exit) unless ``PROMETHEUS_MULTIPROC_DIR`` names one (empty it between runs).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import TypeVar

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

from sessionauth.auth.event_hub import EventHub
from sessionauth.auth.events import (
    LoginFailed,
    LoginSucceeded,
    LoginThrottled,
    SessionRevoked,
    SessionsRevoked,
)
from sessionauth.errors import StoreFull
from sessionauth.principal import Principal, PrincipalChange
from sessionauth.record import RecordUpdate, SessionRecord
from sessionauth.server.readiness import LOGIN_ACKNOWLEDGEMENT, STORE_WRITES, Readiness
from sessionauth.stores.base import MAX_PAGE, SessionPage, SessionStore

__all__ = ["CONTENT_TYPE", "Metrics", "TimedStore", "pooled_across_workers"]

CONTENT_TYPE = CONTENT_TYPE_LATEST
"""The media type of the text exposition format."""

_MULTIPROC_DIR = "PROMETHEUS_MULTIPROC_DIR"


@contextlib.contextmanager
def pooled_across_workers(workers: int) -> Iterator[None]:
    """While serving with ``workers`` processes, have them pool their metrics.

    Several workers: a fresh directory in ``PROMETHEUS_MULTIPROC_DIR``, which the workers
    inherit and prometheus-client reads when they import it; removed on exit. Without it,
    each scrape got the counts of whichever worker answered, and counters seemed to reset
    between scrapes. One worker, or a directory the operator named: nothing to do.
    """
    if workers == 1 or os.environ.get(_MULTIPROC_DIR):
        yield
        return
    directory = tempfile.mkdtemp(prefix="sessionauth-metrics-")
    os.environ[_MULTIPROC_DIR] = directory
    try:
        yield
    finally:
        del os.environ[_MULTIPROC_DIR]
        shutil.rmtree(directory, ignore_errors=True)


_T = TypeVar("_T")
# Store calls are sub-millisecond on a local backend and bounded by a 2 s timeout.
_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0)
_OPERATIONS = (
    "load",
    "create",
    "update",
    "touch",
    "delete",
    "list_user",
    "principal",
    "install_principal",
    "change_principal",
    "purge_expired",
    "ping",
)


class Metrics:
    """The server's counters and histogram, in a registry of their own.

    Attributes:
        registry: Holds every metric below; ``/metrics`` renders it.
        logins: ``sessionauth_logins_total{result="ok"|"failed"}``.
        throttled: ``sessionauth_login_throttled_total``: logins refused with 429.
        sessions_created: ``sessionauth_sessions_created_total``.
        sessions_revoked: ``sessionauth_sessions_revoked_total``: ended by revocation (password
            change, disable, delete, "sign out other sessions"), not by logout or expiry.
        csrf_rejections: ``sessionauth_csrf_rejections_total{reason}``.
        store_errors: ``sessionauth_store_errors_total``: requests answered 503.
        store_latency: ``sessionauth_store_seconds{operation}``: session store call durations.
        touches_skipped: ``sessionauth_touches_skipped_total``: requests served without moving
            the session's idle deadline because the store was full.
        sweep_last_success: ``sessionauth_sweep_last_success_timestamp_seconds``: when the
            sweep of expired sessions last succeeded (0 before the first success).
        sweep_failures: ``sessionauth_sweep_failures_total``: sweeps that failed.
        mail: ``sessionauth_mail_total{outcome}``: account mail ``sent``, ``retried`` (a try
            failed), ``failed`` (given up) or ``dropped`` (outbox full or stopped).
    """

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        registry = self.registry
        self.logins = Counter(
            "sessionauth_logins", "Login attempts by result.", ["result"], registry=registry
        )
        self.throttled = Counter(
            "sessionauth_login_throttled", "Logins refused by throttling.", registry=registry
        )
        self.sessions_created = Counter(
            "sessionauth_sessions_created", "Session records created.", registry=registry
        )
        self.sessions_revoked = Counter(
            "sessionauth_sessions_revoked", "Sessions ended by revocation.", registry=registry
        )
        self.csrf_rejections = Counter(
            "sessionauth_csrf_rejections",
            "Unsafe requests refused by the CSRF checks.",
            ["reason"],
            registry=registry,
        )
        self.store_errors = Counter(
            "sessionauth_store_errors",
            "Requests answered 503 because a store was unavailable.",
            registry=registry,
        )
        self.store_latency = Histogram(
            "sessionauth_store_seconds",
            "Session store call duration.",
            ["operation"],
            buckets=_BUCKETS,
            registry=registry,
        )
        self.touches_skipped = Counter(
            "sessionauth_touches_skipped",
            "Requests served without a touch because the store was full.",
            registry=registry,
        )
        self.sweep_last_success = Gauge(
            "sessionauth_sweep_last_success_timestamp_seconds",
            "When the sweep of expired sessions last succeeded (POSIX seconds).",
            registry=registry,
            multiprocess_mode="max",
        )
        self.sweep_failures = Counter(
            "sessionauth_sweep_failures",
            "Sweeps of expired sessions that failed.",
            registry=registry,
        )
        self.mail = Counter(
            "sessionauth_mail", "Account mail by outcome.", ["outcome"], registry=registry
        )
        self._ok = self.logins.labels("ok")
        self._failed = self.logins.labels("failed")
        # Bound once: a labelled child lookup per store call would cost a lock and a dict hit.
        self.timers = {op: self.store_latency.labels(op) for op in _OPERATIONS}

    def subscribe(self, events: EventHub) -> None:
        """Count from the Authenticator's events: logins, throttled logins, revocations."""
        events.subscribe(LoginSucceeded, lambda event: self._ok.inc())
        events.subscribe(LoginFailed, lambda event: self._failed.inc())
        events.subscribe(LoginThrottled, lambda event: self.throttled.inc())
        events.subscribe(SessionRevoked, lambda event: self.sessions_revoked.inc())
        events.subscribe(SessionsRevoked, lambda event: self.sessions_revoked.inc(event.count))

    def render(self) -> tuple[bytes, str]:
        """Return the text exposition of every metric, and its media type.

        Under ``PROMETHEUS_MULTIPROC_DIR`` the samples of every worker are merged.
        """
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            from prometheus_client import multiprocess

            merged = CollectorRegistry()
            multiprocess.MultiProcessCollector(merged)  # type: ignore[no-untyped-call]
            return generate_latest(merged), CONTENT_TYPE
        return generate_latest(self.registry), CONTENT_TYPE


class TimedStore(SessionStore):
    """A session store that times each call of the store it wraps.

    Args:
        inner: The real store; it is closed with this one.
        metrics: Where durations and counts go.
        readiness: Told when writes fail for lack of room (``StoreFull``) and when they work,
            and whether replicas acknowledge new sessions (after each login and ping).
    """

    def __init__(self, inner: SessionStore, metrics: Metrics, readiness: Readiness | None = None):
        self.inner = inner
        self._metrics = metrics
        self._timers = metrics.timers
        self._load_timer = metrics.timers["load"]
        self._readiness = readiness

    async def _timed(self, operation: str, call: Callable[[], Awaitable[_T]]) -> _T:
        started = time.perf_counter()
        try:
            return await call()
        finally:
            self._timers[operation].observe(time.perf_counter() - started)

    async def _written(self, operation: str, call: Callable[[], Awaitable[_T]]) -> _T:
        """``_timed`` for a write: a full store, and its recovery, go to the readiness."""
        try:
            result = await self._timed(operation, call)
        except StoreFull as exc:
            if self._readiness is not None:
                self._readiness.degraded(STORE_WRITES, f"the session store refuses writes: {exc}")
            raise
        if self._readiness is not None:
            self._readiness.ok(STORE_WRITES)
        return result

    async def load(self, sid: str) -> SessionRecord | None:
        """Load, timed (``_timed`` inline: every request loads, and a frame less resumes)."""
        started = time.perf_counter()
        try:
            return await self.inner.load(sid)
        finally:
            self._load_timer.observe(time.perf_counter() - started)

    def _report_acknowledgements(self) -> None:
        """Tell the readiness whether replicas acknowledge new sessions (stores that wait)."""
        if self._readiness is None:
            return
        failure = self.inner.acknowledgement_failure
        if failure is not None:
            self._readiness.degraded(LOGIN_ACKNOWLEDGEMENT, failure)
        elif self._readiness.get(LOGIN_ACKNOWLEDGEMENT) is not None:
            self._readiness.ok(LOGIN_ACKNOWLEDGEMENT)

    async def create(self, sid: str, record: SessionRecord) -> Principal | None:
        """Create, timed and counted."""
        try:
            principal = await self._written("create", lambda: self.inner.create(sid, record))
        finally:
            self._report_acknowledgements()
        self._metrics.sessions_created.inc()
        return principal

    async def update(self, sid: str, update: RecordUpdate) -> bool:
        """Update, timed."""
        return await self._written("update", lambda: self.inner.update(sid, update))

    async def touch(self, sid: str, *, seen: float, expires: float) -> bool:
        """Touch, timed."""
        return await self._written(
            "touch", lambda: self.inner.touch(sid, seen=seen, expires=expires)
        )

    async def delete(self, sid: str) -> bool:
        """Delete, timed."""
        return await self._timed("delete", lambda: self.inner.delete(sid))

    async def list_user(
        self, user_id: str, *, limit: int = MAX_PAGE, cursor: str | None = None
    ) -> SessionPage:
        """List a page of a user's sessions, timed."""
        return await self._timed(
            "list_user", lambda: self.inner.list_user(user_id, limit=limit, cursor=cursor)
        )

    async def principal(self, user_id: str) -> Principal | None:
        """Read a principal, timed."""
        return await self._timed("principal", lambda: self.inner.principal(user_id))

    async def install_principal(self, user_id: str, principal: Principal) -> Principal:
        """Install a missing principal, timed."""
        return await self._written(
            "install_principal", lambda: self.inner.install_principal(user_id, principal)
        )

    async def change_principal(
        self, user_id: str, change: PrincipalChange
    ) -> tuple[Principal, int]:
        """Change a principal, timed (revocations are counted from the Authenticator's events)."""
        return await self._written(
            "change_principal", lambda: self.inner.change_principal(user_id, change)
        )

    @property
    def acknowledgement_failure(self) -> str | None:
        """The wrapped store's."""
        return self.inner.acknowledgement_failure

    async def purge_expired(self, *, batch_size: int = 500) -> int:
        """Purge, timed."""
        return await self._timed(
            "purge_expired", lambda: self.inner.purge_expired(batch_size=batch_size)
        )

    async def ping(self) -> None:
        """Ping, timed (a store that waits for replicas also checks they acknowledge)."""
        try:
            await self._timed("ping", self.inner.ping)
        finally:
            self._report_acknowledgements()

    async def aclose(self) -> None:
        """Close the wrapped store."""
        await self.inner.aclose()
