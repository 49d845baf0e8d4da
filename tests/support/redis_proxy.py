"""A TCP proxy in front of a real Redis that can tamper with the replies it relays.

It forwards every byte from clients to Redis unchanged and splits what Redis answers into whole
RESP frames, so a test can make the next replies arrive swapped, or slip a frame of its own
between two replies, as a buggy proxy or a misbehaving server would. It listens on a free
loopback port and relays to the server it was given, nothing else.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

__all__ = ["RedisProxy", "frame_end", "redis_proxy"]


def frame_end(buffer: bytes | bytearray, start: int = 0) -> int | None:
    """Return where the RESP2/RESP3 frame starting at ``start`` ends, or ``None`` if incomplete."""
    line_end = buffer.find(b"\r\n", start)
    if line_end < 0:
        return None
    kind = buffer[start : start + 1]
    after_line = line_end + 2
    if kind in (b"+", b"-", b":", b"_", b",", b"#", b"("):
        return after_line
    length = int(buffer[start + 1 : line_end])
    if kind in (b"$", b"=", b"!"):
        if length < 0:
            return after_line
        end = after_line + length + 2
        return end if len(buffer) >= end else None
    if kind in (b"*", b">", b"~", b"%", b"|"):
        position: int | None = after_line
        for _ in range(max(length, 0) * (2 if kind in (b"%", b"|") else 1)):
            position = frame_end(buffer, position)  # type: ignore[arg-type]
            if position is None:
                return None
        return position
    raise ValueError(f"not a RESP frame: {bytes(buffer[start : start + 20])!r}")


class RedisProxy:
    """Relays to ``(host, port)``; see the module. Arm a tampering, then let the client read.

    Args:
        host: The real server's address (loopback).
        port: The real server's port.
    """

    def __init__(self, host: str, port: int) -> None:
        self._upstream = (host, port)
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._swap_next = False
        self._inject: bytes | None = None
        self.tampered = asyncio.Event()
        """Set once an armed tampering has been applied to a reply stream."""

    @property
    def url(self) -> str:
        """A ``redis://`` URL (database 0) that reaches the server through this proxy."""
        assert self._server is not None
        host, port = self._server.sockets[0].getsockname()[:2]
        return f"redis://{host}:{port}/0"

    def swap_next_two_replies(self) -> None:
        """The next two replies Redis sends on one connection reach the client swapped."""
        self._swap_next, self.tampered = True, asyncio.Event()

    def inject_after_next_reply(self, frame: bytes) -> None:
        """``frame`` reaches the client right after the next reply Redis sends."""
        self._inject, self.tampered = frame, asyncio.Event()

    async def start(self) -> None:
        """Listen on a free loopback port."""
        self._server = await asyncio.start_server(self._relay, "127.0.0.1", 0)

    async def aclose(self) -> None:
        """Stop listening and close every relayed connection."""
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, ConnectionError):
                await task

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        upstream_reader, upstream_writer = await asyncio.open_connection(*self._upstream)
        tasks = [
            asyncio.create_task(self._pipe(reader, upstream_writer)),
            asyncio.create_task(self._replies(upstream_reader, writer)),
        ]
        self._tasks.update(tasks)
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in tasks:
                task.cancel()
                self._tasks.discard(task)
            writer.close()
            upstream_writer.close()

    @staticmethod
    async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()

    async def _replies(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        buffer = bytearray()
        while data := await reader.read(65536):
            buffer += data
            frames = []
            while (end := frame_end(buffer)) is not None:
                frames.append(bytes(buffer[:end]))
                del buffer[:end]
            if self._swap_next and len(frames) == 1:
                buffer[:0] = frames.pop()  # hold a lone reply until its partner arrives
            frames = self._tamper(frames)
            writer.write(b"".join(frames))
            await writer.drain()

    def _tamper(self, frames: list[bytes]) -> list[bytes]:
        if self._swap_next and len(frames) >= 2:
            self._swap_next = False
            frames[0], frames[1] = frames[1], frames[0]
            self.tampered.set()
        elif self._inject is not None and frames:
            frames.insert(1, self._inject)
            self._inject = None
            self.tampered.set()
        return frames


@contextlib.asynccontextmanager
async def redis_proxy(host: str, port: int) -> AsyncIterator[RedisProxy]:
    """A started :class:`RedisProxy` in front of ``(host, port)``, closed afterwards."""
    proxy = RedisProxy(host, port)
    await proxy.start()
    try:
        yield proxy
    finally:
        await proxy.aclose()
