"""A private Redis Cluster of master nodes, formed with ``redis-cli --cluster create``."""

from __future__ import annotations

import subprocess
from typing import Self

from tests.support.services.policy import ServiceUnavailable
from tests.support.services.process import binary, wait_until
from tests.support.services.redis_servers import RedisServer, redis_call


def _parse_info(raw: str) -> dict[str, str]:
    """Parse INFO-style ``key:value`` lines (as CLUSTER INFO sends them) into strings."""
    pairs = (line.split(":", 1) for line in raw.splitlines() if ":" in line)
    return {key: value.strip() for key, value in pairs}


class RedisCluster:
    """A private Redis Cluster of master nodes only (three by default), no replicas.

    Args:
        masters: How many master nodes; Redis needs at least three.
    """

    def __init__(self, *, masters: int = 3) -> None:
        self.servers = [RedisServer(cluster_enabled=True) for _ in range(masters)]
        self._created = False

    @property
    def nodes(self) -> list[tuple[str, int]]:
        """``(host, port)`` of every node; any one of them is a valid seed for a client."""
        return [server.address for server in self.servers]

    @property
    def url(self) -> str:
        """A ``redis+cluster://`` URL naming one seed node (clients discover the rest)."""
        host, port = self.nodes[0]
        return f"redis+cluster://{host}:{port}"

    def start(self) -> Self:
        """Start every node, create the cluster once, and wait until all nodes report ok.

        Raises:
            ServiceUnavailable: a node did not start or the cluster did not form in time.
        """
        try:
            for server in self.servers:
                server.start()
            if not self._created:
                self._create()
            wait_until(self._healthy, what="Redis Cluster to reach cluster_state:ok")
        except BaseException:
            self.close()
            raise
        return self

    def _create(self) -> None:
        argv = [binary("redis-cli"), "--cluster", "create"]
        argv += [f"{host}:{port}" for host, port in self.nodes]
        argv += ["--cluster-replicas", "0", "--cluster-yes"]
        # The argv is built from fixed arguments and a path found with shutil.which.
        result = subprocess.run(  # noqa: S603
            argv, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60, check=False
        )
        if result.returncode != 0:
            raise ServiceUnavailable(f"redis-cli --cluster create failed:\n{result.stdout}")
        self._created = True

    def _healthy(self) -> bool:
        import redis

        try:
            infos = [_parse_info(redis_call(node, "CLUSTER", "INFO")) for node in self.nodes]
        except redis.RedisError:
            return False
        return all(
            info.get("cluster_state") == "ok"
            and info.get("cluster_slots_ok") == "16384"
            and info.get("cluster_known_nodes") == str(len(self.nodes))
            for info in infos
        )

    def stop(self) -> None:
        """Stop every node (the cluster configuration survives for a later `start()`)."""
        for server in self.servers:
            server.stop()

    def close(self) -> None:
        """Stop every node and delete their directories."""
        for server in self.servers:
            server.close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.close()
