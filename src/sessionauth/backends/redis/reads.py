"""The hot-path reads of the Redis store, pipelined on one dedicated connection.

Almost every request costs the store one ``HMGET`` (a session and its principal; ``GET`` for an
anonymous session). Through redis-py's asyncio
client that read cost about 67 µs of CPU at 32 requests in flight, and still about 10 µs when
concurrent reads were batched into one redis-py pipeline: connection checkout, a reader
coroutine per reply and a timer per call dominate a read whose reply is ~150 bytes
(``benchmarks/redis_clients.py``). :class:`ReadPipeline` keeps the bare minimum:

* One connection, opened by redis-py (so address, Sentinel master discovery, TLS, ``AUTH`` and
  ``SELECT`` stay redis-py's job) and then driven by an :class:`asyncio.Protocol` with a
  ``hiredis`` reader. Redis answers in order, so a FIFO of futures is all the bookkeeping.
* That connection speaks RESP2, whatever the client's default (redis-py 8 made it RESP3). In
  RESP3 Redis mixes *push frames* into a connection's replies: client-tracking invalidations
  that any client may redirect to this connection (``CLIENT TRACKING ON REDIRECT <id>``), and
  the maintenance notices of managed Redis. Taken for a reply, one such frame would shift every
  later reply by one read: a request would get another key's value, another user's session. In
  RESP2 a connection that subscribes to nothing gets nothing but its own replies. Should a push
  frame arrive all the same it is consumed, never matched to a read, and any other frame that
  cannot answer the read it would be matched to (an array for a ``GET``, a string or an array
  of another length for an ``HMGET``) closes the connection. (The store also binds every
  record to its key, :mod:`sessionauth.backends.binding`, so a reply that does reach the wrong
  read is no session.)
* The reads issued in one event-loop iteration go out in one ``write``; later ones follow at
  once (pipelined), without waiting for the earlier replies.
* One watchdog timer per connection, not one per read: it fires at the oldest unanswered read's
  deadline, so no read waits longer than the timeout, and re-arms while replies keep coming.

Only idempotent single-key reads go through here, so a read whose connection died before the
reply is sent once more on a fresh connection (a server restart or an idle timeout closes idle
connections; that should not fail the next request). A connection that stops answering is
closed, never reused: a late reply would otherwise answer the wrong request.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
from typing import Any

import hiredis
from redis import exceptions as rx

__all__ = ["ReadPipeline"]

_MORE = object()  # hiredis: no complete reply buffered yet
_GET = b"*2\r\n$3\r\nGET\r\n$%d\r\n%b\r\n"
_HGET = b"*3\r\n$4\r\nHGET\r\n$%d\r\n%b\r\n$%d\r\n%b\r\n"
_HMGET = b"*4\r\n$5\r\nHMGET\r\n$%d\r\n%b\r\n$%d\r\n%b\r\n$%d\r\n%b\r\n"


class _Read:
    """One queued or in-flight read."""

    __slots__ = ("command", "deadline", "fields", "future", "retried")

    def __init__(
        self, command: bytes, future: asyncio.Future[Any], deadline: float, fields: int
    ) -> None:
        self.command = command
        self.future = future
        self.deadline = deadline
        self.fields = fields  # HMGET: how many values the reply array holds; 0: one value
        self.retried = False


class _Replies(asyncio.Protocol):
    """The connection's protocol: matches each reply to the oldest unanswered read."""

    def __init__(self, owner: ReadPipeline, writer: asyncio.StreamWriter):
        self._owner = owner
        # Held for the connection's life: a collected StreamWriter closes its transport.
        self._writer = writer
        self.transport: asyncio.Transport = writer.transport  # type: ignore[assignment]
        self.waiting: collections.deque[_Read] = collections.deque()
        self._parser = hiredis.Reader(
            protocolError=rx.InvalidResponse, replyError=rx.ResponseError, notEnoughData=_MORE
        )

    def data_received(self, data: bytes) -> None:
        """Resolve every read whose reply is complete."""
        self._parser.feed(data)
        waiting = self.waiting
        try:
            while (reply := self._parser.gets()) is not _MORE:
                if type(reply) is list:
                    fits = len(reply) == waiting[0].fields
                elif type(reply) is bytes or reply is None:
                    fits = not waiting[0].fields
                elif isinstance(reply, hiredis.PushNotification):
                    continue  # out of band: never the reply to a read
                else:
                    fits = isinstance(reply, rx.ResponseError)
                if not fits:
                    # Not how the oldest read is answered: the stream cannot be trusted.
                    unexpected = f"not a reply to a read: {type(reply).__name__}"
                    self._owner._drop(self, rx.ConnectionError(unexpected))
                    return
                read = waiting.popleft()
                if read.future.done():  # its caller gave up; the reply is consumed all the same
                    continue
                if isinstance(reply, rx.ResponseError):
                    read.future.set_exception(reply)
                else:
                    read.future.set_result(reply)
        except (rx.InvalidResponse, IndexError) as exc:  # garbage, or a reply nobody asked for
            self._owner._drop(self, rx.ConnectionError(f"bad reply from Redis: {exc!r}"))

    def connection_lost(self, exc: Exception | None) -> None:
        """The server or the network closed the connection."""
        self._owner._drop(self, rx.ConnectionError(f"connection to Redis lost: {exc!r}"))


