"""The ``sessionauth`` CLI on a bad day: unreachable stores, taken ports, no terminal.

Commands whose output depends on the process (logging, the terminal, binding a port) run as
the real console script; the others through typer's runner.
"""

from __future__ import annotations

import json
import re
import socket
import subprocess
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
import typer

from sessionauth import __version__
from sessionauth.cli import app as cli
from tests.support.cli import (
    PASSWORD,
    SCRIPT,
    add_session,
    invoke,
    script,
    script_environment,
    user_named,
)
from tests.support.services.ports import free_port
from tests.support.services.process import wait_until


@pytest.fixture
def nobody_listens() -> str:
    """A loopback ``host:port`` where nothing listens (a port just bound and released)."""
    return f"127.0.0.1:{free_port()}"


@pytest.fixture
def taken_port() -> Iterator[int]:
    """A loopback port this test holds open for listening."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


def test_version_prints_the_package_version(env: dict[str, str]) -> None:
    """`sessionauth --version` prints the version and exits 0."""
    result = invoke(env, "--version")
    assert (result.exit_code, result.stdout.strip()) == (0, f"sessionauth {__version__}")


def every_command(group: Any, prefix: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    """The argv of each command and group under ``group`` (a click group), the group first."""
    yield prefix
    for name, command in group.commands.items():
        if hasattr(command, "commands"):  # a group (Typer vendors its own click)
            yield from every_command(command, (*prefix, name))
        else:
            yield (*prefix, name)


def test_every_help_names_values_and_nothing_for_flags(env: dict[str, str]) -> None:
    """No `<bool>` in any --help; options that take a value name it (HOST, EMAIL), no `<str>`."""
    commands = list(every_command(typer.main.get_group(cli)))
    assert len(commands) > 15
    helps = {" ".join(argv): invoke(env, *argv, "--help") for argv in commands}
    for argv, result in helps.items():
        assert result.exit_code == 0, (argv, result.output)
        assert "<bool>" not in result.stdout, (argv, result.stdout)
        options = [line for line in result.stdout.splitlines() if line.startswith("  -")]
        assert not [line for line in options if "<" in line], (argv, result.stdout)
    assert "--yes " not in helps["users delete"].stdout.replace("-y, --yes  ", "")
    assert "--host HOST" in helps["serve"].stdout
    assert "--graceful-timeout SECONDS" in helps["serve"].stdout
    assert "--user EMAIL" in helps["sessions revoke"].stdout


def test_check_reports_an_unreachable_session_store(
    env: dict[str, str], nobody_listens: str
) -> None:
    """`check` with the store down is not "no findings": it names the store, exits 1."""
    result = invoke({**env, "SESSIONAUTH_STORE_URL": f"redis://{nobody_listens}/0"}, "check")
    assert result.exit_code == 1
    assert "no findings" not in result.stdout
    assert f"the session store does not answer: Redis session store at {nobody_listens}" in (
        result.stdout
    )


def test_purge_expired_fails_when_the_store_is_unreachable(
    env: dict[str, str], nobody_listens: str
) -> None:
    """`purge-expired` with Redis down exits 1 naming it, instead of "purged 0"."""
    down = {**env, "SESSIONAUTH_STORE_URL": f"redis://{nobody_listens}/0"}
    result = invoke(down, "purge-expired")
    assert result.exit_code == 1
    assert "purged" not in result.stdout
    assert f"Redis session store at {nobody_listens} unavailable" in result.stderr


def test_redis_errors_name_the_address_and_the_failure(
    env: dict[str, str], nobody_listens: str
) -> None:
    """A Redis outage says which address failed and how, not just `network:ConnectionError`."""
    invoke(env, "users", "create", "ann@example.com", "--password-stdin", input=PASSWORD)
    down = {**env, "SESSIONAUTH_STORE_URL": f"redis://{nobody_listens}/0"}
    result = invoke(down, "sessions", "list")
    assert result.exit_code == 1
    assert f"at {nobody_listens} unavailable: ConnectionError: " in result.stderr
    assert f"connecting to {nobody_listens}" in result.stderr


def test_an_unknown_database_url_names_its_own_variable(env: dict[str, str]) -> None:
    """SESSIONAUTH_DATABASE_URL=mysql://x is blamed on that variable, not on the session store."""
    result = invoke({**env, "SESSIONAUTH_DATABASE_URL": "mysql://x"}, "users", "list")
    assert result.exit_code == 1
    assert "SESSIONAUTH_DATABASE_URL" in result.stderr
    assert "session store" not in result.stderr


