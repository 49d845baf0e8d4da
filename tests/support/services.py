"""Real Redis and PostgreSQL servers for the tests, on loopback addresses only.

Two kinds of service live here:

- Private servers (`RedisServer`, `RedisCluster`, `RedisSentinelSetup`, `PostgresServer`) that
  a test starts, breaks and throws away. Each process runs in its own process group with its
  own temporary directory; `stop()`/`close()` end them, and an `atexit` hook kills whatever is
  left, so a failing test or an interrupted run leaves no stray servers behind.
- The machine's shared Redis and PostgreSQL, which tests use only through a dedicated Redis DB
  number with a per-run key prefix, and a database of their own. Nothing here flushes a
  database it did not create.

`require_service` turns "this service is not there" into a skip on a developer machine and a
loud failure under ``CI=true``, so a CI run can never go green by skipping its backends.
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import contextlib
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any, Self, TypeVar

import pytest

T = TypeVar("T")

LOOPBACK = "127.0.0.1"
SHARED_REDIS_DB = 13
START_TIMEOUT = 30.0

_POLL_INTERVAL = 0.05
_CLUSTER_BUS_OFFSET = 10_000
_PORT_IN_USE = "Address already in use"

# Every process and directory still owned by this module, so the atexit hook can reap them.
_live_processes: dict[int, subprocess.Popen[bytes]] = {}
_live_dirs: set[Path] = set()
_handed_out_ports: set[int] = set()


class ServiceUnavailable(RuntimeError):
    """A service could not be reached, or a private server could not be started in time."""


# --------------------------------------------------------------------------- processes


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL the process group of `proc` (the leader and any children) and reap the leader."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=5)
    _live_processes.pop(proc.pid, None)


@atexit.register
def _clean_up_everything() -> None:
    for proc in list(_live_processes.values()):
        _kill_group(proc)
    for directory in list(_live_dirs):
        shutil.rmtree(directory, ignore_errors=True)


def _on_sigterm(signum: int, frame: object) -> None:
    """Kill our servers, then die of SIGTERM as if no handler had been installed."""
    _clean_up_everything()
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)


def _clean_up_on_sigterm() -> None:
    """Make SIGTERM (``timeout``, CI cancellation) kill our servers too.

    Python's default SIGTERM action skips ``atexit``, which would leave the servers running.
    Only a default handler in the main thread is replaced; anything else is left alone.
    """
    if (
        threading.current_thread() is threading.main_thread()
        and signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
    ):
        signal.signal(signal.SIGTERM, _on_sigterm)


def _binary(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise ServiceUnavailable(f"`{name}` is not installed (not found on PATH)")
    return path


def _spawn(
    argv: list[str],
    *,
    log_path: Path,
    cwd: Path,
    run_as: pwd.struct_passwd | None = None,
    env: dict[str, str] | None = None,
) -> subprocess.Popen[bytes]:
    """Start `argv` as the leader of a new session, output appended to `log_path`."""
    _clean_up_on_sigterm()
    with log_path.open("ab") as log:
        # The argv is built from fixed arguments and paths found with shutil.which.
        proc = subprocess.Popen(  # noqa: S603
            argv,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=cwd,
            env=env,
            start_new_session=True,
            user=run_as.pw_uid if run_as else None,
            group=run_as.pw_gid if run_as else None,
            extra_groups=[] if run_as else None,
        )
    _live_processes[proc.pid] = proc
    return proc


def _wait_until(
    ready: Callable[[], bool],
    *,
    what: str,
    timeout: float = START_TIMEOUT,
    proc: subprocess.Popen[bytes] | None = None,
    log_path: Path | None = None,
) -> None:
    """Poll `ready` until it returns true; raise `ServiceUnavailable` at the deadline.

    If `proc` exits meanwhile, give up at once instead of waiting out the deadline.
    """
    deadline = time.monotonic() + timeout
    while not ready():
        if proc is not None and proc.poll() is not None:
            raise ServiceUnavailable(
                f"{what}: process exited with status {proc.returncode}{_log_tail(log_path)}"
            )
        if time.monotonic() >= deadline:
            raise ServiceUnavailable(f"{what}: not ready after {timeout:g} s{_log_tail(log_path)}")
        time.sleep(_POLL_INTERVAL)


def _log_tail(log_path: Path | None, lines: int = 15) -> str:
    if log_path is None or not log_path.exists():
        return ""
    tail = log_path.read_text(errors="replace").splitlines()[-lines:]
    return "\n--- " + str(log_path) + " (tail) ---\n" + "\n".join(tail)


# --------------------------------------------------------------------------- ports


def free_port() -> int:
    """Return a loopback TCP port that nothing listens on right now.

    The port is released before returning, so another process could still take it; the
    servers below retry with a fresh port when their first start loses that race. The same
    port is never handed out twice within one test run.
    """
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind((LOOPBACK, 0))
            port: int = sock.getsockname()[1]
        if port not in _handed_out_ports:
            _handed_out_ports.add(port)
            return port


def _port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((LOOPBACK, port))
        except OSError:
            return False
    return True


def _free_cluster_port() -> int:
    """Return a free port whose cluster bus port (port + 10000) is free as well."""
    while True:
        port = free_port()
        bus = port + _CLUSTER_BUS_OFFSET
        if bus <= 65_535 and bus not in _handed_out_ports and _port_is_free(bus):
            _handed_out_ports.add(bus)
            return port


# --------------------------------------------------------------------------- one server


class _Server:
    """One server process on a loopback port, with its own temporary directory.

    Subclasses say how to build the command line and how to tell the server is ready.
    """

    kind = "server"
    stop_signal = signal.SIGTERM

    def __init__(self, *, port: int | None = None) -> None:
        self.host = LOOPBACK
        # A port chosen by the caller, or one the server has already run on, never changes:
        # restart tests rely on getting the same address back.
        self._port_pinned = port is not None
        self.port = port if port is not None else self._pick_port()
        self.directory = Path(tempfile.mkdtemp(prefix=f"satest-{self.kind}-"))
        _live_dirs.add(self.directory)
        self.log_path = self.directory / f"{self.kind}.log"
        self._proc: subprocess.Popen[bytes] | None = None
        self._paused = False
        self._has_run = False

    # Hooks for subclasses.
    def _pick_port(self) -> int:
        return free_port()

    def _command(self) -> list[str]:
        raise NotImplementedError

    def _is_ready(self) -> bool:
        raise NotImplementedError

    def _spawn(self) -> subprocess.Popen[bytes]:
        return _spawn(self._command(), log_path=self.log_path, cwd=self.directory)

    @property
    def address(self) -> tuple[str, int]:
        """The ``(host, port)`` the server listens on."""
        return (self.host, self.port)

    @property
    def running(self) -> bool:
        """Whether the server process is alive (paused counts as alive)."""
        return self._proc is not None and self._proc.poll() is None

    def start(self) -> Self:
        """Start the server, on the same port as before if it ran already, and wait until ready.

        Returns:
            The server itself, for chaining.

        Raises:
            ServiceUnavailable: the binary is missing or the server did not become ready.
        """
        if self.running:
            return self
        attempts = 1 if self._port_pinned else 3
        for attempt in range(1, attempts + 1):
            log_offset = self.log_path.stat().st_size if self.log_path.exists() else 0
            self._proc = self._spawn()
            try:
                _wait_until(
                    self._is_ready,
                    what=f"{self.kind} on {self.host}:{self.port}",
                    proc=self._proc,
                    log_path=self.log_path,
                )
            except ServiceUnavailable:
                self.kill()
                if attempt < attempts and self._lost_port_race(log_offset):
                    self.port = self._pick_port()
                    continue
                if not self._has_run:
                    self.close()  # nothing worth keeping for a restart; the error has the log
                raise
            break
        self._port_pinned = self._has_run = True
        return self

    def _lost_port_race(self, log_offset: int) -> bool:
        with self.log_path.open("rb") as log:
            log.seek(log_offset)
            return _PORT_IN_USE.encode() in log.read()

    def stop(self, *, timeout: float = 10.0) -> None:
        """Shut the server down gracefully (SIGKILL after `timeout` s); `start()` may follow."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(self.stop_signal)
                if self._paused:
                    os.killpg(proc.pid, signal.SIGCONT)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=timeout)
        self._paused = False
        _kill_group(proc)  # whatever did not exit in time, and any orphaned children

    def kill(self) -> None:
        """Crash the server: SIGKILL its whole process group, no shutdown work at all."""
        proc, self._proc = self._proc, None
        self._paused = False
        if proc is not None:
            _kill_group(proc)

    def pause(self) -> None:
        """Freeze the server with SIGSTOP: connections open but nothing ever answers."""
        if self._proc is None:
            raise RuntimeError(f"{self.kind} is not running")
        os.killpg(self._proc.pid, signal.SIGSTOP)
        self._paused = True

    def resume(self) -> None:
        """Undo `pause()` with SIGCONT."""
        if self._proc is None:
            raise RuntimeError(f"{self.kind} is not running")
        os.killpg(self._proc.pid, signal.SIGCONT)
        self._paused = False

    def close(self) -> None:
        """Stop the server for good and delete its directory."""
        self.stop()
        shutil.rmtree(self.directory, ignore_errors=True)
        _live_dirs.discard(self.directory)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.close()


