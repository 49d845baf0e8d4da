"""How the Redis store sends its commands: within the timeout, and acknowledged on Sentinel.

Every operation goes through :class:`Runner`, which turns backend failures into
``StoreUnavailable`` within the store's timeout (:mod:`.errors`) and runs the store's Lua
scripts (:mod:`.scripts`) by their digest. Writes that must survive a Sentinel failover (a
login, a principal change) are followed by ``WAIT`` in the same round trip; too few
acknowledgements raise :class:`Unacknowledged` with the script's reply, so that the caller
decides what to undo, and set :attr:`Runner.acknowledgement_failure`.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any, TypeVar

from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster

from sessionauth.backends.redis import scripts
from sessionauth.backends.redis.codec import to_ms
from sessionauth.backends.redis.errors import guarded

__all__ = ["Runner", "Unacknowledged"]

_T = TypeVar("_T")
_SCRIPTS = (
    scripts.UPDATE,
    scripts.CREATE,
    scripts.DELETE,
    scripts.INSTALL,
    scripts.CHANGE,
    scripts.LIST,
)


class Unacknowledged(Exception):
    """A write fewer replicas than required acknowledged in time.

    Attributes:
        reply: The script's reply (the write was applied on the master).
        acknowledged: How many replicas acknowledged it.
    """

    def __init__(self, reply: Any, acknowledged: int):
        super().__init__(reply, acknowledged)
        self.reply = reply
        self.acknowledged = acknowledged


class Runner:
    """Runs commands and scripts on one client for one Redis view.

    Args:
        client: The redis-py asyncio client (not decoding responses).
        timeout: Seconds an operation may take before it raises ``StoreUnavailable``.
        what: Names the component in error messages.
        server: Names the server in error messages.
        wait_replicas: Replicas that must acknowledge writes run by :meth:`acknowledged`.
        ack_timeout: Seconds to wait for them.
    """

    def __init__(
        self,
        client: Redis | RedisCluster,
        *,
        timeout: float,
        what: str,
        server: str,
        wait_replicas: int,
        ack_timeout: float,
    ):
        self.client = client
        self.timeout = timeout
        self.wait_replicas = wait_replicas
        self.ack_timeout = ack_timeout
        self._what = what
        self._server = server
        self._wait_ms = max(1, to_ms(ack_timeout))
        self._failure: str | None = None
        self._scripts = {source: client.register_script(source) for source in _SCRIPTS}

    async def run(self, operation: Awaitable[_T]) -> _T:
        """Await ``operation`` within the timeout, turning backend failures into ours."""
        return await guarded(operation, timeout=self.timeout, what=self._what, server=self._server)

    async def script(self, source: str, key: bytes, args: list[Any]) -> Any:
        """Run one of :mod:`.scripts` on ``key`` (EVALSHA, loading it if Redis lost it)."""
        return await self.run(self._scripts[source](keys=[key], args=args))

    async def acknowledged(self, source: str, key: bytes, args: list[Any]) -> Any:
        """Run a script, then wait for ``wait_replicas`` acknowledgements if configured.

        Raises:
            Unacknowledged: When too few replicas acknowledged the write in time.
        """
        if self.wait_replicas == 0:
            return await self.script(source, key, args)
        pipe = self.client.pipeline(transaction=False)
        pipe.eval(source, 1, key, *args)
        pipe.wait(self.wait_replicas, self._wait_ms)
        reply, acknowledged = await self.run(pipe.execute())
        if not self.note(acknowledged):
            raise Unacknowledged(reply, acknowledged)
        return reply

    async def ping(self) -> None:
        """``PING``; with ``wait_replicas``, ``WAIT`` instead, noting its acknowledgements."""
        if not self.wait_replicas:
            await self.run(self.client.ping())
            return
        self.note(await self.run(self.client.wait(self.wait_replicas, self._wait_ms)))

    @property
    def acknowledgement_failure(self) -> str | None:
        """Why writes cannot be acknowledged now, or ``None``; set by the last wait."""
        return self._failure

    def note(self, acknowledged: int) -> bool:
        """Record whether ``acknowledged`` replicas are enough; return whether they are."""
        if acknowledged >= self.wait_replicas:
            self._failure = None
            return True
        self._failure = (
            f"logins cannot be acknowledged: {acknowledged} of {self.wait_replicas} replicas "
            f"answered within {self.ack_timeout:g} s"
        )
        return False