@pytest.mark.parametrize("port", ["-1", "65536", "99999"])
def test_serve_refuses_a_port_outside_0_to_65535(env: dict[str, str], port: str) -> None:
    """`serve --port 99999` is a usage error, not a server on port 99999 % 65536."""
    result = script(env, "serve", "--port", port)
    assert result.returncode == 2
    assert "--port" in result.stderr


def test_serve_on_port_0_says_which_port_it_got(env: dict[str, str]) -> None:
    """`serve --port 0` listens on a free port and its "listening on" line names that one."""
    server = subprocess.Popen(  # noqa: S603 - the venv's own script, fixed arguments
        [SCRIPT, "serve", "--port", "0", "--no-access-log"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env={**script_environment(), **env},
        text=True,
    )
    try:
        assert server.stderr is not None
        lines = iter(server.stderr.readline, "")
        listening = next(line for line in lines if "listening on" in line)
        found = re.search(r"listening on http://127\.0\.0\.1:(\d+)$", listening.strip())
        assert found, listening
        port = int(found[1])
        assert port != 0

        def healthy() -> bool:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as r:
                    return bool(r.status == 200)
            except OSError:
                return False

        wait_until(healthy, what="the server on the port it named")
    finally:
        server.terminate()
        server.communicate(timeout=30)


def test_a_taken_port_fails_the_start_before_the_admin_is_made(
    env: dict[str, str], taken_port: int
) -> None:
    """The first start binds before it prints the one-time password: a taken port loses none."""
    result = script(env, "serve", "--port", str(taken_port))
    assert result.returncode == 1
    assert f"cannot listen on 127.0.0.1:{taken_port}" in result.stderr
    assert "password" not in result.stdout + result.stderr
    assert user_named(env, "admin@localhost") is None  # the next start makes it and says so


def test_users_disable_asks_unless_yes(env: dict[str, str]) -> None:
    """`users disable` asks like the other destructive commands, and takes --yes."""
    invoke(env, "users", "create", "ann@example.com", "--password-stdin", input=PASSWORD)
    declined = invoke(env, "users", "disable", "ann@example.com", input="n\n")
    assert declined.exit_code == 1
    assert not user_named(env, "ann@example.com").disabled  # type: ignore[union-attr]
    agreed = invoke(env, "users", "disable", "ann@example.com", "--yes")
    assert agreed.exit_code == 0
    assert user_named(env, "ann@example.com").disabled  # type: ignore[union-attr]


def test_a_disable_prints_its_outcome_and_logs_its_events_on_stderr(env: dict[str, str]) -> None:
    """stdout: the one human line; stderr: the security events, one line each, as a server's."""
    script(env, "users", "create", "ann@example.com", "--password-stdin", stdin=PASSWORD)
    ann = user_named(env, "ann@example.com")
    assert ann is not None
    add_session(env, ann)
    result = script(env, "users", "disable", "ann@example.com", "--yes")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "ann@example.com is disabled and signed out everywhere\n"
    assert result.stderr.splitlines() == [
        f"WARNING:  account_disabled user={ann.id} address=None actor=None",
        f"WARNING:  sessions_revoked user={ann.id} address=None count=1 why=disabled actor=None",
    ]


def test_admin_commands_log_json_events_with_log_format_json(env: dict[str, str]) -> None:
    """SESSIONAUTH_LOG_FORMAT=json: each event of set-role, set-password… is one JSON line."""
    json_env = {**env, "SESSIONAUTH_LOG_FORMAT": "json"}
    made = script(
        json_env, "users", "create", "ann@example.com", "--password-stdin", stdin=PASSWORD
    )
    ann = user_named(env, "ann@example.com")
    assert ann is not None
    add_session(env, ann)
    runs = [
        made,
        script(json_env, "users", "set-role", "ann@example.com", "admin"),
        script(
            json_env, "users", "set-password", "ann@example.com", "--password-stdin", stdin=PASSWORD
        ),
        script(json_env, "sessions", "revoke", "--user", "ann@example.com", "--yes"),
    ]
    assert [run.returncode for run in runs] == [0, 0, 0, 0], [run.stderr for run in runs]
    assert runs[1].stdout == "ann@example.com is now admin\n"
    lines = [json.loads(line) for run in runs for line in run.stderr.splitlines()]
    fields = ("event", "user", "actor", "role", "count", "why")
    assert [{k: line[k] for k in fields if k in line} for line in lines] == [
        {"event": "user_created", "user": ann.id, "actor": None, "role": "user"},
        {"event": "role_changed", "user": ann.id, "actor": None, "role": "admin"},
        {"event": "password_reset", "user": ann.id, "actor": None},
        {
            "event": "sessions_revoked",
            "user": ann.id,
            "actor": None,
            "count": 1,
            "why": "password-reset",
        },
        {"event": "sessions_revoked", "user": ann.id, "actor": None, "count": 0, "why": "admin"},
    ]
    assert {line["logger"] for line in lines} == {"sessionauth.security"}
    assert PASSWORD not in "".join(run.stderr for run in runs)


def test_users_create_without_a_terminal_says_to_use_password_stdin(
    env: dict[str, str],
) -> None:
    """No terminal and no --password-stdin: an error naming the flag, not a GetPassWarning."""
    result = script(env, "users", "create", "ann@example.com")
    assert result.returncode == 1
    assert "--password-stdin" in result.stderr
    assert "GetPassWarning" not in result.stderr
    assert user_named(env, "ann@example.com") is None


def _past_the_last_database(redis_url: str) -> str:
    """A URL on the shared Redis naming one database past its last (``redis://…/16``)."""
    import redis

    with redis.Redis.from_url(redis_url) as client:
        databases = int(client.config_get("databases")["databases"])
    base = redis_url.split("?", 1)[0].rsplit("/", 1)[0]
    return f"{base}/{databases}"


@pytest.mark.redis
@pytest.mark.parametrize("command", ["check", "purge-expired"])
def test_a_redis_database_out_of_range_is_reported_without_a_traceback(
    env: dict[str, str], redis_url: str, command: str
) -> None:
    """`redis://host/16` on a 16-database Redis: one clear line and exit 1, never a traceback."""
    result = script({**env, "SESSIONAUTH_STORE_URL": _past_the_last_database(redis_url)}, command)
    assert result.returncode == 1
    assert "Traceback" not in result.stdout + result.stderr, result.stderr[-400:]
    assert "DB index is out of range" in result.stdout + result.stderr


def test_check_reports_an_unreachable_redis_cluster_without_a_traceback(
    env: dict[str, str], nobody_listens: str
) -> None:
    """`check` against a Cluster URL where nothing listens names it and exits 1, no traceback."""
    result = script({**env, "SESSIONAUTH_STORE_URL": f"redis+cluster://{nobody_listens}"}, "check")
    assert result.returncode == 1
    assert "Traceback" not in result.stdout + result.stderr, result.stderr[-400:]
    assert "the session store does not answer: Redis session store at Redis Cluster" in (
        result.stdout
    )
