"""The Redis session store: one small hash per session, expired by Redis, indexed per user.

Layout, under a key prefix (``sa:`` by default)::

    {prefix}s:{sid}    HASH, PEXPIREAT at the record's expiry
        c        created, integer milliseconds since the epoch
        s i e    seen, issued, expires: milliseconds after ``c``
        u        user id (absent for anonymous sessions)
        x        how far the user's index lives, milliseconds after ``c`` (with ``u`` only)
        m        meta, msgpack (absent when empty)
        .{key}   one field per session value, msgpack
    {prefix}u:{user}   ZSET of the user's sids scored by ``c``; lives until the largest ``x``

Small integers are what listpack hashes store most compactly, hence offsets from ``c`` rather
than absolute times: a tutorial session (user ``"1"``, ``{"role": "admin"}``) takes 184 bytes of
``MEMORY USAGE``. A field per value makes concurrent updates of different keys merge by
themselves. Times are kept to the millisecond. Needs Redis 7.0 or later.

* ``load`` is one ``HGETALL``, the only store call most requests make.
* ``update`` and ``touch`` are one script call each, on the session's key alone: it writes only
  if the hash exists and has not expired by the store's clock, so a write racing a logout or a
  revocation never brings the session back.
* A user's index must outlive all their sessions, or revoking them all would miss some. Touches
  push a session's expiry beyond what its index got at login, and on Cluster a script cannot
  reach the index (another slot). So a session records in ``x`` how far its index lives; when
  its expiry passes that, the script says so and the store (about once per idle timeout)
  re-adds the session to the index and extends the index *before* recording the new ``x``; a
  failure in between only makes the next touch extend it again.
* ``create`` writes the session, then its index entry: on one connection in that order (one
  pipeline), and on Cluster in two round trips. An index entry therefore never exists before
  its session, and ``list_user`` may drop entries whose session is gone (deleted or expired).
  If the index write fails, ``create`` raises: the login answers 503 without the cookie, so the
  unindexed session can never be used and simply expires.
* Sentinel (``wait_replicas``, 1 by default for ``redis+sentinel://``): ``create`` (login,
  regeneration) returns only once that many replicas acknowledged the session (``WAIT``),
  else it raises ``StoreUnavailable``. Sessions created with a replica acknowledgement survive
  a Sentinel failover; later updates/touches are asynchronously replicated and may roll back
  at most to that state. After a failover the store finds the new master by itself; a request
  during the switch may get ``StoreUnavailable``, never a hang.
* Cluster: every command and script touches one key; multi-session operations use
  non-transactional pipelines, which redis-py splits by slot. ``WAIT`` is not offered there.
* Every backend failure (refused, reset, timed out, loading, read-only, cluster down) raises
  :class:`~sessionauth.errors.StoreUnavailable` within ``timeout``. Undecodable data is no
  session. Expiry is Redis's job: :meth:`RedisStore.purge_expired` has nothing to do.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Mapping
from typing import Any, TypeVar, cast
from urllib.parse import parse_qsl, unquote, urlsplit

import msgspec
from redis import exceptions as rx
from redis.asyncio import Redis
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel
from redis.backoff import NoBackoff

from sessionauth.errors import ConfigurationError, StoreUnavailable
from sessionauth.policy import Clock, system_clock
from sessionauth.record import RecordUpdate, SessionRecord
from sessionauth.stores.base import DEFAULT_TIMEOUT, SessionStore

__all__ = ["RedisStore"]

logger = logging.getLogger("sessionauth.store")
_T = TypeVar("_T")

# KEYS[1] session; ARGV: expires ms, then field/value pairs.
_CREATE = """
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], unpack(ARGV, 2))
redis.call('PEXPIREAT', KEYS[1], ARGV[1])
return 1
"""
# KEYS[1] session; ARGV: now ms, seen ms, expires ms (both '' to leave them), number of pairs,
# field/value pairs, fields to delete. 0: gone; 1: done; {user, created}: extend the index.
_UPDATE = """
local key = KEYS[1]
local h = redis.call('HMGET', key, 'c', 'e', 'u', 'x')
local c, e = tonumber(h[1]), tonumber(h[2])
if not c or not e or c + e <= tonumber(ARGV[1]) then return 0 end
local last = 4 + 2 * tonumber(ARGV[4])
if last > 4 then redis.call('HSET', key, unpack(ARGV, 5, last)) end
if #ARGV > last then redis.call('HDEL', key, unpack(ARGV, last + 1)) end
if ARGV[3] == '' then return 1 end
local expires = tonumber(ARGV[3])
redis.call('HSET', key, 's', tonumber(ARGV[2]) - c, 'e', expires - c)
redis.call('PEXPIREAT', key, ARGV[3])
if h[3] and c + (tonumber(h[4]) or 0) < expires then return {h[3], h[1]} end
return 1
"""
# KEYS[1] session. Returns the user id so the caller can leave the index.
_DELETE = """
local u = redis.call('HGET', KEYS[1], 'u')
redis.call('DEL', KEYS[1])
return u
"""

_UNAVAILABLE = (
    TimeoutError,  # asyncio.timeout around every operation
    rx.ConnectionError,  # refused, reset, loading, auth, no master known to Sentinel
    rx.TimeoutError,
    rx.ReadOnlyError,  # a demoted master
    rx.OutOfMemoryError,
    rx.ClusterError,  # cluster down, master down
    rx.TryAgainError,
    rx.RedisClusterException,  # no reachable node, slot not covered
)
_TRANSIENT_REPLIES = ("BUSY", "MASTERDOWN", "NOREPLICAS", "LOADING", "CLUSTERDOWN", "TRYAGAIN")

_pack = msgspec.msgpack.Encoder().encode
_unpack = msgspec.msgpack.Decoder().decode
_unpack_meta = msgspec.msgpack.Decoder(dict[str, Any]).decode


def _is_outage(exc: Exception) -> bool:
    """Whether ``exc`` means Redis is unavailable (rather than a bug in this store)."""
    return isinstance(exc, _UNAVAILABLE) or str(exc).startswith(_TRANSIENT_REPLIES)


def _ms(seconds: float) -> int:
    return round(seconds * 1000)


def _field(key: str) -> bytes:
    return b"." + key.encode()


def _decode(fields: dict[bytes, bytes], now_ms: int) -> SessionRecord | None:
    """Build the record from its hash, or ``None`` if it is missing, expired or undecodable."""
    try:
        created = int(fields[b"c"])
        expires = created + int(fields[b"e"])
        if expires <= now_ms:
            return None
        data = {}
        for name, value in fields.items():
            if name[0] == 46:  # b".", a value's field
                data[name[1:].decode()] = _unpack(value)
        user = fields.get(b"u")
        meta = fields.get(b"m")
        return SessionRecord(
            data=data,
            created=created / 1000,
            seen=(created + int(fields[b"s"])) / 1000,
            issued=(created + int(fields[b"i"])) / 1000,
            expires=expires / 1000,
            user_id=None if user is None else user.decode(),
            meta={} if meta is None else _unpack_meta(meta),
        )
    except (KeyError, IndexError, ValueError, msgspec.DecodeError):  # and UnicodeDecodeError
        return None


class RedisStore(SessionStore):
    """Session store on Redis, Redis Sentinel or Redis Cluster; see the module docstring.

    Build it with :meth:`from_url`, which owns (and on :meth:`aclose` closes) its client, or
    hand it a ``redis.asyncio.Redis`` or ``RedisCluster`` that you own and close. An injected
    client must not decode responses; its retry and socket settings are yours, and every
    operation is still cut off after ``timeout``.

    Args:
        client: The redis-py asyncio client.
        clock: The time source used to decide expiry.
        timeout: Seconds an operation may take before it raises ``StoreUnavailable``.
        prefix: Prepended to every key.
        wait_replicas: Replicas that must acknowledge a new session before ``create`` returns
            (0: do not wait). Not available on Cluster.

    Raises:
        ConfigurationError: For a decoding client, a bad timeout, or ``wait_replicas`` on
            Cluster.
    """

    def __init__(
        self,
        client: Redis | RedisCluster,
        *,
        clock: Clock = system_clock,
        timeout: float = DEFAULT_TIMEOUT,
        prefix: str = "sa:",
        wait_replicas: int = 0,
    ):
        if isinstance(client, RedisCluster):
            encoder = client.get_encoder()
        else:
            encoder = client.connection_pool.get_encoder()  # type: ignore[no-untyped-call]
        if encoder.decode_responses:
            raise ConfigurationError("give RedisStore a client with decode_responses=False")
        if not timeout > 0:
            raise ConfigurationError("the store timeout must be a positive number of seconds")
        if wait_replicas < 0 or (wait_replicas and isinstance(client, RedisCluster)):
            raise ConfigurationError("wait_replicas must be 0 on Cluster, and never negative")
        self._client = client
        self._cluster = isinstance(client, RedisCluster)
        self._clock = clock
        self._timeout = timeout
        self._session_prefix = f"{prefix}s:".encode()
        self._user_prefix = f"{prefix}u:".encode()
        self._wait_replicas = wait_replicas
        # Leave room in the timeout for the writes before the WAIT.
        self._wait_ms = max(1, _ms(min(timeout / 2, 0.5)))
        self._create_script = client.register_script(_CREATE)
        self._update_script = client.register_script(_UPDATE)
        self._delete_script = client.register_script(_DELETE)
        self._owned: list[Any] = []

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        clock: Clock = system_clock,
        timeout: float = DEFAULT_TIMEOUT,
        prefix: str = "sa:",
        wait_replicas: int | None = None,
    ) -> RedisStore:
        """Build a store that owns its client, from a URL.

        ``redis://[user:password@]host[:port][/db]``, ``rediss://…`` (TLS),
        ``redis+sentinel://[user:password@]h1:p1,h2:p2/service[?db=N]`` (the credentials are
        the master's) and ``redis+cluster://[user:password@]host:port[,host:port]``.

        Nothing connects until the first operation, so the store can be built before the event
        loop runs. Socket timeouts are ``timeout``; a pooled connection found dead is retried
        once, at once, on a fresh one; nothing else is retried.

        Args:
            url: Where Redis is.
            clock: The time source used to decide expiry.
            timeout: Seconds an operation may take before it raises ``StoreUnavailable``.
            prefix: Prepended to every key.
            wait_replicas: See the class; by default 1 for Sentinel URLs, else 0.

        Raises:
            ConfigurationError: For a URL without a host, an unknown scheme or a bad option.
        """
        if not timeout > 0:
            raise ConfigurationError("the store timeout must be a positive number of seconds")
        scheme = url.partition("://")[0].lower()
        options: dict[str, Any] = {
            "socket_timeout": timeout,
            "socket_connect_timeout": timeout,
            "retry": Retry(NoBackoff(), 1, supported_errors=(rx.ConnectionError,)),
        }
        owned: list[Any] = []
        client: Redis | RedisCluster
        if scheme in ("redis", "rediss"):
            client = _standalone_client(url, options)
        elif scheme == "redis+sentinel":
            client, sentinel = _sentinel_client(url, options)
            owned.append(sentinel)
        elif scheme == "redis+cluster":
            client = _cluster_client(url, options)
        else:
            raise ConfigurationError(
                f"not a Redis URL: {url!r}; use redis://, rediss://, "
                "redis+sentinel://h1:p1,h2:p2/service or redis+cluster://host:port"
            )
        if wait_replicas is None:
            wait_replicas = 1 if scheme == "redis+sentinel" else 0
        store = cls(
            client, clock=clock, timeout=timeout, prefix=prefix, wait_replicas=wait_replicas
        )
        store._owned = [client, *owned]
        return store

    def _key(self, sid: str) -> bytes:
        return self._session_prefix + sid.encode()

    async def _run(self, operation: Awaitable[_T]) -> _T:
        """Await ``operation`` within the timeout, turning backend failures into ours."""
        try:
            async with asyncio.timeout(self._timeout):
                return await operation
        except (*_UNAVAILABLE, rx.ResponseError) as exc:
            if not _is_outage(exc):
                raise
            raise StoreUnavailable(f"Redis session store unavailable: {exc!r}") from exc

    async def _fetch(self, key: bytes) -> dict[bytes, bytes]:
        """Run the one command a load costs: ``HGETALL`` of the session's hash."""
        return cast("dict[bytes, bytes]", await self._client.hgetall(key))

    async def load(self, sid: str) -> SessionRecord | None:
        """Return the live record under ``sid``, or ``None`` (also when it fails to decode)."""
        # _run inlined: this is the per-request hot path.
        try:
            async with asyncio.timeout(self._timeout):
                fields = await self._fetch(self._session_prefix + sid.encode())
        except (*_UNAVAILABLE, rx.ResponseError) as exc:
            if not _is_outage(exc):
                raise
            raise StoreUnavailable(f"Redis session store unavailable: {exc!r}") from exc
        return _decode(fields, _ms(self._clock())) if fields else None

    async def create(self, sid: str, record: SessionRecord) -> None:
        """Store ``record`` under ``sid``, index it, and wait for replicas if configured.

        Raises:
            StoreUnavailable: Also when fewer than ``wait_replicas`` replicas acknowledged it.
        """
        created, expires, seen = _ms(record.created), _ms(record.expires), _ms(record.seen)
        fields: list[Any] = [b"c", created, b"s", seen - created]
        fields += [b"i", _ms(record.issued) - created, b"e", expires - created]
        horizon = 2 * expires - seen  # the index outlives the session by one more idle period
        if record.user_id is not None:
            fields += [b"u", record.user_id.encode(), b"x", horizon - created]
        if record.meta:
            fields += [b"m", _pack(record.meta)]
        for name, value in record.data.items():
            fields += [_field(name), _pack(value)]
        key = self._key(sid)
        if self._cluster:
            await self._run(self._create_script(keys=[key], args=[expires, *fields]))
            if record.user_id is not None:
                await self._run(self._add_to_index(record.user_id.encode(), sid, created, horizon))
            return
        pipe = self._client.pipeline(transaction=False)
        pipe.eval(_CREATE, 1, key, expires, *fields)
        if record.user_id is not None:
            self._queue_index(pipe, record.user_id.encode(), sid, created, horizon)
        if self._wait_replicas:
            pipe.wait(self._wait_replicas, self._wait_ms)
        replies = await self._run(pipe.execute())
        if self._wait_replicas and replies[-1] < self._wait_replicas:
            raise StoreUnavailable(
                f"the new session reached {replies[-1]} of {self._wait_replicas} replicas in time"
            )

    def _queue_index(self, pipe: Any, user: bytes, sid: str, created: int, horizon: int) -> None:
        ukey = self._user_prefix + user
        pipe.zadd(ukey, {sid: created})
        # NX gives a fresh index its first expiry; GT only ever moves it later.
        pipe.pexpireat(ukey, horizon, nx=True)
        pipe.pexpireat(ukey, horizon, gt=True)

    async def _add_to_index(self, user: bytes, sid: str, created: int, horizon: int) -> None:
        pipe = self._client.pipeline(transaction=False)
        self._queue_index(pipe, user, sid, created, horizon)
        await pipe.execute()

    async def update(self, sid: str, update: RecordUpdate) -> bool:
        """Merge ``update`` into the live record in one script call; ``False`` if it is gone."""
        args: list[Any] = [len(update.set)]
        for name, value in update.set.items():
            args += [_field(name), _pack(value)]
        args += [_field(name) for name in update.delete]
        return await self._write(sid, update.seen, update.expires, args)

    async def touch(self, sid: str, *, seen: float, expires: float) -> bool:
        """Move the live record's activity time and expiry; ``False`` if it is gone."""
        return await self._write(sid, seen, expires, [0])

    async def _write(self, sid: str, seen: float, expires: float, changes: list[Any]) -> bool:
        key, now = self._key(sid), _ms(self._clock())
        seen_ms, expires_ms = _ms(seen), _ms(expires)
        args = [now, seen_ms, expires_ms, *changes]
        reply = await self._run(self._update_script(keys=[key], args=args))
        if isinstance(reply, list):
            user, created = reply
            horizon = 2 * expires_ms - seen_ms
            try:
                await self._run(self._add_to_index(user, sid, int(created), horizon))
                mark: list[Any] = [now, "", "", 1, b"x", horizon - int(created)]
                await self._run(self._update_script(keys=[key], args=mark))
            except StoreUnavailable:
                # The write itself succeeded; the next touch extends the index again.
                logger.warning("could not extend a user's session index", exc_info=True)
        return bool(reply)  # 1, or the index request; 0 when the session is gone

    async def delete(self, sid: str) -> None:
        """Delete the record under ``sid`` and its index entry, if present."""
        user = await self._run(self._delete_script(keys=[self._key(sid)]))
        if user is not None:
            await self._run(self._client.zrem(self._user_prefix + user, sid))

    async def _sids(self, user_id: str) -> tuple[bytes, list[bytes]]:
        ukey = self._user_prefix + user_id.encode()
        sids = await self._run(self._client.zrange(ukey, 0, -1))
        return ukey, cast("list[bytes]", sids)

    async def list_user(self, user_id: str) -> list[tuple[str, SessionRecord]]:
        """Return the user's live sessions, oldest first; drop index entries of gone ones."""
        ukey, sids = await self._sids(user_id)
        if not sids:
            return []
        pipe = self._client.pipeline(transaction=False)
        for sid in sids:
            pipe.hgetall(self._session_prefix + sid)
        rows = await self._run(pipe.execute())
        now = _ms(self._clock())
        found, gone = [], []
        for sid, fields in zip(sids, rows, strict=True):
            if not fields:
                gone.append(sid)
                continue
            record = _decode(fields, now)
            if record is not None:
                found.append((sid.decode(), record))
        if gone:
            await self._run(self._client.zrem(ukey, *gone))
        return found

    async def delete_user(self, user_id: str, *, keep: str | None = None) -> int:
        """Delete the user's sessions except ``keep``; return how many live ones went."""
        ukey, sids = await self._sids(user_id)
        kept = None if keep is None else keep.encode()
        doomed = [sid for sid in sids if sid != kept]
        if not doomed:
            return 0
        pipe = self._client.pipeline(transaction=False)
        for sid in doomed:
            pipe.hmget(self._session_prefix + sid, [b"c", b"e"])
            pipe.delete(self._session_prefix + sid)
        replies = await self._run(pipe.execute())
        await self._run(self._client.zrem(ukey, *doomed))
        now = _ms(self._clock())
        return sum(
            1
            for created, expires in replies[::2]
            if created is not None and expires is not None and int(created) + int(expires) > now
        )

    async def update_user(self, user_id: str, values: Mapping[str, Any]) -> int:
        """Set ``values`` in each of the user's live sessions, each one atomically."""
        _, sids = await self._sids(user_id)
        if not sids:
            return 0
        args: list[Any] = [_ms(self._clock()), "", "", len(values)]
        for name, value in values.items():
            args += [_field(name), _pack(value)]
        pipe = self._client.pipeline(transaction=False)
        for sid in sids:
            # EVAL, not EVALSHA: a pipeline cannot reload a script the server forgot.
            pipe.eval(_UPDATE, 1, self._session_prefix + sid, *args)
        replies = await self._run(pipe.execute())
        return sum(1 for reply in replies if reply == 1)

    async def purge_expired(self, *, batch_size: int = 500) -> int:
        """Return 0: Redis expires sessions by their TTL."""
        del batch_size
        return 0

    async def ping(self) -> None:
        """Raise ``StoreUnavailable`` unless Redis answers ``PING``."""
        await self._run(self._client.ping())

    async def aclose(self) -> None:
        """Close the client (and Sentinel connections) if this store made them."""
        owned, self._owned = self._owned, []
        for resource in owned:
            await resource.aclose()


