"""JSON log lines (``SESSIONAUTH_LOG_FORMAT=json``), one object per line, for log pipelines.

Every record becomes ``{"time", "level", "logger", "message"}``, plus the structured fields a
security event carries (:data:`EVENT_FIELDS`: passed as ``extra=`` by
:func:`~sessionauth.auth.event_hub.log_event` for the Authenticator's events, and by the CSRF
check and the login throttle), so a pipeline can filter on ``event`` and ``user`` without
parsing the message. A traceback, when a
record has one, goes in ``exception``. Nothing secret is ever in these fields: the events
carry user ids, addresses and handles, never a password or a token.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

__all__ = ["EVENT_FIELDS", "JsonFormatter", "formatter", "log_config"]

EVENT_FIELDS = (
    "event",
    "user",
    "address",
    "actor",
    "role",
    "reason",
    "count",
    "why",
    "retry_after",
    "during",
    "detail",
    "method",
    "path",
    "origin",
)
"""The ``extra=`` fields copied into a JSON line when a record has them."""


class JsonFormatter(logging.Formatter):
    """Formats each record as one line of JSON."""

    def format(self, record: logging.LogRecord) -> str:
        """Return the record as a JSON object on one line."""
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in EVENT_FIELDS:
            if name in record.__dict__:
                line[name] = record.__dict__[name]
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str, ensure_ascii=False)


def log_config(base: dict[str, Any], log_format: str) -> dict[str, Any]:
    """Return ``base`` (a ``logging.config.dictConfig`` dict) with JSON formatters if asked.

    Args:
        base: The configuration to adapt (changed in place and returned).
        log_format: ``text`` (``base`` as it is) or ``json`` (every formatter emits JSON).
    """
    if log_format == "json":
        for name in base.get("formatters", {}):
            base["formatters"][name] = {"()": f"{__name__}.JsonFormatter"}
    return base


def formatter(log_format: str, *, use_colors: bool = False) -> logging.Formatter:
    """Return the formatter of ``sessionauth serve``'s lines, for a handler of one's own.

    The ``sessionauth`` command writes its security events with it, so that they read as the
    server's do.

    Args:
        log_format: ``text`` (uvicorn's default formatter: ``WARNING:  role_changed user=…``)
            or ``json`` (:class:`JsonFormatter`).
        use_colors: Colour the level of a text line (for a terminal).
    """
    if log_format == "json":
        return JsonFormatter()
    from uvicorn.config import LOGGING_CONFIG
    from uvicorn.logging import DefaultFormatter

    return DefaultFormatter(LOGGING_CONFIG["formatters"]["default"]["fmt"], use_colors=use_colors)
