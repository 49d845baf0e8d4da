"""LoadBatcher: loads of one loop iteration answered together, at once or by the awaited path."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import pytest

from sessionauth.backends.load_batches import LoadBatcher
from sessionauth.errors import StoreUnavailable
from sessionauth.record import SessionRecord

ROWS = {"a": ("A", "a"), "b": ("B", "b")}  # a row is (value, id): its id last


def decode(row: Any, sid: str) -> SessionRecord:
    return SessionRecord(data={"value": row[0], "for": sid}, created=0, seen=0, issued=0, expires=1)


class Calls:
    """Records each batch the two paths were asked for."""

    def __init__(self, now: str) -> None:
        self.now_mode = now  # "answer", "decline" (the read would wait) or "fail"
        self.now: list[list[str]] = []
        self.awaited: list[list[str]] = []

    def fetch_now(self, sids: list[str]) -> Sequence[Any] | None:
        self.now.append(sids)
        if self.now_mode == "fail":
            raise StoreUnavailable("disk I/O error")
        if self.now_mode == "decline":
            return None
        return [ROWS[sid] for sid in sids if sid in ROWS]

    async def fetch(self, sids: list[str]) -> Sequence[Any]:
        self.awaited.append(sids)
        return [ROWS[sid] for sid in sids if sid in ROWS]


@pytest.mark.parametrize("mode", ["answer", "decline"])
async def test_one_batch_answers_every_load_of_an_iteration(mode: str) -> None:
    """Loads queued together are one batch: answered at once, or awaited when it would wait."""
    calls = Calls(mode)
    batcher = LoadBatcher(calls.fetch, decode, fetch_now=calls.fetch_now)
    loaded = await asyncio.gather(*(batcher.load(sid) for sid in ["a", "b", "a", "zz"]))
    assert [None if found is None else found.data for found in loaded] == [
        {"value": "A", "for": "a"},
        {"value": "B", "for": "b"},
        {"value": "A", "for": "a"},
        None,
    ]
    assert loaded[0] is not loaded[2]
    assert calls.now == [["a", "b", "zz"]]
    assert calls.awaited == ([] if mode == "answer" else [["a", "b", "zz"]])


async def test_an_outage_of_the_immediate_read_fails_every_load_of_the_batch() -> None:
    """A read that fails (not one that would wait) is an outage for each load, not a retry."""
    calls = Calls("fail")
    batcher = LoadBatcher(calls.fetch, decode, fetch_now=calls.fetch_now)
    results = await asyncio.gather(batcher.load("a"), batcher.load("b"), return_exceptions=True)
    assert [type(result) for result in results] == [StoreUnavailable, StoreUnavailable]
    assert calls.awaited == []


async def test_a_load_given_up_on_is_skipped_and_the_others_answered() -> None:
    """A caller cancelled before the batch ran leaves its future alone; the rest get rows."""
    calls = Calls("answer")
    batcher = LoadBatcher(calls.fetch, decode, fetch_now=calls.fetch_now)
    abandoned = batcher.load("a")
    kept = batcher.load("b")
    abandoned.cancel()
    found = await kept
    assert found is not None
    assert found.data == {"value": "B", "for": "b"}
    assert abandoned.cancelled()


@pytest.mark.parametrize("mode", ["answer", "decline"])
async def test_a_row_that_fails_to_decode_fails_its_load_only(mode: str) -> None:
    """A decode error reaches that load's caller; the batch's other loads are still answered."""

    def fussy(row: Any, sid: str) -> SessionRecord:
        if sid == "a":
            raise TypeError("created is not a number")
        return decode(row, sid)

    calls = Calls(mode)
    batcher = LoadBatcher(calls.fetch, fussy, fetch_now=calls.fetch_now)
    results = await asyncio.wait_for(
        asyncio.gather(batcher.load("a"), batcher.load("b"), return_exceptions=True), 1
    )
    assert isinstance(results[0], TypeError)
    assert isinstance(results[1], SessionRecord)
    assert results[1].data == {"value": "B", "for": "b"}


async def test_a_batch_whose_read_fails_is_read_id_by_id_so_one_bad_row_fails_alone() -> None:
    """A row no read can take fails its own load; the batch's other ids are read one by one."""
    asked: list[list[str]] = []

    def fetch_now(sids: list[str]) -> Sequence[Any] | None:
        asked.append(sids)
        if "bad" in sids:
            raise StoreUnavailable("Could not decode to UTF-8 column 'data'")
        return [ROWS[sid] for sid in sids if sid in ROWS]

    async def fetch(sids: list[str]) -> Sequence[Any]:
        raise AssertionError("the immediate path answers")

    batcher = LoadBatcher(fetch, decode, fetch_now=fetch_now)
    results = await asyncio.gather(
        batcher.load("a"), batcher.load("bad"), batcher.load("b"), return_exceptions=True
    )
    assert isinstance(results[1], StoreUnavailable)
    assert [getattr(found, "data", None) for found in (results[0], results[2])] == [
        {"value": "A", "for": "a"},
        {"value": "B", "for": "b"},
    ]
    assert asked == [["a", "bad", "b"], ["a"], ["bad"], ["b"]]
