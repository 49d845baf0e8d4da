"""A private Redis master, replica and Sentinels, with a failover on demand."""

from __future__ import annotations

import contextlib
from typing import Any, Self

from tests.support.services.policy import ServiceUnavailable
from tests.support.services.process import binary, wait_until
from tests.support.services.redis_servers import RedisServer, redis_call, replication_info


def _flat_dict(reply: Any) -> dict[str, str]:
    """Turn a Sentinel reply (a flat ``[key, value, ...]`` list) into a mapping."""
    if isinstance(reply, dict):
        return {str(key): str(value) for key, value in reply.items()}
    return {str(key): str(value) for key, value in zip(reply[::2], reply[1::2], strict=True)}


# What a failed failover's report shows of each replica: the fields Sentinel's choice reads.
_REPLICA_FIELDS = (
    "name",
    "flags",
    "slave-priority",
    "master-link-status",
    "master-link-down-time",
    "info-refresh",
    "last-ok-ping-reply",
)


class _SentinelServer(RedisServer):
    """A ``redis-server --sentinel`` process monitoring one master."""

    kind = "sentinel"

    def __init__(self, *, monitor: tuple[str, int], service_name: str, quorum: int) -> None:
        self.monitor = monitor
        self.service_name = service_name
        self.quorum = quorum
        super().__init__()

    def _command(self) -> list[str]:
        config = self.directory / "sentinel.conf"
        # Sentinel rewrites its own config as it learns the topology: keep that on a restart
        # (but not after a first start that lost its port: that config names the old port).
        if not self._has_run:
            name = self.service_name
            # 2 s, not less: on a busy shared machine a 1 s silence can start a spurious
            # failover, and one that promotes a replica still in its first sync loses data.
            config.write_text(
                f"port {self.port}\n"
                f"bind {self.host}\n"
                "daemonize no\n"
                f"dir {self.directory}\n"
                "sentinel resolve-hostnames no\n"
                f"sentinel monitor {name} {self.monitor[0]} {self.monitor[1]} {self.quorum}\n"
                f"sentinel down-after-milliseconds {name} 2000\n"
                f"sentinel failover-timeout {name} 5000\n"
            )
        return [binary("redis-server"), str(config), "--sentinel"]


