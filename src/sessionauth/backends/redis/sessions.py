"""The Redis session store: one key per user holding that user's sessions and principal.

Each logged-in user's sessions, principal and session index are one hash, and each anonymous
session one string (the layout, and how a session id names its key and field, are in
:mod:`~sessionauth.backends.redis.keys`). Keeping a user's sessions, principal and index in one
key is what makes this store small and exact:

* ``load`` is one ``HMGET key <field> p`` (or ``GET``), the only store call most requests make,
  pipelined on a connection of its own
  (:class:`~sessionauth.backends.redis.reads.ReadPipeline`). Whether the session is served is
  decided here after the read: the record's epoch must be its user's principal's (compared as
  strings), and the principal enabled. A record without an epoch (``session.set_user()``
  without the Authenticator) is served without a principal, so with no role.
* Every write is one script on one key (:mod:`~sessionauth.backends.redis.scripts`), so it is
  atomic with the principal and the index: ``create`` refuses a live id (``SessionExists``)
  and a stale or disabled epoch (``StaleLogin``) in the same step that writes; a principal
  change with a new epoch deletes the user's other sessions in the step that changes it, so
  a login racing it either lands before (and is deleted) or after (and is refused).
* Logins cost O(1) amortised, whatever the number of sessions: the creation index gives the
  oldest session without reading the others, which goes beyond ``max_sessions`` (see
  :mod:`~sessionauth.backends.redis.scripts`). Expired sessions are dropped as the index's head
  passes them; an expired session behind a live older one still counts against the cap until
  then (the cap bounds the hash, which is what keeps it small). A rotation reads the whole hash
  (O(sessions of the user)): it is rare. ``list_user`` reads the whole hash too, so the gaps
  that rotations leave in the index behind a live older session cost it nothing.
* ``update`` and ``touch`` write only if the session still exists and has not expired by the
  store's clock, so a write racing a logout or a revocation never brings the session back.
  Changed keys are merged into the record inside the script, so two requests changing
  different keys of one session both persist.
* Records are small msgpack arrays (:mod:`~sessionauth.backends.redis.codec`) carrying the
  format version: sessionauth 0.1's records (no version, no epoch, under 22-character fields)
  are no sessions. A tutorial session (user ``"1"``, no values), its principal and its index
  entry take at most 200 bytes of ``MEMORY USAGE`` while every hash value stays within Redis's
  default ``hash-max-listpack-value`` (64 bytes): a longer value (a browser's user agent in
  the record's meta) turns the hash into a hashtable, which costs about 300 bytes more.
* Sentinel (``wait_replicas``, 1 by default for ``redis+sentinel://``): ``create`` (login,
  regeneration), ``install_principal`` and ``change_principal`` return only once that many
  replicas acknowledged the write (``WAIT``, for at most ``ack_timeout``). An unacknowledged
  session is deleted again (best effort: it was never handed out); an unacknowledged principal
  write stays (a restriction is safer applied than not) but raises ``StoreUnavailable`` all the
  same, so the caller does not go on to believe it durable. Writes acknowledged so survive a
  Sentinel failover; later updates and touches are replicated asynchronously and may roll back
  at most to that state. While no replica acknowledges, logins and principal changes fail but
  sessions still work: :attr:`RedisStore.acknowledgement_failure` says so.
* Cluster: every script touches one key, so one slot, and needs no hash tags. Replication is
  asynchronous and ``WAIT`` is not used, so a failover can roll back anything acknowledged in
  the last moments before the master died, principal changes included: a demotion or
  rotation can be lost (the old principal comes back with the sessions it served) if the
  master dies before replicating it. Deployments that cannot accept that use Sentinel, or
  repeat restrictions after a failover; the users database keeps the truth, and a principal
  that is lost entirely is rebuilt from it with a fresh epoch.
* Every backend failure (refused, reset, timed out, loading, read-only, cluster down) raises
  :class:`~sessionauth.errors.StoreUnavailable` within ``timeout``; ``SessionExists`` and
  ``StaleLogin`` come from the create script's status reply, never from an error reply.
  Expiry is Redis's job: :meth:`RedisStore.purge_expired` has nothing to do.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from redis import exceptions as rx
from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster

from sessionauth.backends.binding import binding
from sessionauth.backends.redis import scripts
from sessionauth.backends.redis.codec import (
    decode_principal,
    decode_record,
    encode_record,
    to_ms,
    value_json,
)
from sessionauth.backends.redis.errors import UNAVAILABLE, is_outage, outage
from sessionauth.backends.redis.keys import SessionKeys
from sessionauth.backends.redis.principals import (
    PRINCIPAL_TTL,
    PRINCIPALS_FIELD,
    RedisPrincipals,
    principal_of,
)
from sessionauth.backends.redis.reads import ReadPipeline
from sessionauth.backends.redis.runner import Runner, Unacknowledged
from sessionauth.backends.redis.urls import RedisClients, server_of
from sessionauth.errors import ConfigurationError, SessionExists, StaleLogin, StoreUnavailable
from sessionauth.policy import Clock, system_clock
from sessionauth.principal import Principal, PrincipalChange
from sessionauth.record import RecordUpdate, SessionRecord
from sessionauth.stores.base import (
    DEFAULT_MAX_SESSIONS,
    DEFAULT_TIMEOUT,
    MAX_PAGE,
    SessionPage,
    SessionStore,
)

__all__ = ["PRINCIPAL_TTL", "RedisStore"]

_WHAT = "Redis session store"
_EXISTS, _STALE = 1, 2  # the create script's statuses


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
        wait_replicas: Replicas that must acknowledge a new session or a principal write before
            it returns (0: do not wait). Not available on Cluster.
        ack_timeout: Seconds a write waits for those acknowledgements; shorter than
            ``timeout`` (the write before the wait needs time too). By default half the
            timeout, at most 0.5 s.
        max_sessions: Live sessions a user may have; a login beyond it ends the oldest.
        owner: Clients that :meth:`aclose` closes (those of a URL the store was built from).

    Raises:
        ConfigurationError: For a decoding client, a bad timeout, acknowledgement timeout or
            ``max_sessions``, or ``wait_replicas`` on Cluster.
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
        max_sessions: int = DEFAULT_MAX_SESSIONS,
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
        if max_sessions < 1:
            raise ConfigurationError("max_sessions must be at least 1")
        self._client = client
        self._clock = clock
        self._timeout = timeout
        self._keys = SessionKeys(prefix)
        self._max_sessions = max_sessions
        self._server = server_of(client)
        self._runner = Runner(
            client,
            timeout=timeout,
            what=_WHAT,
            server=self._server,
            wait_replicas=wait_replicas,
            ack_timeout=ack_timeout,
        )
        self._principals = RedisPrincipals(
            self._runner, clock=clock, user_prefix=self._keys.user_prefix
        )
        # On a cluster, keys live on many servers: loads there go through redis-py.
        self._reads = None if cluster else ReadPipeline(client, timeout=timeout)
        self._owned = owner

    @property
    def _wait_replicas(self) -> int:
        return self._runner.wait_replicas

    @property
    def _ack_timeout(self) -> float:
        return self._runner.ack_timeout

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
        max_sessions: int = DEFAULT_MAX_SESSIONS,
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
            max_sessions: Live sessions a user may have; a login beyond it ends the oldest.

        Raises:
            ConfigurationError: For a URL without a host, an unknown scheme or a bad option.
        """
        from sessionauth.backends.redis import RedisBackend

        backend = RedisBackend.from_url(url, clock=clock, timeout=timeout)
        return backend.session_store(
            owned=True,
            prefix=prefix,
            wait_replicas=wait_replicas,
            ack_timeout=ack_timeout,
            max_sessions=max_sessions,
        )

    async def load(self, sid: str) -> SessionRecord | None:
        """Return the live, served record under ``sid`` with its principal, or ``None``."""
        located = self._keys.locate(sid)
        if located is None:
            return None
        key, field = located
        principals = None
        if self._reads is None:
            if field:
                command = self._client.execute_command("HMGET", key, field, PRINCIPALS_FIELD)
                blob, principals = await self._runner.run(command)
            else:
                blob = await self._runner.run(self._client.execute_command("GET", key))
        else:
            # The pipeline bounds the read by the timeout itself (one timer per connection).
            try:
                if field:
                    blob, principals = await self._reads.hmget(key, field, PRINCIPALS_FIELD)
                else:
                    blob = await self._reads.get(key)
            except (*UNAVAILABLE, rx.ResponseError) as exc:
                if not is_outage(exc):
                    raise
                raise outage(_WHAT, self._server, exc) from exc
        if blob is None:
            return None
        record = decode_record(blob, round(self._clock() * 1000), sid)  # to_ms, inlined
        if record is None or not field or record.epoch is None:
            return record
        principal = decode_principal(principals, record.user_id or "")
        if principal is None or principal.disabled or principal.epoch != record.epoch:
            return None
        record.principal = principal
        return record

    @property
    def acknowledgement_failure(self) -> str | None:
        """Why writes cannot be acknowledged by replicas now, or ``None`` if they can.

        Set and cleared by the last acknowledgement awaited: a login's, a principal write's or
        a readiness check's (``ping``). Always ``None`` without ``wait_replicas``.
        """
        return self._runner.acknowledgement_failure

    async def create(self, sid: str, record: SessionRecord) -> Principal | None:
        """Store ``record`` under ``sid`` if its epoch is current; end the oldest beyond the cap.

        A session the replicas did not acknowledge is deleted again (best effort, within the
        rest of the timeout) before the error: it was never handed out, so it must not linger
        in the user's list. After an outage error the outcome stays unknown, as for any write.

        Raises:
            SessionExists: If ``sid`` holds a live record.
            StaleLogin: If the record's epoch is not its user's enabled principal's.
            StoreUnavailable: Also when fewer than ``wait_replicas`` replicas acknowledged it.
        """
        located = self._keys.locate(sid)
        if located is None or (record.user_id is None) != (not located[1]):
            raise ValueError("a user's session needs an id from a token made for that user")
        key, field = located
        args = [field, encode_record(record, sid), to_ms(self._clock()), self._max_sessions]
        try:
            reply = await self._runner.acknowledged(scripts.CREATE, key, args)
        except Unacknowledged as exc:
            if exc.reply[0] == 0:
                with contextlib.suppress(StoreUnavailable, TimeoutError):
                    async with asyncio.timeout(self._timeout - self._ack_timeout):
                        await self.delete(sid)
            raise StoreUnavailable(
                f"the new session reached {exc.acknowledged} of {self._wait_replicas} "
                "replicas in time"
            ) from None
        if reply[0] == _EXISTS:
            raise SessionExists("a live session already has this id")
        if reply[0] == _STALE:
            raise StaleLogin("the user's principal changed during the login")
        return principal_of(reply[1:]) if len(reply) > 1 else None

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
        located = self._keys.locate(sid)
        if located is None:
            return False
        key, field = located
        args = [field, binding(sid), to_ms(self._clock()), seen, expires, *changes]
        return bool(await self._runner.script(scripts.UPDATE, key, args))

    async def delete(self, sid: str) -> bool:
        """Delete the record under ``sid`` (and its index entry) if present; say whether it was."""
        located = self._keys.locate(sid)
        if located is None:
            return False
        key, field = located
        if field:
            return bool(await self._runner.script(scripts.DELETE, key, [field, binding(sid)]))
        return bool(await self._runner.run(self._client.delete(key)))

    async def list_user(
        self, user_id: str, *, limit: int = MAX_PAGE, cursor: str | None = None
    ) -> SessionPage:
        """Return a page of the user's served sessions, newest first (one script call).

        The cursor is the creation sequence number of the page's last session.
        """
        return await self._principals.page(user_id, limit=limit, cursor=cursor)

    async def principal(self, user_id: str) -> Principal | None:
        """Return the principal of ``user_id`` (one ``HGET``), or ``None``."""
        return await self._principals.get(user_id)

    async def install_principal(self, user_id: str, principal: Principal) -> Principal:
        """Store ``principal`` unless the user has one (one script); return the one in force.

        Raises:
            StoreUnavailable: Also when fewer than ``wait_replicas`` replicas acknowledged it.
        """
        return await self._principals.install(user_id, principal)

    async def change_principal(
        self, user_id: str, change: PrincipalChange
    ) -> tuple[Principal, int]:
        """Apply ``change`` in one script; a new epoch deletes every session but ``change.keep``.

        Raises:
            StoreUnavailable: Also when fewer than ``wait_replicas`` replicas acknowledged it
                (the change stands on the master all the same).
        """
        kept = None if change.keep is None else self._keys.locate(change.keep)
        keep_field = b"" if kept is None else kept[1]
        return await self._principals.change(user_id, change, keep_field=keep_field)

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
        await self._runner.ping()

    async def aclose(self) -> None:
        """Close the read pipeline; close the client if this store made it."""
        if self._reads is not None:
            await self._reads.aclose()
        owned, self._owned = self._owned, None
        if owned is not None:
            await owned.aclose()
