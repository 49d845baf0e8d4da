"""The Redis store under the contract suite, through Sentinel (master, replica, 3 Sentinels)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest

from tests.contract.backend_redis import redis_harness
from tests.contract.harness import Harness
from tests.support.clock import FakeClock
from tests.support.services import RedisSentinelSetup


@asynccontextmanager
async def open_harness(clock: FakeClock, request: pytest.FixtureRequest) -> AsyncIterator[Harness]:
    """Yield a store on the Sentinel-managed master (each login waits for the replica)."""
    setup: RedisSentinelSetup = request.getfixturevalue("redis_sentinel")
    prefix: str = request.getfixturevalue("redis_prefix")
    async with redis_harness(setup.url, clock, prefix) as harness:
        yield harness
