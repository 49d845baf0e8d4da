"""The reference server on a clock the test moves, for the second-factor tests.

TOTP codes come from pyotp at the app's clock, which :meth:`MfaServer.code` moves by a whole
step first: each code is then of a step no earlier code used (a code works once).
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from pathlib import Path
from typing import Any

import pyotp
import pytest

from sessionauth.auth.passwords import PasswordHasher
from sessionauth.server.app import create_app
from tests.integration.test_api import Server, settings_for
from tests.support.clock import FakeClock

__all__ = [
    "SQLITE_OR_REDIS",
    "STEP",
    "MfaServer",
    "mfa_server_fixture",
    "serve_mfa",
    "store_overrides",
]

STEP = 30

# Parameters for a fixture run once with the session store on SQLite, once on shared Redis.
SQLITE_OR_REDIS = ["sqlite", pytest.param("redis", marks=pytest.mark.redis)]


class MfaServer(Server):
    """A server whose Authenticator runs on a clock the test moves."""

    clock: FakeClock

    def code(self, secret: str) -> str:
        """A TOTP code one step after any code used so far."""
        self.clock.advance(STEP)
        return str(pyotp.TOTP(secret).at(self.clock.now))


def store_overrides(request: pytest.FixtureRequest, backend: str) -> dict[str, Any]:
    """Settings putting sessions and counters on ``backend``: sqlite, memory or redis.

    SQLite is the settings' default (nothing to override); Redis is the shared one, under
    the test's own key prefix (the ``redis_url`` and ``redis_prefix`` fixtures).
    """
    if backend == "memory":
        return {"store_url": "memory://"}
    if backend == "redis":
        url, prefix = request.getfixturevalue("redis_url"), request.getfixturevalue("redis_prefix")
        return {"store_url": f"{url}?prefix={prefix}"}
    return {}


async def serve_mfa(tmp_path: Path, **overrides: Any) -> AsyncGenerator[MfaServer, None]:
    """Run the app on a :class:`FakeClock` (settings from ``settings_for``); close its clients."""
    clock = FakeClock()
    app = create_app(
        settings_for(tmp_path, **overrides), hasher=PasswordHasher.for_tests(), clock=clock
    )
    async with app.router.lifespan_context(app):
        running = MfaServer(app)
        running.clock = clock
        yield running
        for client in running.clients:
            await client.aclose()


def mfa_server_fixture(backends: list[Any] | None = None) -> Any:
    """A ``server`` fixture for a test module to assign to its own ``server`` name.

    Without ``backends``, the server on SQLite; with them (e.g. :data:`SQLITE_OR_REDIS`), once
    per backend, its sessions and counters there (:func:`store_overrides`).
    """

    @pytest.fixture(params=backends or ["sqlite"])
    async def server(
        request: pytest.FixtureRequest, tmp_path: Path
    ) -> AsyncGenerator[MfaServer, None]:
        """The reference server on a hand-moved clock (see :func:`mfa_server_fixture`)."""
        async for running in serve_mfa(tmp_path, **store_overrides(request, request.param)):
            yield running

    return server
