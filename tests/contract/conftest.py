"""Runs the contract suites against every backend, each over its real server."""

from __future__ import annotations

import importlib
from collections.abc import AsyncIterator

import pytest

from tests.contract.harness import Harness
from tests.support.clock import FakeClock

# Every session store; each name has a module backend_<name>.py here. Marks let `-m redis`
# or `-m "not postgres"` pick backends.
_MARKS = {
    "redis": pytest.mark.redis,
    "redis_cluster": pytest.mark.redis,
    "redis_sentinel": pytest.mark.redis,
    "redis_tls": pytest.mark.redis,
    "postgres": pytest.mark.postgres,
}
STORE_NAMES = [
    "memory",
    "sqlite",
    "redis",
    "redis_cluster",
    "redis_sentinel",
    "redis_tls",
    "postgres",
]
STORE_BACKENDS = [
    pytest.param(name, marks=[_MARKS[name]] if name in _MARKS else [], id=name)
    for name in STORE_NAMES
]
# Those that keep bytes, so a record can be corrupted underneath them.
BYTE_BACKENDS = [param for param in STORE_BACKENDS if param.id != "memory"]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


async def _open(
    name: str, clock: FakeClock, request: pytest.FixtureRequest
) -> AsyncIterator[Harness]:
    module = importlib.import_module(f"tests.contract.backend_{name}")
    async with module.open_harness(clock, request) as harness:
        yield harness
        await harness.store.aclose()


@pytest.fixture(params=STORE_BACKENDS)
async def harness(request: pytest.FixtureRequest, clock: FakeClock) -> AsyncIterator[Harness]:
    async for opened in _open(request.param, clock, request):
        yield opened


@pytest.fixture(params=BYTE_BACKENDS)
async def byte_harness(request: pytest.FixtureRequest, clock: FakeClock) -> AsyncIterator[Harness]:
    async for opened in _open(request.param, clock, request):
        yield opened
