"""Private PostgreSQL clusters (a fresh ``initdb`` each), run as a non-root user."""

from __future__ import annotations

import os
import pwd
import signal
import subprocess
from pathlib import Path
from typing import Self

from tests.support.services.policy import ServiceUnavailable
from tests.support.services.process import ServerProcess, binary, spawn


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
    initdb = Path(binary("initdb")).resolve()
    postgres = initdb.parent / "postgres"
    if not postgres.exists():
        postgres = Path(binary("postgres"))
    return (str(initdb), str(postgres))


class PostgresServer(ServerProcess):
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
        return spawn(
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
