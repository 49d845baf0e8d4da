"""Private ``redis-server`` processes, and one-off commands sent to any Redis server."""

from __future__ import annotations

from typing import Any

from tests.support.services.ports import free_cluster_port, free_port
from tests.support.services.process import ServerProcess, binary


def redis_call(address: tuple[str, int], *args: str | int, timeout: float = 1.0) -> Any:
    """Send one command to a Redis (or Sentinel) server and return the raw decoded reply."""
    import redis

    host, port = address
    with redis.Redis(
        host=host,
        port=port,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        decode_responses=True,
    ) as client:
        return client.execute_command(*args)


def _redis_answers(address: tuple[str, int]) -> bool:
    import redis

    try:
        return bool(redis_call(address, "PING"))
    except redis.RedisError:
        return False


def replication_info(address: tuple[str, int]) -> dict[str, Any]:
    """Return ``INFO replication`` as redis-py parses it (``slaveN`` values are mappings)."""
    info: dict[str, Any] = redis_call(address, "INFO", "replication")
    return info


class RedisServer(ServerProcess):
    """A private ``redis-server`` on a free loopback port, with no persistence.

    Use it as a context manager, or call `start()` and `close()`. `stop()` then `start()` gives
    an outage and a recovery on the same port (data is lost: nothing is saved); `pause()` and
    `resume()` give a server that accepts connections but never answers.

    Args:
        port: The port to use; a free one by default.
        replicaof: ``(host, port)`` of a master to replicate; read at every `start()`.
        cluster_enabled: Run as a Redis Cluster node (its bus port, port + 10000, is free too).
        cluster_node_timeout: Milliseconds before a silent Cluster node counts as failing.
    """

    kind = "redis"

    def __init__(
        self,
        *,
        port: int | None = None,
        replicaof: tuple[str, int] | None = None,
        cluster_enabled: bool = False,
        cluster_node_timeout: int = 5000,
    ) -> None:
        self.cluster_enabled = cluster_enabled
        self.cluster_node_timeout = cluster_node_timeout
        # 0: Sentinel never promotes this server (set while it rejoins empty, see
        # RedisSentinelSetup); read at every `start()`.
        self.replica_priority = 100
        self.replicaof = replicaof
        super().__init__(port=port)

    @property
    def url(self) -> str:
        """A ``redis://`` URL for database 0 of this server."""
        return f"redis://{self.host}:{self.port}/0"

    def _pick_port(self) -> int:
        return free_cluster_port() if self.cluster_enabled else free_port()

    def _command(self) -> list[str]:
        argv = [
            binary("redis-server"),
            "--port", str(self.port),
            "--bind", self.host,
            "--save", "",
            "--appendonly", "no",
            "--dir", str(self.directory),
            "--daemonize", "no",
        ]  # fmt: skip
        if self.cluster_enabled:
            argv += [
                "--cluster-enabled", "yes",
                "--cluster-config-file", "nodes.conf",
                "--cluster-node-timeout", str(self.cluster_node_timeout),
            ]  # fmt: skip
        if self.replicaof is not None:
            argv += ["--replicaof", self.replicaof[0], str(self.replicaof[1])]
            argv += ["--replica-priority", str(self.replica_priority)]
        return argv

    def _is_ready(self) -> bool:
        return _redis_answers(self.address)
