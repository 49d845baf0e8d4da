"""Redis clients from URLs: standalone, TLS, Sentinel and Cluster, with fail-fast settings.

Shared by the session store and the login throttle so that both read the same URL the same way:

* ``redis://[user:password@]host[:port][/db]`` and ``rediss://…`` (TLS);
* ``redis+sentinel://[user:password@]h1:p1,h2:p2/service[?db=N&wait_replicas=N&ack_timeout=S]``
  (credentials are the master's; ``wait_replicas`` and ``ack_timeout`` are the session store's
  acknowledgement policy, see :class:`~sessionauth.backends.redis.sessions.RedisStore`);
* ``redis+cluster://[user:password@]host:port[,host:port]``.

Socket timeouts are the caller's ``timeout``; a pooled connection found dead is retried once,
at once, on a fresh one; nothing else is retried, so an outage surfaces within the timeout.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from redis import exceptions as rx
from redis.asyncio import Redis
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel, SentinelConnectionPool
from redis.backoff import NoBackoff

from sessionauth.backends.redis.tls import SharedContextSSLConnection
from sessionauth.backends.url_checks import check_url, redact
from sessionauth.errors import ConfigurationError

__all__ = ["RedisClients", "client_from_url", "redact", "server_of"]


class RedisClients:
    """A client built from a URL and everything it owns (Sentinel connections).

    Attributes:
        client: The client to send commands with.
        scheme: The URL's scheme (``redis``, ``rediss``, ``redis+sentinel``, ``redis+cluster``).
        wait_replicas: The URL's ``wait_replicas`` option, if it has one (Sentinel only).
        ack_timeout: The URL's ``ack_timeout`` option in seconds, if it has one (Sentinel only).
    """

    def __init__(
        self,
        client: Redis | RedisCluster,
        scheme: str,
        owned: list[Any],
        *,
        wait_replicas: int | None = None,
        ack_timeout: float | None = None,
    ):
        self.client = client
        self.scheme = scheme
        self.wait_replicas = wait_replicas
        self.ack_timeout = ack_timeout
        self._owned = owned

    async def aclose(self) -> None:
        """Close the client and the Sentinel connections."""
        owned, self._owned = self._owned, []
        for resource in owned:
            await resource.aclose()


def client_from_url(url: str, *, timeout: float) -> RedisClients:
    """Build a client (not connected yet) for a Redis, Sentinel or Cluster URL.

    Raises:
        ConfigurationError: For a URL without a host, an unknown scheme or a bad option.
    """
    if not timeout > 0:
        raise ConfigurationError("the store timeout must be a positive number of seconds")
    check_url(url)  # redis-py passes options it does not know to every connection it opens
    scheme = url.partition("://")[0].lower()
    options: dict[str, Any] = {
        "socket_timeout": timeout,
        "socket_connect_timeout": timeout,
        "retry": Retry(NoBackoff(), 1, supported_errors=(rx.ConnectionError,)),
    }
    if scheme in ("redis", "rediss"):
        client = _standalone_client(url, options)
        return RedisClients(client, scheme, [client])
    if scheme == "redis+sentinel":
        master, sentinel, policy = _sentinel_client(url, options)
        return RedisClients(master, scheme, [master, sentinel], **policy)
    if scheme == "redis+cluster":
        cluster = _cluster_client(url, options)
        return RedisClients(cluster, scheme, [cluster])
    raise ConfigurationError(
        f"not a Redis URL: {redact(url)!r}; use redis://, rediss://, "
        "redis+sentinel://h1:p1,h2:p2/service or redis+cluster://host:port"
    )


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
        raise ConfigurationError(f"bad host:port {item!r} in the Redis URL {redact(url)!r}")
    return host, int(port or default_port)


def _split(url: str) -> tuple[str, list[str], str, str]:
    """Split a multi-host URL into userinfo, host items, path and query."""
    rest = url.partition("://")[2]
    netloc, _, tail = rest.partition("/")
    netloc, _, query_in_netloc = netloc.partition("?")
    path, _, query = tail.partition("?")
    userinfo, _, hosts = netloc.rpartition("@")
    if not hosts:
        raise ConfigurationError(f"the Redis URL {redact(url)!r} names no host")
    return userinfo, hosts.split(","), path, query or query_in_netloc


def _standalone_client(url: str, options: dict[str, Any]) -> Redis:
    try:
        parts = urlsplit(url)
        if not parts.hostname:
            raise ConfigurationError(f"the Redis URL {redact(url)!r} names no host")
        # redis-py would quietly use database 0 for a path that is not a number.
        if not parts.path.strip("/").isdigit() and parts.path not in ("", "/"):
            raise ConfigurationError(f"the Redis URL {redact(url)!r} names no database number")
        client = Redis.from_url(url, **options)
    except ValueError as exc:  # a bad port, db or query option
        if isinstance(exc, ConfigurationError):
            raise
        raise ConfigurationError(f"bad Redis URL {redact(url)!r}: {exc}") from exc
    if url.lower().startswith("rediss:"):  # (the URL's scheme decides redis-py's class)
        client.connection_pool.connection_class = SharedContextSSLConnection
    return client


def _sentinel_options(url: str, query: str) -> tuple[int, dict[str, Any]]:
    """Parse a Sentinel URL's query: the database and the acknowledgement policy."""
    db, policy = 0, dict[str, Any]()
    for name, value in parse_qsl(query, keep_blank_values=True):
        if name in ("db", "wait_replicas") and value.isdigit():
            if name == "db":
                db = int(value)
            else:
                policy[name] = int(value)
        elif name == "ack_timeout" and _positive_seconds(value):
            policy[name] = float(value)
        else:
            raise ConfigurationError(
                f"bad option {name}={value!r} in the Sentinel URL {redact(url)!r}: it allows "
                "db=N, wait_replicas=N (replicas) and ack_timeout=SECONDS (above 0)"
            )
    return db, policy


