"""An HTTP scope as a server hands it to an ASGI app, for tests that drive the app directly."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

__all__ = ["http_scope"]


def http_scope(
    method: str,
    path: str,
    headers: Sequence[tuple[bytes, bytes]] = (),
    *,
    raw_path: bytes | None = None,
    query: bytes = b"",
) -> dict[str, Any]:
    """The scope of one HTTP/1.1 request from 127.0.0.1; a ``Host`` is added unless given."""
    host = [] if any(name == b"host" for name, _ in headers) else [(b"host", b"testserver")]
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode() if raw_path is None else raw_path,
        "root_path": "",
        "query_string": query,
        "headers": [*host, *headers],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
    }
