"""The background sweep of expired sessions and login counters, one process at a time.

SQL stores keep expired rows until something deletes them (Redis expires keys by itself, so
there the sweep has nothing to do and is not started). Every worker runs :func:`run_purger`,
but before each sweep it must win a non-blocking lock, the one its backend provides
(:meth:`sessionauth.backends.Backend.purge_lock`, see :mod:`sessionauth.backends.locks`), so
at most one process sweeps at a time and the others skip that round.

The sweep never dies of a failure: whatever a sweep raises (an outage, a timeout, a dropped
connection, a bug) is logged in one line (the traceback at debug level) and the sweep is
retried after 1, 2, 4… seconds, at most ``interval`` apart. Each outcome goes to ``/readyz``
(the ``expired_session_sweep`` condition, with ``last_success``) and to ``/metrics``.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable

from sessionauth.backends.locks import PurgeLock
from sessionauth.server.metrics import Metrics
from sessionauth.server.readiness import SWEEP, Readiness
from sessionauth.stores.attempts import AttemptCounter
from sessionauth.stores.base import SessionStore
from sessionauth.stores.tokens import TokenStore

__all__ = ["purge_once", "run_purger"]

logger = logging.getLogger("sessionauth.server")


async def purge_once(
    store: SessionStore,
    counter: AttemptCounter | None,
    lock: PurgeLock,
    *,
    tokens: TokenStore | None = None,
) -> int | None:
    """Sweep expired sessions, counters and single-use tokens if this process wins ``lock``.

    Returns:
        How many sessions went, or ``None`` if another process holds the lock.

    Raises:
        StoreUnavailable: If the store, the counter or the lock's backend failed.
    """
    async with lock.hold() as leader:
        if not leader:
            return None
        purged = await store.purge_expired()
        if counter is not None:
            await counter.purge()
        if tokens is not None:
            # Expired tokens are already no tokens: this only reclaims their rows.
            await tokens.purge_expired()
        return purged


def _retry_delay(failures: int, interval: float) -> float:
    """Seconds to wait after the ``failures``-th failure in a row: 1, 2, 4… up to ``interval``."""
    return min(interval, 2.0 ** min(failures - 1, 20))


async def run_purger(
    store: SessionStore,
    counter: AttemptCounter | None,
    lock: PurgeLock,
    interval: float,
    *,
    readiness: Readiness | None = None,
    metrics: Metrics | None = None,
    clock: Callable[[], float] = time.time,
    tokens: TokenStore | None = None,
) -> None:
    """Sweep every ``interval`` seconds (with jitter) until cancelled; survive every failure.

    Args:
        store: The session store to sweep.
        counter: The login-attempt counter to sweep too, if any.
        lock: Decides which process sweeps each round.
        interval: Seconds between sweeps; also the longest wait after a failure.
        readiness: Told the outcome of each sweep (``expired_session_sweep``).
        metrics: Gets the time of the last success and the count of failures.
        clock: Time source for ``last_success``.
        tokens: The single-use token store to sweep too, if any.
    """
    failures = 0
    last_success: float | None = None
    if readiness is not None:
        readiness.ok(SWEEP, last_success=None)
    while True:
        delay = interval if failures == 0 else _retry_delay(failures, interval)
        # Jitter spreads workers that started together, so the lock rarely even contends.
        await asyncio.sleep(delay * random.uniform(0.9, 1.1))  # noqa: S311 - not a secret
        try:
            purged = await purge_once(store, counter, lock, tokens=tokens)
        except Exception as exc:  # logged below: the loop must outlive any one failure
            failures += 1
            reason = f"{type(exc).__name__}: {exc}"
            logger.warning(
                "sweep of expired sessions failed (%d in a row), retrying in %.0f s: %s",
                failures,
                _retry_delay(failures, interval),
                reason,
            )
            logger.debug("sweep failure", exc_info=exc)
            if metrics is not None:
                metrics.sweep_failures.inc()
            if readiness is not None:
                readiness.degraded(SWEEP, reason, last_success=last_success, failures=failures)
            continue
        if failures:
            logger.info("sweep of expired sessions works again after %d failures", failures)
        failures = 0
        if purged is not None:  # None: another process holds the lock and swept this round
            last_success = clock()
            if metrics is not None:
                metrics.sweep_last_success.set(last_success)
            if purged:
                logger.info("purged %d expired sessions", purged)
        if readiness is not None:
            readiness.ok(SWEEP, last_success=last_success, failures=0)