# --------------------------------------------------------------------------- Redis


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


def _parse_info(raw: str) -> dict[str, str]:
    """Parse INFO-style ``key:value`` lines (as CLUSTER INFO sends them) into strings."""
    pairs = (line.split(":", 1) for line in raw.splitlines() if ":" in line)
    return {key: value.strip() for key, value in pairs}


def _replication_info(address: tuple[str, int]) -> dict[str, Any]:
    """Return ``INFO replication`` as redis-py parses it (``slaveN`` values are mappings)."""
    info: dict[str, Any] = redis_call(address, "INFO", "replication")
    return info


class RedisServer(_Server):
    """A private ``redis-server`` on a free loopback port, with no persistence.

    Use it as a context manager, or call `start()` and `close()`. `stop()` then `start()` gives
    an outage and a recovery on the same port (data is lost: nothing is saved); `pause()` and
    `resume()` give a server that accepts connections but never answers.

    Args:
        port: The port to use; a free one by default.
        replicaof: ``(host, port)`` of a master to replicate; read at every `start()`.
        cluster_enabled: Run as a Redis Cluster node (its bus port, port + 10000, is free too).
    """

    kind = "redis"

    def __init__(
        self,
        *,
        port: int | None = None,
        replicaof: tuple[str, int] | None = None,
        cluster_enabled: bool = False,
    ) -> None:
        self.cluster_enabled = cluster_enabled
        self.replicaof = replicaof
        super().__init__(port=port)

    @property
    def url(self) -> str:
        """A ``redis://`` URL for database 0 of this server."""
        return f"redis://{self.host}:{self.port}/0"

    def _pick_port(self) -> int:
        return _free_cluster_port() if self.cluster_enabled else free_port()

    def _command(self) -> list[str]:
        argv = [
            _binary("redis-server"),
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
                "--cluster-node-timeout", "5000",
            ]  # fmt: skip
        if self.replicaof is not None:
            argv += ["--replicaof", self.replicaof[0], str(self.replicaof[1])]
        return argv

    def _is_ready(self) -> bool:
        return _redis_answers(self.address)


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
            _wait_until(self._healthy, what="Redis Cluster to reach cluster_state:ok")
        except BaseException:
            self.close()
            raise
        return self

    def _create(self) -> None:
        argv = [_binary("redis-cli"), "--cluster", "create"]
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