def _credentials(userinfo: str) -> dict[str, Any]:
    if not userinfo:
        return {}
    user, _, password = userinfo.partition(":")
    return {"username": unquote(user) or None, "password": unquote(password) or None}


def _host_port(item: str, default_port: int, url: str) -> tuple[str, int]:
    host, port = item, ""
    if item.startswith("["):  # [IPv6]:port
        host, _, rest = item[1:].partition("]")
        port = rest.removeprefix(":")
    elif ":" in item:
        host, _, port = item.rpartition(":")
    if not host or (port and not port.isdigit()) or not 0 < int(port or default_port) < 65536:
        raise ConfigurationError(f"bad host:port {item!r} in the Redis URL {_redact(url)!r}")
    return host, int(port or default_port)


def _redact(url: str) -> str:
    scheme, sep, rest = url.partition("://")
    userinfo, at, hosts = rest.rpartition("@")
    return f"{scheme}{sep}***@{hosts}" if at and userinfo else url


def _split(url: str) -> tuple[str, list[str], str, str]:
    """Split a multi-host URL into userinfo, host items, path and query."""
    rest = url.partition("://")[2]
    netloc, _, tail = rest.partition("/")
    netloc, _, query_in_netloc = netloc.partition("?")
    path, _, query = tail.partition("?")
    userinfo, _, hosts = netloc.rpartition("@")
    if not hosts:
        raise ConfigurationError(f"the Redis URL {_redact(url)!r} names no host")
    return userinfo, hosts.split(","), path, query or query_in_netloc


