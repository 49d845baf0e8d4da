"""Redis (standalone, TLS, Sentinel, Cluster): one redis-py client per URL, and its views.

Needs the ``redis`` extra; importing this package is what imports redis-py. The session store
and the attempt counter share the backend's client and its connection pool; the session
store's loads also keep one connection of their own (the read pipeline,
:mod:`sessionauth.backends.redis.reads`), by design: it pipelines every request's load.
"""

from __future__ import annotations

from typing import Any

from sessionauth.backends.base import Backend
from sessionauth.backends.redis.attempts import RedisCounter
from sessionauth.backends.redis.errors import guarded
from sessionauth.backends.redis.factors import RedisFactorStore
from sessionauth.backends.redis.sessions import RedisStore
from sessionauth.backends.redis.tokens import RedisTokenStore
from sessionauth.backends.redis.urls import RedisClients, client_from_url, redact, server_of
from sessionauth.backends.urls import pop_query
from sessionauth.errors import ConfigurationError
from sessionauth.policy import Clock, system_clock
from sessionauth.stores.attempts import DEFAULT_PREFIX
from sessionauth.stores.base import DEFAULT_MAX_SESSIONS, DEFAULT_TIMEOUT
from sessionauth.stores.factors import DEFAULT_FACTOR_PREFIX
from sessionauth.stores.tokens import DEFAULT_PREFIX as DEFAULT_TOKEN_PREFIX

__all__ = ["DEFAULT_STORE_PREFIX", "RedisBackend"]

DEFAULT_STORE_PREFIX = "sa:"
"""The session store's key prefix unless the URL or the caller names another."""


