"""The CLI's per-user fan-out: every account once, in order, a bounded number at a time."""

from __future__ import annotations

import asyncio

import pytest

from sessionauth.cli_accounts import _each
from sessionauth.errors import StoreUnavailable


async def test_every_account_is_handled_once_and_results_keep_the_accounts_order() -> None:
    """Results come back in the accounts' order whatever order the work finished in."""
    in_flight, most = 0, 0
    handled: list[int] = []

    async def work(n: int) -> int:
        nonlocal in_flight, most
        in_flight += 1
        most = max(most, in_flight)
        for _ in range(n % 5):  # later accounts may finish first
            await asyncio.sleep(0)
        in_flight -= 1
        handled.append(n)
        return n * 10

    results = await _each(list(range(40)), work, at_once=6)
    assert results == [n * 10 for n in range(40)]
    assert sorted(handled) == list(range(40))
    assert most == 6


async def test_the_first_failure_stops_the_rest_and_is_raised_as_itself() -> None:
    """An outage for one account ends the command with that error, not an exception group."""
    started: list[int] = []

    async def work(n: int) -> int:
        started.append(n)
        await asyncio.sleep(0)
        if n == 3:
            raise StoreUnavailable("the session store is down")
        return n

    with pytest.raises(StoreUnavailable, match="is down"):
        await _each(list(range(100)), work, at_once=4)
    assert len(started) < 100  # the accounts after the failure were never started


async def test_no_accounts_need_no_work() -> None:
    """No accounts: no worker starts and the result is empty."""

    async def work(n: int) -> int:
        raise AssertionError("called")

    assert await _each([], work) == []
