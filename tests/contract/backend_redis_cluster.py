"""The Redis store under the contract suite, on a private three-master Redis Cluster."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest

from tests.contract.backend_redis import redis_harness
from tests.contract.harness import Harness
from tests.support.clock import FakeClock
from tests.support.services import RedisCluster


@asynccontextmanager
async def open_harness(clock: FakeClock, request: pytest.FixtureRequest) -> AsyncIterator[Harness]:
    """Yield a store on the private cluster under this test's own key prefix."""
    cluster: RedisCluster = request.getfixturevalue("redis_cluster")
    prefix: str = request.getfixturevalue("redis_prefix")
    async with redis_harness(cluster.url, clock, prefix) as harness:
        yield harness
