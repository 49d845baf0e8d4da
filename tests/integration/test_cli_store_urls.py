"""A store URL the CLI cannot use is one line naming it, exit 1, never a traceback.

Malformed URLs (an unknown option, a bad port or host) are refused by every command before
anything connects; a store that answers but refuses its URL (a Redis database it does not
have, a PostgreSQL database that does not exist) fails ``serve`` and ``check``; a store that
is merely down still lets ``serve`` start, as before.
"""

from __future__ import annotations

import subprocess
from collections.abc import Mapping

import pytest

from tests.support.cli import SCRIPT, script, script_environment
from tests.support.services.ports import free_port

# (URL, what the one line must say): the password never, the problem always.
MALFORMED = [
    (
        "postgresql://postgres:s3cret@127.0.0.1:5432/x?foo=bar",
        "bad PostgreSQL URL 'postgresql://postgres:***@127.0.0.1:5432/x?foo=bar': "
        "unknown option 'foo'; it accepts host, port,",
    ),
    (
        "redis://127.0.0.1:6379/13?prefx=app1:",
        "bad Redis URL 'redis://127.0.0.1:6379/13?prefx=app1:': unknown option 'prefx'; "
        "it accepts prefix,",
    ),
    ("redis://127.0.0.1:6379/13?bogus=1", "unknown option 'bogus'"),
    (
        "postgresql://postgres@127.0.0.1:99999/x",
        "bad PostgreSQL URL 'postgresql://postgres@127.0.0.1:99999/x': bad port '99999'",
    ),
    ("postgresql://postgres@[::1/x", "bad IPv6 address in '[::1'"),
]
COMMANDS = [("check",), ("sessions", "list"), ("serve", "--port", "PORT")]


def _argv(command: tuple[str, ...]) -> list[str]:
    """The command with a free port for PORT (a server started by mistake must still bind)."""
    return [str(free_port()) if arg == "PORT" else arg for arg in command]


def _assert_one_line_error(result: subprocess.CompletedProcess[str], *needles: str) -> None:
    output = result.stdout + result.stderr
    assert result.returncode == 1, output[-600:]
    assert "Traceback" not in output, output[-600:]
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: "), lines[0]
    for needle in needles:
        assert needle in lines[0]
    assert "s3cret" not in output


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
@pytest.mark.parametrize(("url", "said"), MALFORMED, ids=[url for url, _ in MALFORMED])
def test_a_malformed_store_url_is_one_line(
    env: dict[str, str], command: tuple[str, ...], url: str, said: str
) -> None:
    """check, sessions list and serve refuse it before connecting, naming the variable."""
    result = script({**env, "SESSIONAUTH_STORE_URL": url}, *_argv(command))
    _assert_one_line_error(result, "SESSIONAUTH_STORE_URL", said)


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
@pytest.mark.parametrize(
    ("url", "said"),
    [item for item in MALFORMED if item[0].startswith("postgresql")],
    ids=[url for url, _ in MALFORMED if url.startswith("postgresql")],
)
def test_a_malformed_database_url_is_one_line(
    env: dict[str, str], command: tuple[str, ...], url: str, said: str
) -> None:
    """The users database's URL is checked the same way, and blamed on its own variable."""
    result = script({**env, "SESSIONAUTH_DATABASE_URL": url}, *_argv(command))
    _assert_one_line_error(result, "SESSIONAUTH_DATABASE_URL", said)


def _past_the_last_database(redis_url: str) -> str:
    """A URL on the shared Redis naming one database past its last (``redis://…/16``)."""
    import redis

    with redis.Redis.from_url(redis_url) as client:
        databases = int(client.config_get("databases")["databases"])
    return f"{redis_url.split('?', 1)[0].rsplit('/', 1)[0]}/{databases}"


def _production(env: Mapping[str, str], store_url: str) -> dict[str, str]:
    return {**env, "SESSIONAUTH_ENV": "production", "SESSIONAUTH_STORE_URL": store_url}


@pytest.mark.redis
def test_serve_refuses_a_redis_database_out_of_range(env: dict[str, str], redis_url: str) -> None:
    """Redis answers `DB index is out of range`: the start fails, instead of 503 forever."""
    store_url = _past_the_last_database(redis_url)
    result = script(_production(env, store_url), *_argv(("serve", "--port", "PORT")))
    _assert_one_line_error(result, "the session store: Redis session store at", "DB index is out")
    assert "managed services" not in result.stderr


@pytest.mark.redis
def test_check_reports_the_real_error_of_a_redis_database_out_of_range(
    env: dict[str, str], redis_url: str
) -> None:
    """check names the refusal, and its eviction warning blames it, not managed services."""
    result = script({**env, "SESSIONAUTH_STORE_URL": _past_the_last_database(redis_url)}, "check")
    assert result.returncode == 1
    assert "Traceback" not in result.stdout + result.stderr
    assert "- the session store: Redis session store at " in result.stdout
    assert "refuses the URL's settings: ResponseError: DB index is out of range" in result.stdout
    assert "(DB index is out of range); make sure maxmemory-policy" in result.stdout
    assert "managed services" not in result.stdout


@pytest.mark.postgres
@pytest.mark.parametrize("command", [("check",), ("serve", "--port", "PORT")], ids=" ".join)
def test_a_postgresql_database_that_does_not_exist_fails_the_start(
    env: dict[str, str], postgres_dsn: str, command: tuple[str, ...]
) -> None:
    """PostgreSQL refuses the URL (no such database): serve and check fail, naming it."""
    url = postgres_dsn.rsplit("/", 1)[0] + "/sessionauth_no_such_database"
    result = script({**env, "SESSIONAUTH_STORE_URL": url}, *_argv(command))
    output = result.stdout + result.stderr
    assert result.returncode == 1, output[-600:]
    assert "Traceback" not in output
    assert "the session store: PostgreSQL at " in output
    assert 'InvalidCatalogNameError: database "sessionauth_no_such_database" does not exist' in (
        output
    )


def test_serve_still_starts_with_its_store_down(env: dict[str, str]) -> None:
    """A store that does not answer at start-up is no reason to refuse it: 503s until it does."""
    down = {**env, "SESSIONAUTH_STORE_URL": f"redis://127.0.0.1:{free_port()}/0"}
    with subprocess.Popen(  # noqa: S603 - the venv's own script, fixed arguments
        [SCRIPT, "serve", "--port", str(free_port())],
        env={**script_environment(), **down},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    ) as server:
        assert server.stderr is not None
        lines = []
        try:
            for line in server.stderr:
                lines.append(line)
                if "listening on" in line or "error:" in line:
                    break
        finally:
            server.terminate()
            server.wait(timeout=30)
    assert any("listening on" in line for line in lines), "".join(lines)
