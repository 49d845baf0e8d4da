"""The design's floor under wrk: bare Starlette plus the one Redis read, and nothing else.

The baseline app of ``../shared/bench`` (imported, not copied: the floor must differ from it by
the read alone) behind an ASGI wrapper that awaits one ``HMGET`` per HTTP request through the
Redis store's own read pipeline (:class:`sessionauth.backends.redis.reads.ReadPipeline`), the
read every authenticated request of the library makes. No cookie, no MAC, no decoding, no
session: whatever one store read per request costs on this event loop and Redis client, any
session layer pays at least this. compare.sh's ratio of this system is the limit of the design;
the library's distance from it is sessionauth's own work.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from typing import Any

import redis.asyncio

from sessionauth.backends.redis.reads import ReadPipeline

# The harness sits next to the checkout (../shared); override where it does not.
BASELINE = Path(
    os.environ.get(
        "BENCH_BASELINE_APP",
        Path(__file__).resolve().parents[3] / "shared" / "bench" / "peers" / "baseline" / "app.py",
    )
)
# As the library app: BENCH_STORE_URL (benchmarks/in_process.py sets it) or compare.sh's REDIS_URL.
REDIS_URL = os.environ.get("BENCH_STORE_URL") or os.environ.get(
    "REDIS_URL", "redis://127.0.0.1:6379/0"
)


def _baseline() -> Any:
    spec = importlib.util.spec_from_file_location("baseline_app", BASELINE)
    if spec is None or spec.loader is None:
        raise SystemExit(f"cannot load the baseline app at {BASELINE}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.app


baseline = _baseline()
reads = ReadPipeline(redis.asyncio.Redis.from_url(REDIS_URL), timeout=2.0)


async def app(scope: Any, receive: Any, send: Any) -> None:
    """One pipelined ``HMGET`` (a user hash's session field and principals), then the baseline."""
    if scope["type"] == "http":
        await reads.hmget(b"sa:u:floor", b"0123456789a", b"p")
    await baseline(scope, receive, send)
