"""The memory store under the contract suite."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sessionauth.stores.memory import MemoryStore
from tests.contract.harness import Harness
from tests.support.clock import FakeClock


@asynccontextmanager
async def open_harness(clock: FakeClock, context: Any) -> AsyncIterator[Harness]:
    """Yield a memory store (it holds objects, not bytes: nothing can fail to decode)."""
    del context
    yield Harness(store=MemoryStore(clock=clock), corrupt=None)