def _flat_dict(reply: Any) -> dict[str, str]:
    """Turn a Sentinel reply (a flat ``[key, value, ...]`` list) into a mapping."""
    if isinstance(reply, dict):
        return {str(key): str(value) for key, value in reply.items()}
    return {str(key): str(value) for key, value in zip(reply[::2], reply[1::2], strict=True)}


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
        return [_binary("redis-server"), str(config), "--sentinel"]


class RedisSentinelSetup:
    """A private master, one replica and three Sentinels (quorum 2) watching them.

    Sentinels declare the master down after 2 s, so `failover()` completes in seconds.

    Args:
        service_name: The name the Sentinels monitor the master under.
    """

    def __init__(self, *, service_name: str = "mymaster") -> None:
        self.service_name = service_name
        master = RedisServer()
        self.servers = [master, RedisServer(replicaof=master.address)]
        self.sentinel_servers = [
            _SentinelServer(monitor=master.address, service_name=service_name, quorum=2)
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
                for server in [*self.servers, *self.sentinel_servers]:
                    server.start()
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
            _wait_until(self._settled, what="Sentinels to agree on a master with a live replica")
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

    def failover(self, *, timeout: float = 30.0, rejoin: bool = True) -> tuple[str, int]:
        """Crash the master with SIGKILL and wait until every Sentinel names a new master.

        Args:
            timeout: Seconds to wait for the switch (and again for the rejoin).
            rejoin: Then restart the crashed server as a replica of the new master and wait
                until the setup is healthy again, so that it can fail over once more.

        Returns:
            The new master's ``(host, port)``.
        """
        import redis

        old = self.master_address()
        crashed = next(server for server in self.servers if server.address == old)
        crashed.kill()

        def switched() -> bool:
            try:
                reported = {self._reported_master(sentinel) for sentinel in self.sentinels}
                if len(reported) != 1 or old in reported:
                    return False
                info = _replication_info(reported.pop())
            except redis.RedisError:
                return False
            return info.get("role") == "master"

        _wait_until(switched, what="Sentinels to promote a new master", timeout=timeout)
        new = self.master_address()
        # Keep each server's own idea of its role right, so a later stop()/start() agrees.
        next(server for server in self.servers if server.address == new).replicaof = None
        crashed.replicaof = new
        if rejoin:
            crashed.start()
            _wait_until(
                self._settled, what="the old master to rejoin as a replica", timeout=timeout
            )
        return new

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
            info = _replication_info(master)
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


# --------------------------------------------------------------------------- PostgreSQL


def _postgres_os_user() -> pwd.struct_passwd | None:
    """Return the account to run PostgreSQL as, or None for "as ourselves".

    PostgreSQL refuses to run as root, so as root it runs as the ``postgres`` OS user.
    """
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam("postgres")
    except KeyError:
        raise ServiceUnavailable(
            "tests run as root and there is no `postgres` OS user to run PostgreSQL as"
        ) from None


def _postgres_binaries() -> tuple[str, str]:
    """Return the paths of ``initdb`` and the matching ``postgres`` server binary."""
    initdb = Path(_binary("initdb")).resolve()
    postgres = initdb.parent / "postgres"
    if not postgres.exists():
        postgres = Path(_binary("postgres"))
    return (str(initdb), str(postgres))


class PostgresServer(_Server):
    """A private PostgreSQL cluster (fresh ``initdb``) on a free loopback port.

    Trust authentication for user ``postgres``, TCP on 127.0.0.1 only, Unix sockets inside its
    own directory, and fsync off (the data is thrown away). When the tests run as root the
    server runs as the ``postgres`` OS user. `stop()` then `start()` gives an outage and a
    recovery on the same port, with the data kept.
    """

    kind = "postgres"
    stop_signal = signal.SIGINT  # "fast" shutdown: roll back open transactions, then exit

    def __init__(self, *, port: int | None = None) -> None:
        super().__init__(port=port)
        self._data = self.directory / "data"
        self._sockets = self.directory / "sockets"

    @classmethod
    def available(cls) -> bool:
        """Whether the PostgreSQL server binaries (``initdb``, ``postgres``) can be used here."""
        try:
            _postgres_binaries()
            _postgres_os_user()
        except ServiceUnavailable:
            return False
        return True

    @property
    def dsn(self) -> str:
        """A ``postgresql://`` DSN for database ``postgres`` as user ``postgres``."""
        return f"postgresql://postgres@{self.host}:{self.port}/postgres"

    def start(self) -> Self:
        """Create the cluster on the first call, then start it and wait until it accepts TCP.

        Returns:
            The server itself, for chaining.

        Raises:
            ServiceUnavailable: binaries missing, initdb failed, or the server did not start.
        """
        if not (self._data / "PG_VERSION").exists():
            try:
                self._initdb()
            except BaseException:
                self.close()
                raise
        return super().start()

    def _initdb(self) -> None:
        initdb, _ = _postgres_binaries()
        run_as = _postgres_os_user()
        self._sockets.mkdir(exist_ok=True)
        if run_as is not None:
            for path in (self.directory, self._sockets):
                os.chown(path, run_as.pw_uid, run_as.pw_gid)
        argv = [initdb, "-D", str(self._data), "-U", "postgres", "--auth=trust"]
        argv += ["--encoding=UTF8", "--locale=C", "--no-sync"]
        # The argv is built from fixed arguments and a path found with shutil.which.
        result = subprocess.run(  # noqa: S603
            argv,
            cwd=self.directory,
            env=self._env(),
            user=run_as.pw_uid if run_as else None,
            group=run_as.pw_gid if run_as else None,
            extra_groups=[] if run_as else None,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if result.returncode != 0:
            raise ServiceUnavailable(f"initdb failed:\n{result.stdout}\n{result.stderr}")

    def _env(self) -> dict[str, str]:
        return {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(self.directory),
            "LC_ALL": "C",
            "LANG": "C",
            "TZ": "UTC",
        }

    def _spawn(self) -> subprocess.Popen[bytes]:
        return _spawn(
            self._command(),
            log_path=self.log_path,
            cwd=self.directory,
            run_as=_postgres_os_user(),
            env=self._env(),
        )

    def _command(self) -> list[str]:
        _, postgres = _postgres_binaries()
        return [
            postgres,
            "-D", str(self._data),
            "-p", str(self.port),
            "-k", str(self._sockets),
            "-c", f"listen_addresses={self.host}",
            "-c", "fsync=off",
            "-c", "synchronous_commit=off",
            "-c", "full_page_writes=off",
        ]  # fmt: skip

    def _is_ready(self) -> bool:
        # postmaster.pid: line 1 is the postmaster's PID (a file left by a crash names another
        # one), line 8 its status, "ready" once it accepts connections.
        try:
            lines = (self._data / "postmaster.pid").read_text().splitlines()
        except FileNotFoundError:
            return False
        return (
            self._proc is not None
            and len(lines) >= 8
            and lines[0].strip() == str(self._proc.pid)
            and lines[7].strip() == "ready"
        )


# --------------------------------------------------------------------------- shared services


def ci_mode() -> bool:
    """Whether the tests run under CI (env ``CI=true``), where a missing service is a failure."""
    return os.environ.get("CI", "").strip().lower() in {"true", "1", "yes"}


def require_service(name: str, probe: Callable[[], T]) -> T:
    """Return what `probe()` returns; if the service is not there, skip, or fail under CI.

    Args:
        name: What the service is, for the skip or failure message.
        probe: Reaches or starts the service; raises `ServiceUnavailable` or `OSError` if it
            cannot.

    Returns:
        The probe's result (for example a started server).
    """
    try:
        return probe()
    except (ServiceUnavailable, OSError, subprocess.SubprocessError) as exc:
        reason = f"{name} is unavailable: {exc}"
        if ci_mode():
            pytest.fail(
                f"{reason}\n(CI=true: a missing service fails the run, never skips it)",
                pytrace=False,
            )
        pytest.skip(reason)


def shared_redis_url() -> str:
    """The shared Redis, on the DB number reserved for these tests."""
    return f"redis://{LOOPBACK}:6379/{SHARED_REDIS_DB}"


def shared_postgres_dsn(database: str = "test") -> str:
    """The shared PostgreSQL server (trust auth, user ``postgres``), on `database`."""
    return f"postgresql://postgres@{LOOPBACK}:5432/{database}"


def probe_redis(url: str) -> None:
    """Raise `ServiceUnavailable` unless the Redis at `url` answers PING."""
    import redis

    try:
        with redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2) as client:
            client.ping()
    except redis.RedisError as exc:
        raise ServiceUnavailable(f"cannot reach Redis at {url}: {exc}") from exc


def delete_redis_keys(url: str, prefix: str) -> int:
    """Delete every key starting with `prefix` with SCAN and UNLINK (never FLUSHDB).

    Returns:
        How many keys were deleted.
    """
    import redis

    if not prefix or any(char in prefix for char in "*?[]\\"):
        raise ValueError(f"refusing to delete by the prefix {prefix!r}: it must be literal")
    deleted = 0
    with redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=2) as client:
        batch: list[bytes] = []
        for key in client.scan_iter(match=f"{prefix}*", count=500):
            batch.append(key)
            if len(batch) == 500:
                deleted += client.unlink(*batch)
                batch.clear()
        if batch:
            deleted += client.unlink(*batch)
    return deleted


