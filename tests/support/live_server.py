"""Real ``sessionauth serve`` processes for the tests, and the HTTP moves every test makes.

`LiveServer` runs the reference server exactly as an operator would (the console script,
uvicorn, uvloop), configured only by the ``SESSIONAUTH_*`` environment it is given, on a free
loopback port. It is one of the private servers of :mod:`tests.support.services`: its own
process group and temporary directory, killed at teardown (and by the ``atexit`` hook if a run
is interrupted), ready once ``GET /healthz`` answers 200, its output captured to a log file
whose tail goes into every failure. `create_user` runs ``sessionauth users create`` against
the same databases.

Clients keep the session cookie by hand (`Agent`), so that one login can be carried from one
server process to another, as a browser behind a load balancer would.
"""

from __future__ import annotations

import contextlib
import http.client
import http.cookiejar
import os
import re
import subprocess
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from tests.support.services.policy import ServiceUnavailable
from tests.support.services.process import ServerProcess, spawn

COOKIE = "session"
"""The development cookie name."""

SECRET = "live-server-test-secret-" + "k" * 24
"""The one secret every process of a deployment shares (at least 32 bytes)."""

PASSWORD = "correct horse battery staple"

CLI_TIMEOUT = 60.0
REQUEST_TIMEOUT = 30.0

_BIND_FAILED = re.compile(r"address already in use", re.IGNORECASE)
_SERVER_ERRORS = ("Exception in ASGI application", "Traceback (most recent call last)")


def _console_script() -> str:
    """The ``sessionauth`` script of the interpreter running the tests (the venv's)."""
    script = Path(sys.executable).parent / "sessionauth"
    if not script.exists():
        raise ServiceUnavailable(f"no sessionauth console script next to {sys.executable}")
    return str(script)


def deployment_env(
    *,
    database_url: str,
    store_url: str,
    data_dir: Path,
    secret: str = SECRET,
    **extra: str,
) -> dict[str, str]:
    """The ``SESSIONAUTH_*`` variables of one deployment (give every process the same).

    Args:
        database_url: The users database.
        store_url: The session store.
        data_dir: The data directory (purge lock file; no generated secret, one is given).
        secret: The shared secret key.
        **extra: More settings, by lower-case name (``allowed_origins="..."``).
    """
    env = {
        "SESSIONAUTH_ENV": "development",
        "SESSIONAUTH_SECRET": secret,
        "SESSIONAUTH_DATABASE_URL": database_url,
        "SESSIONAUTH_STORE_URL": store_url,
        "SESSIONAUTH_DATA_DIR": str(data_dir),
    }
    env.update({f"SESSIONAUTH_{name.upper()}": value for name, value in extra.items()})
    return env


def _process_env(settings: Mapping[str, str]) -> dict[str, str]:
    """The caller's environment without its own ``SESSIONAUTH_*``, plus ``settings``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SESSIONAUTH_")}
    env.update(settings)
    return env


class LiveServer(ServerProcess):
    """``sessionauth serve`` on a free loopback port, in its own process group.

    Args:
        settings: The deployment's ``SESSIONAUTH_*`` variables (see `deployment_env`).
        workers: ``--workers``.
    """

    kind = "sessionauth"

    def __init__(self, settings: Mapping[str, str], *, workers: int = 1) -> None:
        self.settings = dict(settings)
        self.workers = workers
        super().__init__()

    @property
    def url(self) -> str:
        """The base URL, ``http://127.0.0.1:PORT``."""
        return f"http://{self.host}:{self.port}"

    @property
    def pid(self) -> int | None:
        """The server's process id while it runs (a restart changes it)."""
        return self._proc.pid if self._proc is not None and self.running else None

    def _command(self) -> list[str]:
        return [
            _console_script(), "serve",
            "--host", self.host,
            "--port", str(self.port),
            "--workers", str(self.workers),
        ]  # fmt: skip

    def _spawn(self) -> subprocess.Popen[bytes]:
        return spawn(
            self._command(),
            log_path=self.log_path,
            cwd=self.directory,
            env=_process_env(self.settings),
        )

    def _is_ready(self) -> bool:
        connection = http.client.HTTPConnection(self.host, self.port, timeout=1.0)
        try:
            connection.request("GET", "/healthz")
            return connection.getresponse().status == 200
        except OSError:
            return False
        finally:
            connection.close()

    def _lost_port_race(self, log_offset: int) -> bool:
        # uvicorn writes "[Errno 98] error while attempting to bind ...: address already in use".
        with self.log_path.open("rb") as log:
            log.seek(log_offset)
            return bool(_BIND_FAILED.search(log.read().decode(errors="replace")))

    def log_text(self) -> str:
        """Everything the server wrote so far (stdout and stderr)."""
        if not self.log_path.exists():
            return ""
        return self.log_path.read_text(errors="replace")

    def server_errors(self) -> list[str]:
        """Log lines showing an unhandled exception (a 500) in the server."""
        return [
            line for line in self.log_text().splitlines() if any(e in line for e in _SERVER_ERRORS)
        ]

    def report(self, lines: int = 40) -> str:
        """A failure report: the server's state, its first unhandled exception, its log's tail."""
        log = self.log_text().splitlines()
        state = "running" if self.running else "not running"
        parts = [f"--- sessionauth on {self.url} ({state}), log {self.log_path} ---"]
        first = next((i for i, line in enumerate(log) if _SERVER_ERRORS[0] in line), None)
        if first is not None:
            parts += ["first unhandled exception:", *log[first : first + 2 * lines], "log tail:"]
        parts += log[-lines:]
        return "\n".join(parts)