def _standalone_client(url: str, options: dict[str, Any]) -> Redis:
    try:
        parts = urlsplit(url)
        if not parts.hostname:
            raise ConfigurationError(f"the Redis URL {_redact(url)!r} names no host")
        # redis-py would quietly use database 0 for a path that is not a number.
        if not parts.path.strip("/").isdigit() and parts.path not in ("", "/"):
            raise ConfigurationError(f"the Redis URL {_redact(url)!r} names no database number")
        return Redis.from_url(url, **options)
    except ValueError as exc:  # a bad port, db or query option
        if isinstance(exc, ConfigurationError):
            raise
        raise ConfigurationError(f"bad Redis URL {_redact(url)!r}: {exc}") from exc


def _sentinel_client(url: str, options: dict[str, Any]) -> tuple[Redis, Sentinel]:
    userinfo, items, path, query = _split(url)
    service = unquote(path)
    if not service or "/" in service:
        raise ConfigurationError(
            f"the Sentinel URL {_redact(url)!r} needs the service name: "
            "redis+sentinel://h1:p1,h2:p2/service"
        )
    nodes = [_host_port(item, 26379, url) for item in items]
    db = 0
    for name, value in parse_qsl(query, keep_blank_values=True):
        if name != "db" or not value.isdigit():
            raise ConfigurationError(f"the Sentinel URL {_redact(url)!r} allows only ?db=N")
        db = int(value)
    sentinel_options = {
        "socket_timeout": options["socket_timeout"],
        "socket_connect_timeout": options["socket_connect_timeout"],
        "retry": Retry(NoBackoff(), 0),
    }
    sentinel = Sentinel(nodes, sentinel_kwargs=sentinel_options, **options)  # type: ignore[no-untyped-call]
    master = sentinel.master_for(service, db=db, **_credentials(userinfo))
    return master, sentinel


def _cluster_client(url: str, options: dict[str, Any]) -> RedisCluster:
    userinfo, items, path, query = _split(url)
    if path or query:
        raise ConfigurationError(
            f"the Cluster URL {_redact(url)!r} takes no database or options: "
            "redis+cluster://host:port[,host:port]"
        )
    nodes = [ClusterNode(*_host_port(item, 6379, url)) for item in items]
    return RedisCluster(startup_nodes=nodes, **options, **_credentials(userinfo))
