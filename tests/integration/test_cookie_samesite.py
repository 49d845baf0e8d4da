"""SESSIONAUTH_COOKIE_SAMESITE: lax by default, strict or none on purpose, none only when Secure."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from sessionauth.auth.passwords import PasswordHasher
from sessionauth.cli import app as cli
from sessionauth.errors import ConfigurationError
from sessionauth.server.app import create_app
from sessionauth.server.settings import Settings, load_settings
from sessionauth.server.settings_findings import findings

PASSWORD = "correct horse battery"


def _settings(tmp_path: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "env": "production",
        "secret": "k" * 48,
        "database_url": f"sqlite:///{tmp_path / 'users.db'}",
        "data_dir": tmp_path / "data",
    }
    values.update(overrides)
    return Settings(**values)


@pytest.mark.parametrize(
    ("value", "attribute"),
    [(None, "SameSite=Lax"), ("strict", "SameSite=Strict"), ("None", "SameSite=None")],
)
async def test_the_session_cookie_carries_the_configured_samesite(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, value: str | None, attribute: str
) -> None:
    """The variable (any case) reaches the Set-Cookie of a login; lax when unset."""
    if value is not None:
        monkeypatch.setenv("SESSIONAUTH_COOKIE_SAMESITE", value)
    settings = load_settings(
        env="production",
        secret="k" * 48,
        database_url=f"sqlite:///{tmp_path / 'users.db'}",
        data_dir=tmp_path / "data",
    )
    app = create_app(settings, hasher=PasswordHasher.for_tests())
    async with app.router.lifespan_context(app):
        auth = app.state.authenticator
        await auth.users.create("a@example.com", await auth.hasher.hash(PASSWORD), role="user")
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="https://testserver") as client:
            response = await client.post(
                "/login",
                json={"email": "a@example.com", "password": PASSWORD},
                headers={"Origin": "https://testserver"},
            )
    assert response.status_code == 200
    session_cookie = next(
        c for c in response.headers.get_list("set-cookie") if c.startswith("__Host-session=")
    )
    assert attribute in session_cookie.split("; ")
    assert "Secure" in session_cookie.split("; ")


@pytest.mark.parametrize("env", ["development", "production"])
def test_samesite_none_without_secure_is_refused(tmp_path: Path, env: str) -> None:
    """none with Secure off is a finding and refuses to start, in every environment."""
    settings = _settings(tmp_path, env=env, cookie_samesite="none", cookie_secure=False)
    assert any("SESSIONAUTH_COOKIE_SAMESITE" in item for item in findings(settings))
    with pytest.raises(ConfigurationError, match="none"):
        create_app(settings)


def test_samesite_none_with_secure_is_no_finding(tmp_path: Path) -> None:
    """A cross-site deployment (none, Secure, trusted front end) starts cleanly."""
    settings = _settings(
        tmp_path, cookie_samesite="none", allowed_origins=("https://app.other.example",)
    )
    assert findings(settings) == []
    create_app(settings)


def test_an_unknown_samesite_is_a_clear_error(tmp_path: Path) -> None:
    """`sessionauth check` names the variable for a value outside lax, strict, none."""
    env = {
        "SESSIONAUTH_DATABASE_URL": f"sqlite:///{tmp_path / 'users.db'}",
        "SESSIONAUTH_DATA_DIR": str(tmp_path / "data"),
        "SESSIONAUTH_COOKIE_SAMESITE": "sometimes",
    }
    result = CliRunner().invoke(cli, ["check"], env=env)
    assert result.exit_code == 1
    assert "SESSIONAUTH_COOKIE_SAMESITE" in result.stderr
    assert "Traceback" not in result.output
