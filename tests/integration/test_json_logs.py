"""``SESSIONAUTH_LOG_FORMAT=json``: ``sessionauth serve`` logs JSON lines, events as fields."""

from __future__ import annotations

import json
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


def test_an_unknown_log_format_is_refused_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """SESSIONAUTH_LOG_FORMAT=xml is a clear configuration error, not a silent default."""
    monkeypatch.setenv("SESSIONAUTH_LOG_FORMAT", "xml")
    with pytest.raises(ConfigurationError, match="SESSIONAUTH_LOG_FORMAT"):
        load_settings()
