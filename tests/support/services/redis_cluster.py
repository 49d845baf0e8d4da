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
    """A private Redis Cluster: master nodes (three by default), each with ``replicas``.

    Args:
        masters: How many master nodes; Redis needs at least three.
        replicas: Replicas per master (a killed master fails over to one of them).
        node_timeout: Milliseconds before a silent node counts as failing.
    """

    def __init__(self, *, masters: int = 3, replicas: int = 0, node_timeout: int = 5000) -> None:
        self.replicas = replicas
        self.servers = [
            RedisServer(cluster_enabled=True, cluster_node_timeout=node_timeout)
            for _ in range(masters * (1 + replicas))
        ]
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
        argv += ["--cluster-replicas", str(self.replicas), "--cluster-yes"]
        # The argv is built from fixed arguments and a path found with shutil.which.
        result = subprocess.run(  # noqa: S603
            argv, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60, check=False
        )
        if result.returncode != 0:
            raise ServiceUnavailable(f"redis-cli --cluster create failed:\n{result.stdout}")
        self._created = True

    def _healthy(self) -> bool:
        import redis

        running = [server.address for server in self.servers if server.running]
        try:
            infos = [_parse_info(redis_call(node, "CLUSTER", "INFO")) for node in running]
        except redis.RedisError:
            return False
        return all(
            info.get("cluster_state") == "ok"
            and info.get("cluster_slots_ok") == "16384"
            and info.get("cluster_known_nodes") == str(len(self.nodes))
            for info in infos
        )

    def master_of(self, key: str) -> RedisServer:
        """The node serving ``key``'s slot now, as the first running node reports it."""
        from redis.crc import key_slot

        slot = key_slot(key.encode())
        seed = next(server for server in self.servers if server.running)
        for start, end, master, *_ in redis_call(seed.address, "CLUSTER", "SLOTS"):
            if start <= slot <= end:
                address = (str(master[0]), int(master[1]))
                return next(server for server in self.servers if server.address == address)
        raise ServiceUnavailable(f"no node serves slot {slot}")

    def fail_over(self, key: str, *, timeout: float = 30.0) -> RedisServer:
        """Crash (SIGKILL) the master serving ``key`` and wait until its replica has taken over.

        Returns:
            The promoted replica.
        """
        crashed = self.master_of(key)
        crashed.kill()

        def promoted() -> bool:
            import redis

            try:
                return self.master_of(key) is not crashed and self._healthy_without(crashed)
            except (redis.RedisError, StopIteration):
                return False

        wait_until(promoted, what="the Cluster to promote a replica", timeout=timeout)
        return self.master_of(key)

    def wait_replicated(self, key: str, *, timeout: float = 30.0) -> None:
        """Wait until the replicas of ``key``'s master acknowledged all it had written so far."""
        address = self.master_of(key).address
        written = int(redis_call(address, "INFO", "replication")["master_repl_offset"])

        def acknowledged() -> bool:
            info = redis_call(address, "INFO", "replication")
            replicas = [value for name, value in info.items() if name.startswith("slave")]
            return bool(replicas) and all(int(r["offset"]) >= written for r in replicas)

        wait_until(acknowledged, what=f"the replicas of {address} to catch up", timeout=timeout)

    def _healthy_without(self, crashed: RedisServer) -> bool:
        import redis

        live = [server.address for server in self.servers if server is not crashed]
        try:
            infos = [_parse_info(redis_call(node, "CLUSTER", "INFO")) for node in live]
        except redis.RedisError:
            return False
        return all(info.get("cluster_state") == "ok" for info in infos)

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
