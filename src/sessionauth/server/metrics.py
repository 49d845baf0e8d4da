"""Prometheus metrics for the reference server, each app with its own registry.

Instrumentation is cheap and sits at the edges, never inside the library:

* :meth:`Metrics.on_event` is an :class:`~sessionauth.auth.flows.Authenticator` hook: logins
  by result, revocations of single sessions.
* :class:`TimedStore` wraps the session store, timing every call into a histogram and counting
  the sessions it creates and revokes per user.
* :class:`CountingThrottle` counts logins refused by throttling, whichever route asked.
* The app's responders count CSRF rejections by reason, and requests answered 503 because a
  store failed (``store_errors``: one per failed request, whichever store it was).
* The sweep of expired sessions sets the time of its last success and counts its failures;
  the middleware counts the touches it skipped because the store was full.

:class:`TimedStore` and :class:`CountingThrottle` also report a full store (``StoreFull`` on a
write) to the :class:`~sessionauth.server.readiness.Readiness` behind ``/readyz``, and its end
on the next write that succeeds.

Each process keeps its own counts. With several workers (``sessionauth serve --workers N``),
either scrape each worker, or set ``PROMETHEUS_MULTIPROC_DIR`` to an empty directory before
starting: every worker then writes its samples there and ``/metrics`` reports the sum over all
of them (prometheus-client's multiprocess mode; empty the directory between runs).
"""

from __future__ import annotations

import os
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

from sessionauth.auth.flows import AuthEvent
from sessionauth.auth.throttle import Attempt, LoginThrottle
from sessionauth.errors import StoreFull, TooManyAttempts
from sessionauth.record import RecordUpdate, SessionRecord
from sessionauth.server.readiness import (
    ATTEMPT_COUNTER,
    LOGIN_ACKNOWLEDGEMENT,
    STORE_WRITES,
    Readiness,
)
from sessionauth.stores.attempts import AttemptCounter
from sessionauth.stores.base import SessionStore

__all__ = ["CONTENT_TYPE", "CountingThrottle", "Metrics", "TimedStore"]

CONTENT_TYPE = CONTENT_TYPE_LATEST
"""The media type of the text exposition format."""

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
    "delete_user",
    "update_user",
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
        self._ok = self.logins.labels("ok")
        self._failed = self.logins.labels("failed")
        # Bound once: a labelled child lookup per store call would cost a lock and a dict hit.
        self.timers = {op: self.store_latency.labels(op) for op in _OPERATIONS}

    def on_event(self, event: AuthEvent) -> None:
        """Authenticator hook: count logins and single-session revocations."""
        if event.kind == "login":
            self._ok.inc()
        elif event.kind == "login_failed" and "password-change" not in event.detail:
            self._failed.inc()
        elif event.kind == "revoked" and event.detail == "one":
            # Bulk revocations go through delete_user and are counted by TimedStore.
            self.sessions_revoked.inc()

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
        """Load, timed."""
        return await self._timed("load", lambda: self.inner.load(sid))

    def _report_acknowledgements(self) -> None:
        """Tell the readiness whether replicas acknowledge new sessions (stores that wait)."""
        if self._readiness is None:
            return
        failure = self.inner.acknowledgement_failure
        if failure is not None:
            self._readiness.degraded(LOGIN_ACKNOWLEDGEMENT, failure)
        elif self._readiness.get(LOGIN_ACKNOWLEDGEMENT) is not None:
            self._readiness.ok(LOGIN_ACKNOWLEDGEMENT)

    async def create(self, sid: str, record: SessionRecord) -> None:
        """Create, timed and counted."""
        try:
            await self._written("create", lambda: self.inner.create(sid, record))
        finally:
            self._report_acknowledgements()
        self._metrics.sessions_created.inc()

    async def update(self, sid: str, update: RecordUpdate) -> bool:
        """Update, timed."""
        return await self._written("update", lambda: self.inner.update(sid, update))

    async def touch(self, sid: str, *, seen: float, expires: float) -> bool:
        """Touch, timed."""
        return await self._written(
            "touch", lambda: self.inner.touch(sid, seen=seen, expires=expires)
        )

    async def delete(self, sid: str) -> None:
        """Delete, timed."""
        await self._timed("delete", lambda: self.inner.delete(sid))

    async def list_user(self, user_id: str) -> list[tuple[str, SessionRecord]]:
        """List a user's sessions, timed."""
        return await self._timed("list_user", lambda: self.inner.list_user(user_id))

    async def delete_user(self, user_id: str, *, keep: str | None = None) -> int:
        """Revoke a user's sessions, timed and counted."""
        count = await self._timed("delete_user", lambda: self.inner.delete_user(user_id, keep=keep))
        self._metrics.sessions_revoked.inc(count)
        return count

    async def update_user(self, user_id: str, values: Mapping[str, Any]) -> int:
        """Update a user's sessions, timed."""
        return await self._written("update_user", lambda: self.inner.update_user(user_id, values))

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


class CountingThrottle(LoginThrottle):
    """A :class:`~sessionauth.auth.throttle.LoginThrottle` that counts the logins it refuses.

    Args:
        counter: Where the failure counts live.
        metrics: Where refusals are counted.
        readiness: Told when the counter is full (``StoreFull``) and when it works again.
        **options: The throttle's limits and windows.
    """

    def __init__(
        self,
        counter: AttemptCounter,
        *,
        metrics: Metrics,
        readiness: Readiness | None = None,
        **options: Any,
    ):
        super().__init__(counter, **options)
        self._throttled = metrics.throttled
        self._readiness = readiness

    async def reserve(self, account: str, address: str) -> Attempt:
        """Reserve or refuse as the throttle does, counting each refusal.

        A reservation is the counter's write: a full counter (``StoreFull``) goes to the
        readiness as degraded, and a granted reservation reports it working again.
        """
        try:
            attempt = await super().reserve(account, address)
        except TooManyAttempts:
            self._throttled.inc()
            raise
        except StoreFull as exc:
            if self._readiness is not None:
                self._readiness.degraded(ATTEMPT_COUNTER, f"the counter refuses writes: {exc}")
            raise
        if self._readiness is not None:
            self._readiness.ok(ATTEMPT_COUNTER)
        return attempt
