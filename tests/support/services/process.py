"""One private server process on a loopback port, and the machinery that reaps it.

Each process runs in its own process group with its own temporary directory; `stop()`/`close()`
end them, and an `atexit` hook (and a SIGTERM handler) kills whatever is left, so a failing
test or an interrupted run leaves no stray servers behind. `ServerProcess` is the base class
of every private server: subclasses say how to build the command line and how to tell the
server is ready.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Self

from tests.support.services.policy import ServiceUnavailable
from tests.support.services.ports import LOOPBACK, free_port

START_TIMEOUT = 30.0

_POLL_INTERVAL = 0.05
_PORT_IN_USE = "Address already in use"

# Every process and directory still owned by this module, so the atexit hook can reap them.
_live_processes: dict[int, subprocess.Popen[bytes]] = {}
_live_dirs: set[Path] = set()


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


def binary(name: str) -> str:
    """Return the path of the program `name` on PATH; raise `ServiceUnavailable` if missing."""
    path = shutil.which(name)
    if path is None:
        raise ServiceUnavailable(f"`{name}` is not installed (not found on PATH)")
    return path


def spawn(
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


def wait_until(
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


class ServerProcess:
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
        return spawn(self._command(), log_path=self.log_path, cwd=self.directory)

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
            log_offset = self.log_size()
            self._proc = self._spawn()
            try:
                wait_until(
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

    def log_size(self) -> int:
        """How many bytes the server's log holds so far: where what it writes next begins."""
        return self.log_path.stat().st_size if self.log_path.exists() else 0

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
