"""What every command of a small Redis view goes through: a ready client, a deadline, the errors.

The attempt counter and the single-use token store run their own Lua scripts over a shared
client, and need the same three things around them: a ``RedisCluster`` client that learned
the topology before concurrent use, the deadline and error table of
:func:`~sessionauth.backends.redis.errors.guarded`, and closing the clients the view owns.
:class:`ClientGuard` is those three, once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster

from sessionauth.backends.redis.errors import guarded
from sessionauth.backends.redis.urls import RedisClients, server_of
from sessionauth.errors import ConfigurationError

__all__ = ["ClientGuard"]

_T = TypeVar("_T")


class ClientGuard:
    """The connection and outage guard of one Redis view.

    Args:
        client: The view's client (plain, Sentinel-managed or ``RedisCluster``).
        timeout: Seconds an operation may take.
        what: The view's name in outage messages (``"Redis token store"``).
        owner: Clients that :meth:`aclose` closes (``None``: the backend's, left open).

    Raises:
        ConfigurationError: For a timeout that is not a positive number.
    """

    def __init__(
        self,
        client: Redis | RedisCluster,
        *,
        timeout: float,
        what: str,
        owner: RedisClients | None,
    ):
        if not timeout > 0:
            raise ConfigurationError(f"the {what} timeout must be a positive number of seconds")
        self._timeout = timeout
        self._what = what
        self._owned = owner
        self._server = server_of(client)
        # A RedisCluster client must learn the topology before concurrent use: commands racing
        # its lazy initialisation can be sent twice, so 50 concurrent INCRs on a fresh client
        # count 52 (redis-py 8.1; see redis/redis-py#3935). Plain clients need nothing.
        self._cluster = client if isinstance(client, RedisCluster) else None
        self._initialized = self._cluster is None
        self._init_lock = asyncio.Lock()

    async def ready(self) -> None:
        """Let a Cluster client learn the topology, once; call before a view's command."""
        if self._initialized:
            return
        async with self._init_lock:
            if not self._initialized and self._cluster is not None:
                await self.guard(self._cluster.initialize())
                self._initialized = True

    async def guard(self, operation: Awaitable[_T]) -> _T:
        """Await ``operation`` within the deadline; an outage raises ``StoreUnavailable``."""
        return await guarded(operation, timeout=self._timeout, what=self._what, server=self._server)

    async def aclose(self) -> None:
        """Close the clients the view owns, once."""
        owned, self._owned = self._owned, None
        if owned is not None:
            await owned.aclose()
