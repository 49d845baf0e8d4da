"""The Redis session store: one key per user holding all of that user's sessions.

Layout, under a key prefix (``sa:`` by default)::

    {prefix}u:{group}   HASH: one field per logged-in session (the digest part of its id),
                        holding the session's record; PEXPIREAT at the latest session expiry
    {prefix}a:{digest}  STRING: an anonymous session's record; PEXPIREAT at its expiry

A logged-in session's token names its user's *group* (:func:`sessionauth.tokens.user_group`), so
the store finds the user's hash from the session id alone. Keeping a user's sessions in one key
is what makes this store small and exact:

* ``load`` is one ``HGET`` (or ``GET``), the only store call most requests make. Loads are
  pipelined on a connection of their own (:class:`~sessionauth.backends.redis.reads.ReadPipeline`).
* There is no separate per-user index to keep in step: listing a user's sessions is one
  ``HGETALL``; revoking them all (or all but one) and changing a value in all of them are one
  script each, atomic on one key, so they can never miss a session created or written at the
  same moment. Everything works on Redis Cluster, where a script reaches one slot only.
* ``update`` and ``touch`` are one script call each: it writes only if the session still exists
  and has not expired by the store's clock, so a write racing a logout or a revocation never
  brings the session back. Changed keys are merged into the record inside the script, so two
  requests changing different keys of one session both persist.
* A record is a small msgpack array (:mod:`~sessionauth.backends.redis.codec`) that the Lua
  scripts (:mod:`~sessionauth.backends.redis.scripts`) edit in place. Nothing is ever pickled;
  a record that fails to decode is no session. A tutorial session (user ``"1"``, role
  ``admin``) takes well under 200 bytes of ``MEMORY USAGE``.
* Sentinel (``wait_replicas``, 1 by default for ``redis+sentinel://``): ``create`` (login,
  regeneration) returns only once that many replicas acknowledged the session (``WAIT``, for at
  most ``ack_timeout``), else it deletes the session again (best effort: it was never handed
  out) and raises ``StoreUnavailable``. Sessions created with a replica acknowledgement survive
  a Sentinel failover; later updates and touches are replicated asynchronously and may roll
  back at most to that state. While no replica acknowledges (after a master crash, until a
  replica is attached and in sync again) logins fail but sessions still work:
  :attr:`RedisStore.acknowledgement_failure` says so. After a failover the store finds the new
  master by itself; a request during the switch may get ``StoreUnavailable``, never a hang.
* Every backend failure (refused, reset, timed out, loading, read-only, cluster down) raises
  :class:`~sessionauth.errors.StoreUnavailable` within ``timeout``. Expiry is Redis's job (a
  user's hash lives until their last session ends; expired sessions inside it are dropped when
  the user logs in again): :meth:`RedisStore.purge_expired` has nothing to do.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Mapping
from typing import Any, TypeVar, cast

from redis import exceptions as rx
from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster

from sessionauth.backends.redis import scripts
from sessionauth.backends.redis.codec import decode_record, encode_record, to_ms, value_json
from sessionauth.backends.redis.errors import UNAVAILABLE, guarded, is_outage, outage
from sessionauth.backends.redis.reads import ReadPipeline
from sessionauth.backends.redis.urls import RedisClients, server_of
from sessionauth.errors import ConfigurationError, StoreUnavailable
from sessionauth.policy import Clock, system_clock
from sessionauth.record import RecordUpdate, SessionRecord
from sessionauth.stores.base import DEFAULT_TIMEOUT, SessionStore
from sessionauth.tokens import user_group

__all__ = ["RedisStore"]

_T = TypeVar("_T")
_WHAT = "Redis session store"


class RedisStore(SessionStore):
    """Session store on Redis, Redis Sentinel or Redis Cluster; see the module docstring.

    Build it with :meth:`from_url`, which owns (and on :meth:`aclose` closes) its client, or
    hand it a ``redis.asyncio.Redis`` or ``RedisCluster`` that you own and close. An injected
    client must not decode responses; its retry and socket settings are yours, and every
    operation is still cut off after ``timeout``. Close the store either way (``aclose`` or
    ``async with``): loads go over one connection of the store's own, made by the client's pool.

    Args:
        client: The redis-py asyncio client.
        clock: The time source used to decide expiry.
        timeout: Seconds an operation may take before it raises ``StoreUnavailable``.
        prefix: Prepended to every key.
        wait_replicas: Replicas that must acknowledge a new session before ``create`` returns
            (0: do not wait). Not available on Cluster.
        ack_timeout: Seconds ``create`` waits for those acknowledgements; shorter than
            ``timeout`` (the write before the wait needs time too). By default half the
            timeout, at most 0.5 s.
        owner: Clients that :meth:`aclose` closes (those of a URL the store was built from).

    Raises:
        ConfigurationError: For a decoding client, a bad timeout or acknowledgement timeout, or
            ``wait_replicas`` on Cluster.
    """

    def __init__(
        self,
        client: Redis | RedisCluster,
        *,
        clock: Clock = system_clock,
        timeout: float = DEFAULT_TIMEOUT,
        prefix: str = "sa:",
        wait_replicas: int = 0,
        ack_timeout: float | None = None,
        owner: RedisClients | None = None,
    ):
        cluster = isinstance(client, RedisCluster)
        encoder = client.get_encoder() if cluster else client.connection_pool.get_encoder()  # type: ignore[union-attr]
        if encoder.decode_responses:
            raise ConfigurationError("give RedisStore a client with decode_responses=False")
        if not timeout > 0:
            raise ConfigurationError("the store timeout must be a positive number of seconds")
        if wait_replicas < 0 or (wait_replicas and cluster):
            raise ConfigurationError("wait_replicas must be 0 on Cluster, and never negative")
        if ack_timeout is None:
            ack_timeout = min(timeout / 2, 0.5)
        if not 0 < ack_timeout < timeout:
            raise ConfigurationError(
                f"ack_timeout must be above 0 and below the store timeout ({timeout:g} s)"
            )
        self._client = client
        self._clock = clock
        self._timeout = timeout
        self._user_prefix = f"{prefix}u:".encode()
        self._anon_prefix = f"{prefix}a:".encode()
        self._wait_replicas = wait_replicas
        self._ack_timeout = ack_timeout
        self._wait_ms = max(1, to_ms(ack_timeout))
        self._ack_failure: str | None = None
        # On a cluster, keys live on many servers: loads there go through redis-py.
        self._reads = None if cluster else ReadPipeline(client, timeout=timeout)
        self._update_script = client.register_script(scripts.UPDATE)
        self._create_script = client.register_script(scripts.CREATE)
        self._delete_user_script = client.register_script(scripts.DELETE_USER)
        self._update_user_script = client.register_script(scripts.UPDATE_USER)
        self._owned = owner
        self._server = server_of(client)

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        clock: Clock = system_clock,
        timeout: float = DEFAULT_TIMEOUT,
        prefix: str | None = None,
        wait_replicas: int | None = None,
        ack_timeout: float | None = None,
    ) -> RedisStore:
        """Build a store that owns its client, from a URL (see :mod:`.urls`).

        Nothing connects until the first operation, so the store can be built before the event
        loop runs.

        Args:
            url: Where Redis is; it may carry the key prefix as ``?prefix=app1:``.
            clock: The time source used to decide expiry.
            timeout: Seconds an operation may take before it raises ``StoreUnavailable``.
            prefix: Prepended to every key; by default the URL's, else ``sa:``.
            wait_replicas: See the class; by default the URL's ``wait_replicas``, else 1 for
                Sentinel URLs and 0 for the others.
            ack_timeout: See the class; by default the URL's ``ack_timeout``.

        Raises:
            ConfigurationError: For a URL without a host, an unknown scheme or a bad option.
        """
        from sessionauth.backends.redis import RedisBackend

        backend = RedisBackend.from_url(url, clock=clock, timeout=timeout)
        return backend.session_store(
            owned=True, prefix=prefix, wait_replicas=wait_replicas, ack_timeout=ack_timeout
        )

    def _locate(self, sid: str) -> tuple[bytes, bytes] | None:
        """Return (key, field) for a storage id; field ``b""`` means an anonymous string key."""
        group, dot, digest = sid.partition(".")
        if not dot:
            return self._anon_prefix + sid.encode(), b""
        if not digest:
            return None
        return self._user_prefix + group.encode(), digest.encode()

    def _sid(self, group: str, field: bytes) -> str:
        return f"{group}.{field.decode()}"

    async def _run(self, operation: Awaitable[_T]) -> _T:
        """Await ``operation`` within the timeout, turning backend failures into ours."""
        return await guarded(operation, timeout=self._timeout, what=_WHAT, server=self._server)

    async def load(self, sid: str) -> SessionRecord | None:
        """Return the live record under ``sid``, or ``None`` (also when it fails to decode)."""
        located = self._locate(sid)
        if located is None:
            return None
        key, field = located
        if self._reads is None:
            command = ("HGET", key, field) if field else ("GET", key)
            blob = await self._run(self._client.execute_command(*command))
        else:
            # The pipeline bounds the read by the timeout itself (one timer per connection).
            try:
                blob = await (self._reads.hget(key, field) if field else self._reads.get(key))
            except (*UNAVAILABLE, rx.ResponseError) as exc:
                if not is_outage(exc):
                    raise
                raise outage(_WHAT, self._server, exc) from exc
        return None if blob is None else decode_record(blob, to_ms(self._clock()), sid)

    @property
    def acknowledgement_failure(self) -> str | None:
        """Why new sessions cannot be acknowledged by replicas now, or ``None`` if they can.

        Set and cleared by the last acknowledgement awaited: a login's (``create``) or a
        readiness check's (``ping``). Always ``None`` without ``wait_replicas``.
        """
        return self._ack_failure

    def _note_acknowledgements(self, acknowledged: int) -> bool:
        """Record whether ``acknowledged`` replicas are enough; return whether they are."""
        if acknowledged >= self._wait_replicas:
            self._ack_failure = None
            return True
        self._ack_failure = (
            f"logins cannot be acknowledged: {acknowledged} of {self._wait_replicas} replicas "
            f"answered within {self._ack_timeout:g} s"
        )
        return False

    async def create(self, sid: str, record: SessionRecord) -> None:
        """Store ``record`` under ``sid``; wait for replicas if configured.

        A session the replicas did not acknowledge is deleted again (best effort, within the
        rest of the timeout) before the error: it was never handed out, so it must not linger
        in the user's list. After an outage error the outcome stays unknown, as for any write.

        Raises:
            StoreUnavailable: Also when fewer than ``wait_replicas`` replicas acknowledged it.
        """
        located = self._locate(sid)
        if located is None or (record.user_id is None) != (not located[1]):
            raise ValueError("a user's session needs an id from a token made for that user")
        key, field = located
        blob = encode_record(record, sid)
        if self._wait_replicas == 0:
            if field:
                await self._run(
                    self._create_script(keys=[key], args=[field, blob, to_ms(self._clock())])
                )
            else:
                await self._run(self._client.set(key, blob, pxat=to_ms(record.expires)))
            return
        pipe = self._client.pipeline(transaction=False)
        if field:
            pipe.eval(scripts.CREATE, 1, key, field, blob, to_ms(self._clock()))
        else:
            pipe.set(key, blob, pxat=to_ms(record.expires))
        pipe.wait(self._wait_replicas, self._wait_ms)
        replies = await self._run(pipe.execute())
        if not self._note_acknowledgements(replies[-1]):
            with contextlib.suppress(StoreUnavailable, TimeoutError):
                async with asyncio.timeout(self._timeout - self._ack_timeout):
                    await self.delete(sid)
            raise StoreUnavailable(
                f"the new session reached {replies[-1]} of {self._wait_replicas} replicas in time"
            )

    async def update(self, sid: str, update: RecordUpdate) -> bool:
        """Merge ``update`` into the live record in one script call; ``False`` if it is gone."""
        changes: list[Any] = [len(update.set)]
        for name, value in update.set.items():
            changes += [name, value_json(value)]
        changes += list(update.delete)
        return await self._write(sid, to_ms(update.seen), to_ms(update.expires), changes)

    async def touch(self, sid: str, *, seen: float, expires: float) -> bool:
        """Move the live record's activity time and expiry; ``False`` if it is gone."""
        return await self._write(sid, to_ms(seen), to_ms(expires), [0])

    async def _write(self, sid: str, seen: int, expires: int, changes: list[Any]) -> bool:
        located = self._locate(sid)
        if located is None:
            return False
        key, field = located
        args = [field, to_ms(self._clock()), seen, expires, *changes]
        return bool(await self._run(self._update_script(keys=[key], args=args)))

    async def delete(self, sid: str) -> None:
        """Delete the record under ``sid`` if present."""
        located = self._locate(sid)
        if located is None:
            return
        key, field = located
        if field:
            await self._run(self._client.hdel(key, field))
        else:
            await self._run(self._client.delete(key))

    def _user_key(self, user_id: str) -> tuple[str, bytes]:
        group = user_group(user_id)
        return group, self._user_prefix + group.encode()

    async def list_user(self, user_id: str) -> list[tuple[str, SessionRecord]]:
        """Return the user's live sessions, oldest first (one ``HGETALL``)."""
        group, key = self._user_key(user_id)
        rows = cast("dict[bytes, bytes]", await self._run(self._client.hgetall(key)))
        now = to_ms(self._clock())
        found = []
        for field, blob in rows.items():
            sid = self._sid(group, field)
            record = decode_record(blob, now, sid)
            if record is not None and record.user_id == user_id:
                found.append((sid, record))
        return sorted(found, key=lambda item: (item[1].created, item[0]))

    async def delete_user(self, user_id: str, *, keep: str | None = None) -> int:
        """Delete the user's sessions but ``keep``, atomically; return how many live ones went."""
        _, key = self._user_key(user_id)
        located = self._locate(keep) if keep is not None else None
        kept = located[1] if located is not None else b""
        args: list[Any] = [user_id, to_ms(self._clock()), kept]
        return int(await self._run(self._delete_user_script(keys=[key], args=args)))

    async def update_user(self, user_id: str, values: Mapping[str, Any]) -> int:
        """Set ``values`` in each of the user's live sessions, atomically; return how many."""
        _, key = self._user_key(user_id)
        args: list[Any] = [user_id, to_ms(self._clock())]
        for name, value in values.items():
            args += [name, value_json(value)]
        return int(await self._run(self._update_user_script(keys=[key], args=args)))

    async def purge_expired(self, *, batch_size: int = 500) -> int:
        """Return 0: Redis expires sessions by their TTL."""
        del batch_size
        return 0

    async def ping(self) -> None:
        """Raise ``StoreUnavailable`` unless Redis answers ``PING``.

        With ``wait_replicas``, the master answers ``WAIT`` instead, which also refreshes
        :attr:`acknowledgement_failure`: replicas that are attached and in sync acknowledge at
        once, missing ones make it wait ``ack_timeout``.
        """
        if not self._wait_replicas:
            await self._run(self._client.ping())
            return
        acknowledged = await self._run(self._client.wait(self._wait_replicas, self._wait_ms))
        self._note_acknowledgements(acknowledged)

    async def aclose(self) -> None:
        """Close the read pipeline; close the client if this store made it."""
        if self._reads is not None:
            await self._reads.aclose()
        owned, self._owned = self._owned, None
        if owned is not None:
            await owned.aclose()
