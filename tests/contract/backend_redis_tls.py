"""The Redis store under the contract suite over TLS (the test's own CA) as a limited ACL user.

Every operation, the pipelined reads included (their connection is redis-py's TLS connection,
taken over), goes through TLS and the ACL user's key pattern.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest

from tests.contract.backend_redis import redis_harness
from tests.contract.harness import Harness
from tests.support.clock import FakeClock
from tests.support.services.redis_tls import RedisTLSServer


@asynccontextmanager
async def open_harness(clock: FakeClock, request: pytest.FixtureRequest) -> AsyncIterator[Harness]:
    """Yield a store on the private TLS server under this test's own key prefix."""
    server: RedisTLSServer = request.getfixturevalue("redis_tls")
    prefix: str = request.getfixturevalue("redis_prefix")
    async with redis_harness(server.url, clock, prefix) as harness:
        yield harness
