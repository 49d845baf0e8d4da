"""Settings on the reference server: the production refusals, the findings, the secret key."""

from __future__ import annotations

import logging
import stat
from pathlib import Path
from typing import Any

import pytest

from sessionauth.errors import ConfigurationError
from sessionauth.server.app import create_app
from sessionauth.server.secret_key import load_keyring
from sessionauth.server.settings import Settings
from sessionauth.server.settings_findings import enforce, findings
from tests.support.apps import production

STRONG = "k" * 48


@pytest.mark.parametrize(
    ("overrides", "fix"),
    [
        ({"store_url": "memory://"}, "SESSIONAUTH_STORE_URL is memory://"),
        ({"secret": None}, "generate one with `sessionauth secret`"),
        ({"secret": "short-key"}, "weak (shorter than 32 bytes)"),
        ({"secret": f"{STRONG},old"}, "key #2 is weak"),
        ({"cookie_secure": False}, "set SESSIONAUTH_COOKIE_SECURE=true"),
        ({"allowed_origins": ("*",)}, "list each trusted origin exactly"),
        ({"allowed_origins": ("https://a.example/",)}, "no path, query or trailing slash"),
        ({"trusted_proxies": ("*",)}, "list your proxies' addresses"),
        ({"trusted_proxies": ("proxy.local",)}, "not an IP address or network"),
        ({"database_url": "sqlite:///:memory:"}, "accounts vanish on restart"),
        ({"metrics_token": "short"}, "SESSIONAUTH_METRICS_TOKEN is shorter than 16 bytes"),
    ],
)
def test_production_refuses_each_unsafe_setting_naming_the_fix(
    tmp_path: Path, overrides: dict[str, Any], fix: str
) -> None:
    """create_app() in production raises ConfigurationError whose message says the fix."""
    with pytest.raises(ConfigurationError, match="refusing to start in production") as caught:
        create_app(production(tmp_path, **overrides))
    assert fix in str(caught.value)


def test_production_with_safe_settings_has_no_findings(tmp_path: Path) -> None:
    """A safe production configuration starts, with a Secure __Host- cookie."""
    settings = production(tmp_path, allowed_origins=("https://app.example.com",))
    assert findings(settings) == []
    assert settings.secure_cookie is True
    create_app(settings)


def test_development_refuses_a_wildcard_origin_too(tmp_path: Path) -> None:
    """'*' with credentials is refused in development as well, not only reported."""
    settings = Settings(env="development", allowed_origins=("*",), data_dir=tmp_path)
    assert any("'*'" in item for item in findings(settings))
    with pytest.raises(ConfigurationError):
        create_app(settings)


def test_development_secret_is_generated_once_privately(tmp_path: Path) -> None:
    """Without SESSIONAUTH_SECRET, development makes one key, mode 0600, and reuses it."""
    settings = Settings(env="development", data_dir=tmp_path / "data")
    first = load_keyring(settings)
    path = tmp_path / "data" / "secret"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    second = load_keyring(settings)
    assert second.unsign(first.sign("t" * 43)) == "t" * 43
    path.chmod(0o644)
    assert any("chmod 600" in item for item in findings(settings))


def test_production_never_generates_a_secret(tmp_path: Path) -> None:
    """Production without a secret refuses to build a keyring and writes no file."""
    with pytest.raises(ConfigurationError, match="SESSIONAUTH_SECRET is not set"):
        load_keyring(production(tmp_path, secret=None))
    assert not (tmp_path / "data").exists()


def test_production_warns_of_a_database_others_may_read_but_starts(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A 0644 SQLite file in production is a logged warning with the fix, not a refused start."""
    settings = production(tmp_path)
    path = Path(settings.database_url.removeprefix("sqlite:///"))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o644)
    path.chmod(0o644)
    with caplog.at_level(logging.WARNING, logger="sessionauth.server"):
        enforce(settings)
    assert [record.getMessage() for record in caplog.records] == [
        f"configuration: the SQLite database {path} is readable or writable by others (it holds "
        f"password hashes and sessions): chmod 600 {path}"
    ]


def test_a_variable_that_is_no_setting_is_a_finding_and_a_warning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A misspelt variable was ignored without a word (its setting left at the default).

    Now `check` names it with the setting it is closest to; production still starts (a
    variable of the operator's own must not stop it) and logs it.
    """
    monkeypatch.setenv("SESSIONAUTH_STORE_ULR", "redis://127.0.0.1:6379/0")
    monkeypatch.setenv("SESSIONAUTH_DEPLOYED_BY", "ci")
    settings = production(tmp_path, allowed_origins=("https://app.example.com",))
    assert findings(settings) == [
        "SESSIONAUTH_DEPLOYED_BY is not a setting and is ignored",
        "SESSIONAUTH_STORE_ULR is not a setting and is ignored: did you mean "
        "SESSIONAUTH_STORE_URL?",
    ]
    with caplog.at_level(logging.WARNING, logger="sessionauth.server"):
        enforce(settings)
    assert len(caplog.records) == 2
    assert "SESSIONAUTH_STORE_ULR" in caplog.records[1].getMessage()
