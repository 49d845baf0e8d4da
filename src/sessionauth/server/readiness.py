"""What ``/readyz`` reports besides "the stores answer": named conditions, ok or degraded.

``/readyz`` answers 503 only when a store cannot serve reads (its ``ping`` fails): that worker
should leave the load balancer. Everything else that can go wrong while reads still work is a
*condition* that some component reports here, and makes ``/readyz`` answer 200 with
``{"status": "degraded", "checks": {...}}``: a store-wide problem (a full store, a failing
sweep) must not take every worker out of the load balancer at once.

A component reports under a name of its own (the constants below) each time it learns
something: :meth:`Readiness.ok` or :meth:`Readiness.degraded`, with a reason and any details
worth showing (e.g. the time of the last successful sweep). Adding a condition is one constant
and the calls that report it; ``/readyz`` lists whatever has been reported.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = [
    "ATTEMPT_COUNTER",
    "STORE_WRITES",
    "SWEEP",
    "Condition",
    "Readiness",
    "Status",
]

Status = Literal["ok", "degraded"]

STORE_WRITES = "session_store_writes"
"""The session store refuses writes (``StoreFull``): logins and changes answer 503."""
ATTEMPT_COUNTER = "attempt_counter_writes"
"""The login-attempt counter refuses writes (``StoreFull``): logins answer 503."""
SWEEP = "expired_session_sweep"
"""The background sweep of expired sessions and counters; details: ``last_success``."""


@dataclass(frozen=True, slots=True)
class Condition:
    """The last thing a component reported.

    Attributes:
        status: ``ok`` or ``degraded``.
        since: When the status last changed (POSIX seconds).
        reason: Why it is degraded (empty when ok); secret-free.
        details: Anything else worth showing, JSON-serialisable.
    """

    status: Status
    since: float
    reason: str = ""
    details: dict[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        """Return the condition as ``/readyz`` shows it."""
        shown: dict[str, Any] = {"status": self.status, "since": self.since}
        if self.reason:
            shown["reason"] = self.reason
        shown.update(self.details)
        return shown


class Readiness:
    """The registry of conditions of one process.

    Args:
        clock: Time source for ``since``.
    """

    def __init__(self, clock: Callable[[], float] = time.time):
        self._clock = clock
        self._conditions: dict[str, Condition] = {}

    def ok(self, name: str, **details: Any) -> None:
        """Record that ``name`` works (cheap when nothing changed: safe on a hot path)."""
        current = self._conditions.get(name)
        if current is not None and current.status == "ok" and not details:
            return
        since = current.since if current is not None and current.status == "ok" else self._clock()
        kept = dict(current.details) if current is not None else {}
        kept.update(details)
        self._conditions[name] = Condition("ok", since, details=kept)

    def degraded(self, name: str, reason: str, **details: Any) -> None:
        """Record that ``name`` fails, and why (keeping details reported earlier)."""
        current = self._conditions.get(name)
        since = (
            current.since if current is not None and current.status == "degraded" else self._clock()
        )
        kept = dict(current.details) if current is not None else {}
        kept.update(details)
        self._conditions[name] = Condition("degraded", since, reason, kept)

    def get(self, name: str) -> Condition | None:
        """Return the last report under ``name``, if any."""
        return self._conditions.get(name)

    def report(self) -> dict[str, Any]:
        """Return the body of a 200 ``/readyz``: overall status and every condition."""
        checks = {name: condition.as_json() for name, condition in sorted(self._conditions.items())}
        degraded = any(condition.status == "degraded" for condition in self._conditions.values())
        status: Status = "degraded" if degraded else "ok"
        return {"status": status, "checks": checks}