class ReadPipeline:
    """Sends ``GET``/``HGET``/``HMGET`` pipelined on one connection of its own; see the module.

    Args:
        client: A redis-py asyncio client, not a cluster client (one connection must reach the
            key's server). Its pool makes the connection; the pool's other connections, and
            every command but these reads, stay redis-py's.
        timeout: Seconds a read may take, connecting included; past it, it fails with
            ``TimeoutError`` and the connection is closed.
    """

    def __init__(self, client: Any, *, timeout: float):
        self._pool = client.connection_pool
        self._timeout = timeout
        self._queue: list[_Read] = []
        self._flush_scheduled = False
        self._protocol: _Replies | None = None
        self._connecting: asyncio.Task[None] | None = None
        self._watchdog: asyncio.TimerHandle | None = None
        self._closed = False

    def get(self, key: bytes) -> asyncio.Future[Any]:
        """Queue ``GET key``; await the future for the value (``None`` if absent)."""
        return self._queue_read(_GET % (len(key), key), 0)

    def hget(self, key: bytes, field: bytes) -> asyncio.Future[Any]:
        """Queue ``HGET key field``; await the future for the value (``None`` if absent)."""
        return self._queue_read(_HGET % (len(key), key, len(field), field), 0)

    def hmget(self, key: bytes, first: bytes, second: bytes) -> asyncio.Future[Any]:
        """Queue ``HMGET key first second``; await the future for the two values (or ``None``)."""
        command = _HMGET % (len(key), key, len(first), first, len(second), second)
        return self._queue_read(command, 2)

    def _queue_read(self, command: bytes, fields: int) -> asyncio.Future[Any]:
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        if self._closed:
            future.set_exception(rx.ConnectionError("the Redis read pipeline is closed"))
            return future
        self._queue.append(_Read(command, future, loop.time() + self._timeout, fields))
        if not self._flush_scheduled:
            self._flush_scheduled = True
            loop.call_soon(self._flush)
        return future

    def _flush(self) -> None:
        """Write every queued read in one go, connecting first if need be."""
        self._flush_scheduled = False
        protocol = self._protocol
        if protocol is None:
            if self._queue and self._connecting is None and not self._closed:
                self._connecting = asyncio.get_running_loop().create_task(self._connect())
            return
        sent = [read for read in self._queue if not read.future.done()]
        self._queue = []
        if not sent:
            return
        protocol.waiting.extend(sent)
        protocol.transport.write(b"".join([read.command for read in sent]))
        if self._watchdog is None:
            self._arm(protocol.waiting[0].deadline)

    async def _connect(self) -> None:
        """Open a RESP2 connection with redis-py (see the module), then take its transport over."""
        pool = self._pool
        connection = pool.connection_class(**{**pool.connection_kwargs, "protocol": 2})
        try:
            async with asyncio.timeout(self._timeout):
                await connection.connect()
        except BaseException as exc:
            self._connecting = None
            await _close_quietly(connection)
            if not isinstance(exc, Exception):
                raise  # cancelled by aclose()
            # Refused, timed out, no master known, bad password: to every caller, an outage.
            failure = rx.ConnectionError(f"cannot connect to Redis: {exc!r}")
            self._fail(self._queue, failure)
            self._queue = []
            return
        self._connecting = None
        writer = _take_writer(connection)
        if self._closed:
            writer.transport.abort()
            return
        protocol = _Replies(self, writer)
        writer.transport.set_protocol(protocol)
        self._protocol = protocol
        self._flush()

    def _arm(self, deadline: float) -> None:
        loop = asyncio.get_running_loop()
        self._watchdog = loop.call_at(deadline, self._check_deadline)

    def _check_deadline(self) -> None:
        """The watchdog: close a connection whose oldest unanswered read is overdue."""
        self._watchdog = None
        protocol = self._protocol
        if protocol is None or not protocol.waiting:
            return
        oldest = protocol.waiting[0].deadline
        if asyncio.get_running_loop().time() < oldest:
            self._arm(oldest)
            return
        self._drop(protocol, TimeoutError("Redis did not answer within the timeout"))

    def _drop(self, protocol: _Replies, exc: Exception) -> None:
        """Close ``protocol``'s connection; send its reads once more, or fail them with ``exc``.

        A lost connection may just have been idle too long: its reads go again, once, ahead of
        newer ones. A timeout is an outage, and so is a second loss: those reads fail.
        """
        if self._protocol is not protocol:
            return  # already dropped (connection_lost after our own abort)
        self._protocol = None
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None
        protocol.transport.abort()
        retry, failed = [], []
        may_retry = not self._closed and not isinstance(exc, TimeoutError)
        for read in protocol.waiting:
            if read.future.done():
                continue
            if may_retry and not read.retried:
                read.retried = True
                retry.append(read)
            else:
                failed.append(read)
        protocol.waiting.clear()
        self._fail(failed, exc)
        self._queue[:0] = retry
        if self._queue and not self._flush_scheduled:
            self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(self._flush)

    @staticmethod
    def _fail(reads: list[_Read], exc: BaseException) -> None:
        for read in reads:
            if not read.future.done():
                read.future.set_exception(exc)

    async def aclose(self) -> None:
        """Close the connection; reads still pending fail with ``ConnectionError``."""
        self._closed = True
        closing = rx.ConnectionError("the Redis read pipeline is closed")
        if self._connecting is not None:
            self._connecting.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._connecting
        if self._protocol is not None:
            self._drop(self._protocol, closing)
        self._fail(self._queue, closing)
        self._queue = []


def _take_writer(connection: Any) -> asyncio.StreamWriter:
    """Detach the connected stream from a redis-py connection, which then forgets it.

    redis-py 8 keeps its stream pair in ``_reader``/``_writer``; clearing them makes the
    connection object "not connected", so it neither closes nor warns about the transport we
    now drive. The Redis store's tests exercise this against the installed redis-py.
    """
    writer: asyncio.StreamWriter = connection._writer
    connection._reader = connection._writer = None
    return writer


async def _close_quietly(connection: Any) -> None:
    with contextlib.suppress(Exception):
        await connection.disconnect(nowait=True)
