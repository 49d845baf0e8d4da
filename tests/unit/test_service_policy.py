"""A missing service skips a test on a developer machine and fails the run under CI=true."""

from __future__ import annotations

import pytest

from tests.support.services.policy import ServiceUnavailable, require_service


def _missing() -> None:
    raise ServiceUnavailable("connection refused")


def test_a_missing_service_fails_under_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    """Under CI=true require_service fails the test, naming the service: never a skip."""
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="Redis is unavailable: connection refused"):
        require_service("Redis", _missing)


def test_a_missing_service_skips_elsewhere(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without CI, require_service skips with the reason instead of failing."""
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="Redis is unavailable"):
        require_service("Redis", _missing)


def test_a_present_service_is_handed_back(monkeypatch: pytest.MonkeyPatch) -> None:
    """When the probe answers, require_service returns what it returned, CI or not."""
    monkeypatch.setenv("CI", "true")
    assert require_service("Redis", lambda: 6379) == 6379