class LiveServers:
    """Every server a test starts, stopped together; their logs go to stderr at the end.

    Pytest shows a test's captured stderr only when it fails, so the logs appear exactly then.
    """

    def __init__(self) -> None:
        self.started: list[LiveServer] = []

    def start(self, settings: Mapping[str, str], *, workers: int = 1) -> LiveServer:
        """Start one more server with ``settings`` and wait for ``/healthz``."""
        server = LiveServer(settings, workers=workers)
        self.started.append(server)
        return server.start()

    def close(self) -> None:
        """Print each server's log tail to stderr, then stop and delete them all."""
        for server in self.started:
            if server.directory.exists():
                print(server.report(), file=sys.stderr)
            server.close()
        self.started.clear()


@contextlib.contextmanager
def live_servers() -> Iterator[LiveServers]:
    """A `LiveServers` closed on exit, whatever happens."""
    pool = LiveServers()
    try:
        yield pool
    finally:
        pool.close()


def create_user(
    settings: Mapping[str, str], email: str, *, role: str = "user", password: str = PASSWORD
) -> int:
    """Create an account with ``sessionauth users create --password-stdin``; return its id."""
    result = subprocess.run(  # noqa: S603 - fixed arguments and the venv's own script
        [_console_script(), "users", "create", email, "--role", role, "--password-stdin"],
        input=password + "\n",
        env=_process_env(settings),
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT,
        check=False,
    )
    found = re.search(r"created user (\d+) ", result.stdout)
    if result.returncode != 0 or found is None:
        raise AssertionError(
            f"users create {email} exited {result.returncode}:\n{result.stdout}{result.stderr}"
        )
    return int(found.group(1))


# --------------------------------------------------------------------------- HTTP clients


def new_client(**kwargs: Any) -> httpx.AsyncClient:
    """An HTTP client that never stores cookies: sessions are carried by `Agent` alone."""
    refuse_all = http.cookiejar.DefaultCookiePolicy(allowed_domains=[])
    return httpx.AsyncClient(
        cookies=http.cookiejar.CookieJar(policy=refuse_all),
        timeout=kwargs.pop("timeout", REQUEST_TIMEOUT),
        **kwargs,
    )


def session_cookie(response: httpx.Response, current: str | None) -> str | None:
    """The session cookie after ``response``: set, cleared (``None``) or unchanged."""
    for header in response.headers.get_list("set-cookie"):
        name, _, rest = header.partition("=")
        if name.strip() != COOKIE:
            continue
        value = rest.partition(";")[0].strip()
        cleared = not value or re.search(r"max-age=0\b", header, re.IGNORECASE)
        current = None if cleared else value
    return current


@dataclass
class Agent:
    """One browser's session, kept by hand and usable against any server of a deployment.

    Attributes:
        client: The HTTP client (see `new_client`); shared by many agents.
        cookie: The session cookie's value, or ``None`` when signed out.
        user_agent: The ``User-Agent`` to send (sessions record it), if not httpx's.
    """

    client: httpx.AsyncClient
    cookie: str | None = None
    user_agent: str | None = None

    async def request(
        self,
        method: str,
        url: str,
        *,
        json: Any = None,
        csrf_from: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        """Send a request with this agent's cookie; take the cookie the answer sets.

        Args:
            method: The HTTP method.
            url: The full URL.
            json: A JSON body; unsafe requests without one send ``{}`` (the API wants JSON).
            csrf_from: For an unsafe request, the base URL to fetch ``/csrf-token`` from first.
            headers: More headers (``X-CSRF-Token`` fetched by the caller).
        """
        sent = {"accept": "application/json"}
        if self.user_agent is not None:
            sent["user-agent"] = self.user_agent
        if self.cookie is not None:
            sent["cookie"] = f"{COOKIE}={self.cookie}"
        if csrf_from is not None:
            sent["x-csrf-token"] = await self.csrf_token(csrf_from)
        sent.update(headers or {})
        if method in ("POST", "PUT", "PATCH", "DELETE") and json is None:
            json = {}
        response = await self.client.request(method, url, headers=sent, json=json)
        self.cookie = session_cookie(response, self.cookie)
        return response

    async def csrf_token(self, base_url: str) -> str:
        """A fresh masked CSRF token from ``base_url``'s ``/csrf-token``."""
        response = await self.request("GET", f"{base_url}/csrf-token")
        if response.status_code != 200:
            raise AssertionError(f"/csrf-token answered {response.status_code}: {response.text}")
        token: str = response.json()["csrfToken"]
        return token

    async def login(self, base_url: str, email: str, password: str = PASSWORD) -> httpx.Response:
        """``POST /login``; a 200 leaves the agent holding the new session cookie.

        A login from inside a session (anonymous or not) is an unsafe request of that session,
        so it sends the session's CSRF token.
        """
        body = {"email": email, "password": password}
        csrf_from = base_url if self.cookie is not None else None
        return await self.request("POST", f"{base_url}/login", json=body, csrf_from=csrf_from)