def _run_async(factory: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run a coroutine on a fresh event loop in a worker thread.

    Sync fixtures may be set up while an event loop is already running in this thread, where
    `asyncio.run` would refuse to work.
    """
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(lambda: asyncio.run(factory())).result()


async def _postgres_execute(dsn: str, statement: str) -> None:
    import asyncpg

    connection = await asyncpg.connect(dsn, timeout=5)
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


def probe_postgres(dsn: str) -> None:
    """Raise `ServiceUnavailable` unless the PostgreSQL at `dsn` accepts a connection."""
    import asyncpg

    try:
        _run_async(lambda: _postgres_execute(dsn, "SELECT 1"))
    except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        raise ServiceUnavailable(f"cannot reach PostgreSQL at {dsn}: {exc!r}") from exc


@contextlib.contextmanager
def temporary_postgres_database(
    server_dsn: str, *, prefix: str = "sessionauth_test_"
) -> Iterator[str]:
    """Create a uniquely named database, yield its DSN, then drop it.

    The drop uses ``WITH (FORCE)``, so connections a failed test left open do not keep the
    database alive.

    Args:
        server_dsn: A DSN of any database on the server, used for CREATE and DROP DATABASE.
        prefix: The start of the database name; a random suffix makes it unique.
    """
    name = f"{prefix}{uuid.uuid4().hex[:12]}"
    if not re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", name):
        raise ValueError(f"{name!r} is not a plain lower-case SQL identifier")
    _run_async(lambda: _postgres_execute(server_dsn, f'CREATE DATABASE "{name}"'))
    try:
        yield server_dsn.rsplit("/", 1)[0] + f"/{name}"
    finally:
        drop = f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'
        _run_async(lambda: _postgres_execute(server_dsn, drop))
