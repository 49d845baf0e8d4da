"""Fixtures of the integration tests: the ``sessionauth`` CLI's environment, the MFA server.

``server`` and ``redis_server`` are the second-factor tests' reference server on a clock the
test moves (``test_mfa_api``, ``test_totp_pages``); a module with a ``server`` of its own
overrides them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.support.cli import cli_environment
from tests.support.mfa_server import MfaServer, mfa_server_fixture, serve_mfa


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    """The variables of a development CLI on a SQLite database in ``tmp_path``."""
    return cli_environment(tmp_path)


server = mfa_server_fixture()


@pytest.fixture
async def redis_server(
    tmp_path: Path, redis_url: str, redis_prefix: str
) -> AsyncIterator[MfaServer]:
    """The reference server with sessions and counters on Redis (factors with the users)."""
    async for running in serve_mfa(tmp_path, store_url=f"{redis_url}?prefix={redis_prefix}"):
        yield running
