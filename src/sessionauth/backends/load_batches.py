"""Batched loads for the SQL stores: the loads of one event-loop iteration share one query.

Almost every request costs the store one load, and most of a load's cost is not finding the
row but what surrounds it. On PostgreSQL one query per load means a pool checkout and a round
trip each: at 32 requests in flight on a pool of 10, requests queue for connections while each
query carries a few hundred bytes. On SQLite each statement opens and closes a read transaction
(the WAL read lock: two ``fcntl`` calls, the pager's shared lock) around a few microseconds of
B-tree search. :class:`LoadBatcher` gathers the loads issued in one iteration of the event loop
and answers them all from one ``SELECT … WHERE id = ANY($1)`` (``IN (?, …)`` on SQLite), the
way the Redis store pipelines its reads. Batches do not wait for each other: a load issued
while a batch is in flight starts the next batch at once.

A store that can read without waiting (SQLite's loop-thread reader,
:meth:`~sessionauth.backends.sqlite.files.SQLiteDatabase.read_now`) answers the batch in the
very callback that closes it, with no task; when that read would wait, the batch goes the
awaited way, and when it fails, each id is read alone, so that one row no read can take fails
only its own load.

The rows come back keyed by their ``id`` column, so a row can only answer the load of its own
id; each record is then checked against the id it is served for (its binding, see
:mod:`sessionauth.backends.binding`) like every store's records.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from sessionauth.record import SessionRecord

__all__ = ["LoadBatcher"]

Fetch = Callable[[list[str]], Awaitable[Sequence[Any]]]
FetchNow = Callable[[list[str]], Sequence[Any] | None]
Decode = Callable[[Any, str], SessionRecord | None]
_Batch = dict[str, list[asyncio.Future[SessionRecord | None]]]


class LoadBatcher:
    """Answers ``load(sid)`` calls in batches; see the module.

    Args:
        fetch: Runs the batched query for a list of ids (bounded by the store's timeout) and
            returns rows whose last column is the row's id.
        decode: Turns a row, read for an id, into its record (``None`` if corrupt or unbound).
        fetch_now: Runs the batched query at once, without awaiting; returns ``None`` when it
            cannot (the read would wait, or no such reader), and the batch goes to ``fetch``.
    """

    def __init__(self, fetch: Fetch, decode: Decode, *, fetch_now: FetchNow | None = None):
        self._fetch = fetch
        self._fetch_now = fetch_now
        self._decode = decode
        self._pending: _Batch = {}
        self._scheduled = False
        self._batches: set[asyncio.Task[None]] = set()

    def load(self, sid: str) -> asyncio.Future[SessionRecord | None]:
        """Queue a load of ``sid``; await the future for its live record or ``None``."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[SessionRecord | None] = loop.create_future()
        waiting = self._pending.get(sid)
        if waiting is None:
            self._pending[sid] = [future]
        else:
            waiting.append(future)
        if not self._scheduled:
            self._scheduled = True
            loop.call_soon(self._send)
        return future

    def _send(self) -> None:
        """Answer every load queued since the last batch: at once if possible, else by a task."""
        self._scheduled = False
        batch, self._pending = self._pending, {}
        if self._fetch_now is not None:
            try:
                rows = self._fetch_now(list(batch))
            except Exception as exc:
                if len(batch) == 1:  # an outage, or a row no read can take: this load fails
                    _fail(batch, exc)
                else:
                    self._one_by_one(batch)
                return
            if rows is not None:
                self._resolve(batch, rows)
                return
        self._start(batch)

    def _one_by_one(self, batch: _Batch) -> None:
        """Read each id of ``batch`` alone, its immediate read having failed as a whole.

        One corrupt row (a text column SQLite cannot decode) then fails only its own load,
        not its neighbours'. In an outage each read fails at once, as the batch did.
        """
        fetch_now = self._fetch_now
        assert fetch_now is not None  # noqa: S101 - only the immediate path comes here
        waiting: _Batch = {}
        for sid, futures in batch.items():
            one = {sid: futures}
            try:
                rows = fetch_now([sid])
            except Exception as exc:
                _fail(one, exc)
                continue
            if rows is None:
                waiting[sid] = futures
            else:
                self._resolve(one, rows)
        if waiting:
            self._start(waiting)

    def _start(self, batch: _Batch) -> None:
        """Answer ``batch`` through the awaited ``fetch``, in a task of its own."""
        task = asyncio.get_running_loop().create_task(self._answer(batch))
        # Held until done: the loop keeps only a weak reference to its tasks.
        self._batches.add(task)
        task.add_done_callback(self._batches.discard)

    async def _answer(self, batch: _Batch) -> None:
        try:
            rows = await self._fetch(list(batch))
        except BaseException as exc:
            _fail(batch, exc)
            if not isinstance(exc, Exception):
                raise  # cancelled (the store is closing): the loads above have their answer
            return
        self._resolve(batch, rows)

    def _resolve(self, batch: _Batch, rows: Sequence[Any]) -> None:
        by_id = {row[-1]: row for row in rows}
        for sid, futures in batch.items():
            row = by_id.get(sid)
            for future in futures:
                if future.done():  # its caller gave up
                    continue
                try:
                    # A record of its own for each caller: the middleware may change its copy.
                    record = None if row is None else self._decode(row, sid)
                except Exception as exc:  # a row no store wrote, or a bug
                    # That load fails as it would alone; the batch's other loads must not wait
                    # forever on futures nobody resolves.
                    future.set_exception(exc)
                else:
                    future.set_result(record)


def _fail(batch: _Batch, exc: BaseException) -> None:
    for futures in batch.values():
        for future in futures:
            if not future.done():
                future.set_exception(exc)