def _positive_seconds(value: str) -> bool:
    try:
        seconds = float(value)
    except ValueError:
        return False
    return 0 < seconds < float("inf")


def _sentinel_client(url: str, options: dict[str, Any]) -> tuple[Redis, Sentinel, dict[str, Any]]:
    userinfo, items, path, query = _split(url)
    service = unquote(path)
    if not service or "/" in service:
        raise ConfigurationError(
            f"the Sentinel URL {redact(url)!r} needs the service name: "
            "redis+sentinel://h1:p1,h2:p2/service"
        )
    nodes = [_host_port(item, 26379, url) for item in items]
    db, policy = _sentinel_options(url, query)
    sentinel_options = {
        "socket_timeout": options["socket_timeout"],
        "socket_connect_timeout": options["socket_connect_timeout"],
        "retry": Retry(NoBackoff(), 0),
    }
    # redis-py 8.1 leaves Sentinel.__init__ unannotated (8.2 annotates it: the ignore is unused).
    sentinel = Sentinel(nodes, sentinel_kwargs=sentinel_options, **options)  # type: ignore[no-untyped-call, unused-ignore]
    master = sentinel.master_for(service, db=db, **_credentials(userinfo))
    return master, sentinel, policy


def _cluster_client(url: str, options: dict[str, Any]) -> RedisCluster:
    userinfo, items, path, query = _split(url)
    if path or query:
        raise ConfigurationError(
            f"the Cluster URL {redact(url)!r} takes no database or options: "
            "redis+cluster://host:port[,host:port]"
        )
    nodes = [ClusterNode(*_host_port(item, 6379, url)) for item in items]
    return RedisCluster(startup_nodes=nodes, **options, **_credentials(userinfo))


def server_of(client: Redis | RedisCluster) -> str:
    """Name the server(s) ``client`` talks to, for error messages (never its credentials).

    ``host:port``, the Sentinels and the service, or the Cluster's seed nodes.
    """
    if isinstance(client, RedisCluster):
        return "Redis Cluster " + ",".join(client.nodes_manager.startup_nodes)
    pool = getattr(client, "connection_pool", None)
    if pool is None:  # a client object of the caller's own making: no address to name
        return "Redis"
    if isinstance(pool, SentinelConnectionPool):
        manager = pool.sentinel_manager
        sentinels = ",".join(_address(sentinel.connection_pool) for sentinel in manager.sentinels)
        return f"Sentinel {sentinels} (service {pool.service_name!r})"
    return _address(pool)


def _address(pool: Any) -> str:
    kwargs = pool.connection_kwargs
    if "path" in kwargs:
        return str(kwargs["path"])
    return f"{kwargs.get('host')}:{kwargs.get('port')}"
