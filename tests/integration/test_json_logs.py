"""``SESSIONAUTH_LOG_FORMAT=json``: ``sessionauth serve`` logs JSON lines, events as fields."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from sessionauth.errors import ConfigurationError
from sessionauth.server.settings import load_settings
from tests.support.live_server import (
    PASSWORD,
    create_user,
    deployment_env,
    live_servers,
    new_client,
)
from tests.support.services import PostgresServer


def json_lines(text: str) -> list[dict[str, Any]]:
    """Every line of ``text`` that is a JSON object (uvicorn's start-up banner may not be)."""
    found = []
    for line in text.splitlines():
        try:
            value = json.loads(line)
        except ValueError:
            continue
        if isinstance(value, dict):
            found.append(value)
    return found


async def test_serve_logs_a_failed_login_as_a_json_event(tmp_path: Path) -> None:
    """A failed login is one JSON line: event, user and address as fields, no password."""
    settings = deployment_env(
        database_url=f"sqlite:///{tmp_path / 'sessionauth.db'}",
        store_url=f"sqlite:///{tmp_path / 'sessionauth.db'}",
        data_dir=tmp_path / "data",
        log_format="json",
    )
    user_id = create_user(settings, "alice@example.com")
    with live_servers() as servers:
        server = servers.start(settings)
        async with new_client(base_url=server.url) as client:
            body = {"email": "alice@example.com", "password": "not " + PASSWORD}
            assert (await client.post("/login", json=body)).status_code == 401
        # The event is logged (and its handler flushed) before the 401 is sent.
        text = server.log_text()
    events = [e for e in json_lines(text) if e.get("event") == "login_failed"]
    assert len(events) == 1, text
    event = events[0]
    assert event["logger"] == "sessionauth.security"
    assert event["level"] == "WARNING"
    assert event["user"] == user_id
    assert event["address"] == "127.0.0.1"
    assert PASSWORD not in text
    assert "alice@example.com" not in json.dumps(event)
    # Every line a pipeline reads is JSON, the start-up's "listening on" included.
    lines = [line for line in text.splitlines() if line.strip()]
    assert len(json_lines(text)) == len(lines), text
    assert any(e["message"].startswith("listening on http://") for e in json_lines(text)), text


# Logs as `sessionauth serve` configures logging: a third-party warning with a traceback (as
# asyncpg's pool logs one per retry during a PostgreSQL outage), a third party's INFO and one
# of the library's.
_THIRD_PARTY = """
import logging, logging.config
from sessionauth.cli import _log_config
logging.config.dictConfig(_log_config("json"))
try:
    raise ConnectionRefusedError(111, "Connect call failed ('127.0.0.1', 5432)")
except OSError:
    logging.getLogger("asyncpg.pool").warning(
        "Failed to restore the pool connection floor; retrying", exc_info=True
    )
logging.getLogger("some.library").info("chatter")
logging.getLogger("sessionauth.server").info("purged 3 expired sessions")
"""


def test_third_party_records_are_json_lines_too() -> None:
    """Another library's warning is one JSON line, its traceback a field; its INFO is not shown."""
    result = subprocess.run(  # noqa: S603 - this interpreter, a fixed script
        [sys.executable, "-c", _THIRD_PARTY],
        env=dict(os.environ),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert result.stdout == ""
    lines = [json.loads(line) for line in result.stderr.splitlines()]  # each a JSON object
    assert [(line["logger"], line["level"]) for line in lines] == [
        ("asyncpg.pool", "WARNING"),
        ("sessionauth.server", "INFO"),
    ]
    assert lines[0]["message"] == "Failed to restore the pool connection floor; retrying"
    assert lines[0]["exception"].startswith("Traceback (most recent call last):")
    assert "ConnectionRefusedError" in lines[0]["exception"]


@pytest.mark.postgres
@pytest.mark.slow
async def test_a_postgresql_outage_leaves_only_json_lines(
    tmp_path: Path, private_postgres: PostgresServer
) -> None:
    """A PostgreSQL session store stops: asyncpg's retries, tracebacks and all, are JSON lines."""
    settings = deployment_env(
        database_url=f"sqlite:///{tmp_path / 'sessionauth.db'}",
        store_url=private_postgres.dsn,
        data_dir=tmp_path / "data",
        log_format="json",
    )
    create_user(settings, "alice@example.com")
    with live_servers() as servers:
        server = servers.start(settings)
        async with new_client(base_url=server.url) as client:
            body = {"email": "alice@example.com", "password": PASSWORD}
            assert (await client.post("/login", json=body)).status_code == 200
            await asyncio.to_thread(private_postgres.stop)
            assert (await client.post("/login", json=body)).status_code == 503
            # asyncpg's pool retries its lost connection 1, 2, 4… s apart, a warning each time.
            for _ in range(100):
                if "Failed to restore the pool connection floor" in server.log_text():
                    break
                await asyncio.sleep(0.1)
        text = server.log_text()
    # The one line the command prints itself, before logging is configured.
    lines = [line for line in text.splitlines() if not line.startswith("sessionauth: listening")]
    records = [json.loads(line) for line in lines]  # each line one JSON object
    retries = [r for r in records if r["logger"] == "asyncpg.pool"]
    assert retries, text
    assert all("exception" in retry for retry in retries)
    assert any(r["message"].startswith("store unavailable: ") for r in records), text


def test_an_unknown_log_format_is_refused_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """SESSIONAUTH_LOG_FORMAT=xml is a clear configuration error, not a silent default."""
    monkeypatch.setenv("SESSIONAUTH_LOG_FORMAT", "xml")
    with pytest.raises(ConfigurationError, match="SESSIONAUTH_LOG_FORMAT"):
        load_settings()