class RedisBackend(Backend):
    """A Redis deployment reached through one client (and, for Sentinel, its Sentinels).

    Build it with :meth:`from_url`. The backend owns the client: :meth:`aclose` closes it.

    Args:
        clients: The client built from the URL and what it owns.
        clock: The time source of every view.
        timeout: Seconds an operation may take before it raises ``StoreUnavailable``.
        prefix: The URL's ``?prefix=``: the session store's key prefix, and with
            ``attempts:`` appended the counter's, unless a view is given its own.
        url: The URL, for messages (its password is never shown).
    """

    def __init__(
        self,
        clients: RedisClients,
        *,
        clock: Clock = system_clock,
        timeout: float = DEFAULT_TIMEOUT,
        prefix: str | None = None,
        url: str = "",
    ):
        self.clients = clients
        super().__init__()
        self._clock = clock
        self._timeout = timeout
        self._prefix = prefix
        self._url = url

    @classmethod
    def from_url(
        cls, url: str, *, clock: Clock = system_clock, timeout: float = DEFAULT_TIMEOUT
    ) -> RedisBackend:
        """Build the client for ``url`` (see :mod:`.urls`); nothing connects until first use.

        The URL may carry the key prefix as ``?prefix=app1:`` (default ``sa:``), so several
        deployments or test runs can share one Redis database.

        Raises:
            ConfigurationError: For a URL without a host, an unknown scheme or a bad option.
        """
        url, prefix = pop_query(url, "prefix")
        return cls(
            client_from_url(url, timeout=timeout),
            clock=clock,
            timeout=timeout,
            prefix=prefix,
            url=url,
        )

    @property
    def kind(self) -> str:
        """``"Redis"``."""
        return "Redis"

    def session_store(
        self,
        *,
        owned: bool = False,
        prefix: str | None = None,
        wait_replicas: int | None = None,
        ack_timeout: float | None = None,
        max_sessions: int = DEFAULT_MAX_SESSIONS,
        **options: Any,
    ) -> RedisStore:
        """Return a session store on the client.

        Args:
            owned: Whether closing the store closes this backend's client.
            prefix: Prepended to every key; by default the URL's, else ``sa:``.
            wait_replicas: See :class:`RedisStore`; by default the URL's ``wait_replicas``,
                else 1 for Sentinel URLs and 0 for the others.
            ack_timeout: See :class:`RedisStore`; by default the URL's ``ack_timeout``.
            max_sessions: Live sessions a user may have; a login beyond it ends the oldest.
            **options: Nothing else is accepted (a ``table`` is for SQL stores).

        Raises:
            ConfigurationError: For a bad option (named with the URL it came with).
        """
        if options:
            raise ConfigurationError(f"the Redis store takes no {', '.join(options)} option")
        clients = self.clients
        if wait_replicas is None:
            wait_replicas = clients.wait_replicas
        if wait_replicas is None:
            wait_replicas = 1 if clients.scheme == "redis+sentinel" else 0
        if prefix is None:
            prefix = DEFAULT_STORE_PREFIX if self._prefix is None else self._prefix
        try:
            store = RedisStore(
                clients.client,
                clock=self._clock,
                timeout=self._timeout,
                prefix=prefix,
                wait_replicas=wait_replicas,
                ack_timeout=clients.ack_timeout if ack_timeout is None else ack_timeout,
                max_sessions=max_sessions,
                owner=clients if owned else None,
            )
        except ConfigurationError as exc:
            raise ConfigurationError(f"{exc} (in the Redis URL {redact(self._url)!r})") from exc
        return self._view(store, owned=owned)

    def attempt_counter(
        self, *, owned: bool = False, prefix: str | None = None, **options: Any
    ) -> RedisCounter:
        """Return an attempt counter on the client.

        Args:
            owned: Whether closing the counter closes this backend's client.
            prefix: Prepended to every key. By default the URL's ``?prefix=`` followed by
                ``attempts:`` (one URL names both the sessions and the counters: the store's
                namespace holds both), else :data:`~sessionauth.stores.attempts.DEFAULT_PREFIX`.
            **options: Nothing else is accepted.
        """
        if options:
            raise ConfigurationError(f"the Redis counter takes no {', '.join(options)} option")
        if prefix is None:
            prefix = DEFAULT_PREFIX if self._prefix is None else f"{self._prefix}attempts:"
        counter = RedisCounter(
            self.clients.client,
            clock=self._clock,
            prefix=prefix,
            timeout=self._timeout,
            owner=self.clients if owned else None,
        )
        return self._view(counter, owned=owned)

    def factor_store(
        self, *, owned: bool = False, prefix: str | None = None, **options: Any
    ) -> RedisFactorStore:
        """Return the second-factor store on the client.

        Only for accounts kept in this Redis, as durably: a lost key here lets the account
        in with its password alone. With accounts in SQL, use the SQL backend's
        ``factor_store()`` (see :mod:`sessionauth.backends.redis.factors`).

        Args:
            owned: Whether closing the store closes this backend's client.
            prefix: Prepended to every key. By default the URL's ``?prefix=`` (else ``sa:``)
                followed by ``factors:``, in the session store's namespace.
            **options: Nothing else is accepted.
        """
        if options:
            raise ConfigurationError(f"the Redis factor store takes no {', '.join(options)} option")
        if prefix is None:
            base = DEFAULT_STORE_PREFIX if self._prefix is None else self._prefix
            prefix = base + DEFAULT_FACTOR_PREFIX
        store = RedisFactorStore(
            self.clients.client,
            prefix=prefix,
            timeout=self._timeout,
            owner=self.clients if owned else None,
        )
        return self._view(store, owned=owned)

    def token_store(
        self, *, owned: bool = False, prefix: str | None = None, **options: Any
    ) -> RedisTokenStore:
        """Return the single-use token store on the client.

        Args:
            owned: Whether closing the token store closes this backend's client.
            prefix: Prepended to every key. By default the URL's ``?prefix=`` followed by
                ``tokens:``, else :data:`~sessionauth.stores.tokens.DEFAULT_PREFIX`.
            **options: Nothing else is accepted.
        """
        if options:
            raise ConfigurationError(f"the Redis token store takes no {', '.join(options)} option")
        if prefix is None:
            prefix = DEFAULT_TOKEN_PREFIX if self._prefix is None else f"{self._prefix}tokens:"
        store = RedisTokenStore(
            self.clients.client,
            clock=self._clock,
            prefix=prefix,
            timeout=self._timeout,
            owner=self.clients if owned else None,
        )
        return self._view(store, owned=owned)

    async def ping(self) -> None:
        """Raise ``StoreUnavailable`` unless Redis answers ``PING``."""
        client = self.clients.client
        await guarded(client.ping(), timeout=self._timeout, what="Redis", server=server_of(client))

    async def _close(self) -> None:
        """Close the client (and the Sentinel connections); safe to call twice."""
        await self.clients.aclose()