class RedisSentinelSetup:
    """A private master, one replica and three Sentinels (quorum 2) watching them.

    Sentinels declare the master down after 2 s, so `failover()` completes in seconds.

    Args:
        service_name: The name the Sentinels monitor the master under.
        quorum: How many Sentinels must agree that the master is down before they fail over
            by themselves (more than three: never, only when `failover()` forces it).
    """

    def __init__(self, *, service_name: str = "mymaster", quorum: int = 2) -> None:
        self.service_name = service_name
        master = RedisServer()
        self.servers = [master, RedisServer(replicaof=master.address)]
        self.sentinel_servers = [
            _SentinelServer(monitor=master.address, service_name=service_name, quorum=quorum)
            for _ in range(3)
        ]
        self._started = False

    @property
    def sentinels(self) -> list[tuple[str, int]]:
        """``(host, port)`` of every Sentinel."""
        return [sentinel.address for sentinel in self.sentinel_servers]

    @property
    def url(self) -> str:
        """A ``redis+sentinel://host:port,.../service_name`` URL naming every Sentinel."""
        hosts = ",".join(f"{host}:{port}" for host, port in self.sentinels)
        return f"redis+sentinel://{hosts}/{self.service_name}"

    def start(self) -> Self:
        """Start everything and wait until all Sentinels agree on a master with a live replica.

        Raises:
            ServiceUnavailable: a process did not start or the setup did not settle in time.
        """
        try:
            if self._started:
                rejoining = [server for server in self.servers if not server.running]
                for server in rejoining:
                    server.replica_priority = 0
                for server in [*self.servers, *self.sentinel_servers]:
                    server.start()
                wait_until(self._settled, what="Sentinels to agree on a master with a live replica")
                for server in rejoining:
                    self._promotable(server)
            else:
                # Wire the addresses only once the master runs: a first start may change port.
                master, replica = self.servers
                master.start()
                replica.replicaof = master.address
                replica.start()
                for sentinel in self.sentinel_servers:
                    sentinel.monitor = master.address
                    sentinel.start()
                self._started = True
            wait_until(self._settled, what="Sentinels to agree on a master with a live replica")
        except BaseException:
            self.close()
            raise
        return self

    def master_address(self) -> tuple[str, int]:
        """Return the master's ``(host, port)`` as the first Sentinel that answers reports it.

        Raises:
            ServiceUnavailable: no Sentinel answered.
        """
        import redis

        for sentinel in self.sentinels:
            with contextlib.suppress(redis.RedisError):
                return self._reported_master(sentinel)
        raise ServiceUnavailable(f"no Sentinel knows a master named {self.service_name!r}")

    def failover(
        self, *, timeout: float = 45.0, patience: float = 20.0, rejoin: bool = True
    ) -> tuple[str, int]:
        """Crash the master with SIGKILL and wait until every Sentinel names a new master.

        The Sentinels fail over by themselves within seconds. If they have not after
        ``patience`` seconds (a split vote or a missed ODOWN is retried only after twice the
        failover timeout, 10 s), ``SENTINEL FAILOVER`` makes one of them do it without an
        election: still the replica Sentinel picks, promoted the way it always is. The tests
        are about what a client sees across a failover, not about the Sentinels' election.

        Args:
            timeout: Seconds to wait for the switch in all (and again for the rejoin).
            patience: Seconds to wait for the Sentinels before forcing the failover.
            rejoin: Then restart the crashed server as a replica of the new master and wait
                until the setup is healthy again, so that it can fail over once more.

        Returns:
            The new master's ``(host, port)``.

        Raises:
            ServiceUnavailable: no replica was promoted in time, forced or not. The message
                has what each Sentinel logged since the crash; the crashed server is back by
                then, so the setup serves the tests that follow instead of failing them all.
        """
        import redis

        old = self.master_address()
        crashed = next(server for server in self.servers if server.address == old)
        logged = {sentinel: sentinel.log_size() for sentinel in self.sentinel_servers}
        crashed.kill()

        def switched() -> bool:
            try:
                reported = {self._reported_master(sentinel) for sentinel in self.sentinels}
                if len(reported) != 1 or old in reported:
                    return False
                info = replication_info(reported.pop())
            except redis.RedisError:
                return False
            return info.get("role") == "master"

        try:
            try:
                wait_until(switched, what="Sentinels to promote a new master", timeout=patience)
            except ServiceUnavailable:
                forced = self._force_failover()
                wait_until(
                    switched,
                    what=f"Sentinels to promote a new master ({forced})",
                    timeout=max(timeout - patience, 1.0),
                )
        except ServiceUnavailable as error:
            report = self._failover_report(logged)
            with contextlib.suppress(ServiceUnavailable):
                crashed.replicaof = None  # still the master in the Sentinels' eyes, now empty
                crashed.start()
                wait_until(self._settled, what="the crashed master to come back")
            raise ServiceUnavailable(f"{error}\n{report}") from None
        new = self.master_address()
        # Keep each server's own idea of its role right, so a later stop()/start() agrees.
        next(server for server in self.servers if server.address == new).replicaof = None
        crashed.replicaof = new
        if rejoin:
            crashed.replica_priority = 0
            crashed.start()
            wait_until(self._settled, what="the old master to rejoin as a replica", timeout=timeout)
            self._promotable(crashed)
        return new

    @staticmethod
    def _promotable(server: RedisServer) -> None:
        """Let Sentinel promote ``server`` again, now that it is a replica in sync.

        A server without persistence restarts empty. Until its first sync completes it must
        not be promotable: if the master stalls meanwhile (2 s on a busy machine is enough),
        Sentinel would promote the empty server and every replica would then copy it, losing
        every session, acknowledged or not. (Sentinel accepts such a replica: one that never
        had a link reports no link-down time.)
        """
        server.replica_priority = 100
        redis_call(server.address, "CONFIG", "SET", "replica-priority", "100")

    def _force_failover(self) -> str:
        """Ask each Sentinel in turn for ``SENTINEL FAILOVER``; say which accepted, or why not."""
        import redis

        refusals = []
        for sentinel in self.sentinels:
            try:
                redis_call(sentinel, "SENTINEL", "FAILOVER", self.service_name)
            except redis.RedisError as refused:  # INPROG, NOGOODSLAVE, no answer
                if "INPROG" in str(refused):
                    return f"the Sentinel on port {sentinel[1]} is failing over already"
                refusals.append(f"{sentinel[1]}: {refused}")
                continue
            return f"forced through the Sentinel on port {sentinel[1]}"
        return "forcing refused by every Sentinel: " + "; ".join(refusals)

    def ensure_healthy(self) -> None:
        """Return at once if the setup is settled; else restart what is down and wait.

        A test that failed half way (a server left down, a failover that never finished)
        must not fail every later test that shares the setup.

        Raises:
            ServiceUnavailable: the setup did not settle in time.
        """
        if not self._settled():
            self.start()

    def _failover_report(self, logged: dict[_SentinelServer, int]) -> str:
        """What each Sentinel logged since the crash, and how it sees the replicas now."""
        import redis

        parts = []
        for sentinel, offset in logged.items():
            with sentinel.log_path.open("rb") as log:
                log.seek(offset)
                lines = log.read().decode(errors="replace").splitlines()[-25:]
            try:
                replicas = redis_call(sentinel.address, "SENTINEL", "REPLICAS", self.service_name)
                seen = "; ".join(
                    " ".join(f"{key}={_flat_dict(r).get(key)}" for key in _REPLICA_FIELDS)
                    for r in replicas
                )
            except redis.RedisError as error:
                seen = f"no answer: {error}"
            parts.append(f"--- sentinel {sentinel.port}: replicas {seen}\n" + "\n".join(lines))
        return "\n".join(parts)

    def _reported_master(self, sentinel: tuple[str, int]) -> tuple[str, int]:
        import redis

        reply = redis_call(sentinel, "SENTINEL", "GET-MASTER-ADDR-BY-NAME", self.service_name)
        if not reply:
            raise redis.RedisError(f"{sentinel} does not know {self.service_name!r}")
        host, port = reply
        return (str(host), int(port))

    def _sentinel_is_content(self, sentinel: tuple[str, int]) -> bool:
        """Whether this Sentinel sees a healthy master, replicas and all its peers."""
        name = self.service_name
        master = _flat_dict(redis_call(sentinel, "SENTINEL", "MASTER", name))
        replicas = [_flat_dict(r) for r in redis_call(sentinel, "SENTINEL", "REPLICAS", name)]
        return (
            master.get("flags") == "master"
            and master.get("num-other-sentinels") == str(len(self.sentinels) - 1)
            and bool(replicas)
            and all(replica.get("flags") == "slave" for replica in replicas)
        )

    def _settled(self) -> bool:
        import redis

        try:
            masters = {self._reported_master(sentinel) for sentinel in self.sentinels}
            if len(masters) != 1:
                return False
            master = masters.pop()
            if not all(self._sentinel_is_content(sentinel) for sentinel in self.sentinels):
                return False
            info = replication_info(master)
        except redis.RedisError:
            return False
        # Sentinel refreshes replica details only every 10 s, so ask the master directly.
        online = [
            key
            for key, value in info.items()
            if key.startswith("slave")
            and isinstance(value, dict)
            and value.get("state") == "online"
        ]
        expected = sum(1 for s in self.servers if s.running and s.address != master)
        return info.get("role") == "master" and len(online) == expected

    def stop(self) -> None:
        """Stop every process (Sentinels first, so that they start no failover)."""
        for server in [*self.sentinel_servers, *self.servers]:
            server.stop()

    def close(self) -> None:
        """Stop every process and delete their directories."""
        for server in [*self.sentinel_servers, *self.servers]:
            server.close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.close()
