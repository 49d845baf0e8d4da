"""Settings read from SESSIONAUTH_* variables, and what production implies (one test each)."""

from __future__ import annotations

from pathlib import Path

import pytest

from sessionauth.errors import ConfigurationError
from sessionauth.server.settings import Settings, load_settings
from sessionauth.server.settings_findings import findings

STRONG = "k" * 48


def settings(env: str, tmp_path: Path, **overrides: object) -> Settings:
    """Settings for ``env`` with a strong secret, a file database and a private data dir."""
    values: dict[str, object] = {
        "env": env,
        "secret": STRONG,
        "database_url": f"sqlite:///{tmp_path / 'users.db'}",
        "data_dir": tmp_path / "data",
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


def test_environment_variables_are_read(monkeypatch: pytest.MonkeyPatch) -> None:
    """SESSIONAUTH_* variables fill the settings; lists are comma-separated."""
    monkeypatch.setenv("SESSIONAUTH_ENV", "production")
    monkeypatch.setenv("SESSIONAUTH_ALLOWED_ORIGINS", "https://a.example, https://b.example")
    monkeypatch.setenv("SESSIONAUTH_TRUSTED_PROXIES", "10.0.0.0/8")
    monkeypatch.setenv("SESSIONAUTH_DATABASE_URL", "sqlite:///x.db")
    monkeypatch.setenv("SESSIONAUTH_COOKIE_SECURE", "")
    loaded = load_settings()
    assert loaded.allowed_origins == ("https://a.example", "https://b.example")
    assert loaded.trusted_proxies == ("10.0.0.0/8",)
    assert loaded.session_store_url == "sqlite:///x.db"
    assert loaded.secure_cookie is True
    monkeypatch.setenv("SESSIONAUTH_ENV", "staging")
    with pytest.raises(ConfigurationError, match="SESSIONAUTH_ENV"):
        load_settings()


@pytest.mark.parametrize(("env", "expected"), [("production", True), ("development", False)])
def test_findings_stop_the_start_only_in_production(
    env: str, expected: bool, tmp_path: Path
) -> None:
    """strict: production refuses findings and an evicting Redis; development warns."""
    assert settings(env, tmp_path).strict is expected


@pytest.mark.parametrize(("env", "expected"), [("production", False), ("development", True)])
def test_swagger_ui_only_in_development(env: str, expected: bool, tmp_path: Path) -> None:
    """docs_enabled: /docs loads a CDN script, so production does not serve it."""
    assert settings(env, tmp_path).docs_enabled is expected


@pytest.mark.parametrize(("env", "expected"), [("production", False), ("development", True)])
def test_first_admin_only_in_development(env: str, expected: bool, tmp_path: Path) -> None:
    """bootstrap_enabled: no default account is ever created in production."""
    assert settings(env, tmp_path).bootstrap_enabled is expected


@pytest.mark.parametrize(("env", "expected"), [("production", "off"), ("development", "open")])
def test_metrics_without_a_token_are_open_only_in_development(
    env: str, expected: str, tmp_path: Path
) -> None:
    """metrics_access: open in development, off in production; a token guards both."""
    assert settings(env, tmp_path).metrics_access == expected
    assert settings(env, tmp_path, metrics_token="t" * 32).metrics_access == "token"


@pytest.mark.parametrize(("env", "expected"), [("production", True), ("development", False)])
def test_hsts_only_in_production(env: str, expected: bool, tmp_path: Path) -> None:
    """hsts: Strict-Transport-Security only where the server is behind HTTPS."""
    assert settings(env, tmp_path).hsts is expected


@pytest.mark.parametrize(("env", "expected"), [("production", False), ("development", True)])
def test_ephemeral_stores_only_in_development(env: str, expected: bool, tmp_path: Path) -> None:
    """ephemeral_stores_allowed: memory:// sessions are a finding only in production."""
    chosen = settings(env, tmp_path, store_url="memory://")
    assert chosen.ephemeral_stores_allowed is expected
    flagged = any("memory://" in item for item in findings(chosen))
    assert flagged is not expected


@pytest.mark.parametrize(("env", "expected"), [("production", False), ("development", True)])
def test_a_generated_secret_only_in_development(env: str, expected: bool, tmp_path: Path) -> None:
    """generates_secret: a missing secret is generated in development, a finding in production."""
    chosen = settings(env, tmp_path, secret=None)
    assert chosen.generates_secret is expected
    flagged = any("SESSIONAUTH_SECRET is not set" in item for item in findings(chosen))
    assert flagged is not expected


@pytest.mark.parametrize(("env", "expected"), [("production", True), ("development", False)])
def test_secure_cookies_by_default_and_required_only_in_production(
    env: str, expected: bool, tmp_path: Path
) -> None:
    """requires_secure_cookie: the default Secure flag, and a finding when forced off."""
    chosen = settings(env, tmp_path)
    assert (chosen.requires_secure_cookie, chosen.secure_cookie) == (expected, expected)
    forced_off = settings(env, tmp_path, cookie_secure=False)
    flagged = any("SESSIONAUTH_COOKIE_SECURE" in item for item in findings(forced_off))
    assert flagged is expected
