"""Where security events go: the ``sessionauth.security`` log, then the subscribers.

:class:`EventHub` is the Authenticator's publisher. Every event is written to the
``sessionauth.security`` logger first, by :func:`log_event`, the one place an event becomes a
log line: the message says ``<name> field=value …`` for people, and the same fields ride as
``extra`` for machines (``SESSIONAUTH_LOG_FORMAT=json`` copies them into the JSON object; see
:mod:`sessionauth.server.log_format`). Then each subscriber of the event's type, or of one of
its bases (:class:`~sessionauth.auth.events.AuthEvent` for all of them), gets the event object.
"""

from __future__ import annotations

import dataclasses
import inspect
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from sessionauth.auth.events import AuthEvent

__all__ = ["LOG_FIELD_NAMES", "EventHub", "Hook", "log_event", "log_fields"]

security_log = logging.getLogger("sessionauth.security")

E = TypeVar("E", bound=AuthEvent)

Hook = Callable[[E], Awaitable[None] | None]
"""A subscriber: called with each event of its type; may be sync or async."""

LOG_FIELD_NAMES = {"user_id": "user"}
"""Event attributes whose name in the log differs (``user``, as before events were typed)."""


def log_fields(event: AuthEvent) -> dict[str, Any]:
    """Return the event's fields as they appear in its log line: ``event`` first, then each one."""
    fields: dict[str, Any] = {"event": event.name}
    for field in dataclasses.fields(event):
        fields[LOG_FIELD_NAMES.get(field.name, field.name)] = getattr(event, field.name)
    return fields


def log_event(event: AuthEvent) -> None:
    """Write ``event`` to the ``sessionauth.security`` logger at its level, fields as ``extra``."""
    fields = log_fields(event)
    text = " ".join(f"{key}={value}" for key, value in fields.items() if key != "event")
    security_log.log(event.level, "%s %s", event.name, text, extra=fields)


class EventHub:
    """Delivers each published event to the log and to the subscribers of its type.

    Subscribers of the event's own type run first, then those of its bases, each in the order
    they subscribed and awaited before the next; an exception in one propagates to the
    publisher (a broken metric is a bug to see, not to swallow).
    """

    def __init__(self) -> None:
        self._hooks: dict[type[AuthEvent], list[Hook[Any]]] = {}

    def subscribe(self, kind: type[E], hook: Hook[E]) -> None:
        """Call ``hook`` with every published event that is a ``kind``."""
        self._hooks.setdefault(kind, []).append(hook)

    async def publish(self, event: AuthEvent) -> None:
        """Log ``event``, then hand it to every subscriber of its type and of its bases."""
        log_event(event)
        for kind in type(event).__mro__:
            for hook in self._hooks.get(kind, ()):
                result = hook(event)
                if inspect.isawaitable(result):
                    await result
