"""TLS connections to Redis that share one ``SSLContext`` per configuration.

redis-py (5 to 8) builds a new ``ssl.SSLContext`` for every connection it opens, and building
one loads the system's CA store: 20 to 150 ms of CPU on the event loop per connection. A burst
that grows the pool (50 concurrent writes on a fresh store) then stalls every request for
seconds and times the store out. :class:`SharedContextSSLConnection` makes connections with the
same TLS settings share one context (an ``SSLContext`` is meant to be shared).
"""

from __future__ import annotations

from typing import Any

from redis.asyncio.connection import RedisSSLContext, SSLConnection

__all__ = ["SharedContextSSLConnection"]

_SETTINGS = (
    "keyfile",
    "certfile",
    "cert_reqs",
    "include_verify_flags",
    "exclude_verify_flags",
    "ca_certs",
    "ca_data",
    "ca_path",
    "check_hostname",
    "min_version",
    "ciphers",
    "password",
)
_contexts: dict[tuple[Any, ...], RedisSSLContext] = {}


def _key(context: RedisSSLContext) -> tuple[Any, ...]:
    values = (getattr(context, name) for name in _SETTINGS)
    return tuple(tuple(value) if isinstance(value, list) else value for value in values)


class SharedContextSSLConnection(SSLConnection):
    """redis-py's TLS connection, reusing the context of earlier ones with the same settings."""

    def __init__(self, **kwargs: Any):
        super().__init__(**kwargs)
        self.ssl_context = _contexts.setdefault(_key(self.ssl_context), self.ssl_context)
