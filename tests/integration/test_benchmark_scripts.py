"""The benchmark scripts that measure in process still run against the code they measure.

They print numbers and assert nothing about speed, so a refactor that renames what they call
breaks them silently (``steps.py`` once called a store method that had moved): here each runs
with a few iterations, and every row it promises must come out as a number.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from tests.support.services import RedisServer

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"

STEP_ROWS = (
    "find the cookie",
    "check its MAC (HMAC-SHA256)",
    "storage id (SHA-256)",
    "key and field of the read",
    "decode the record",
    "its principal (cached)",
    "the Session object",
    "commit plan (nothing to write)",
    "response headers (private)",
    "sum of the steps",
    "whole middleware, memory store",
)


def test_steps_prints_a_time_for_every_step_of_the_hot_path() -> None:
    """Each row of the per-step table comes out as microseconds."""
    run = subprocess.run(  # noqa: S603 - our own interpreter and script
        [sys.executable, str(BENCHMARKS / "steps.py"), "--number", "20"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    for row in STEP_ROWS:
        assert re.search(rf"^{re.escape(row)}\s+-?\d+\.\d\d us$", run.stdout, re.M), run.stdout


def test_parts_prints_a_time_for_the_library_and_each_variant(private_redis: RedisServer) -> None:
    """Each variant of benchmarks/parts.py runs (answering 200 throughout) and prints µs."""
    run = subprocess.run(  # noqa: S603 - our own interpreter and script
        [sys.executable, str(BENCHMARKS / "parts.py"), "--store", private_redis.url,
         "--rounds", "1", "--requests", "320", "--repeat", "1"],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    for variant in ("library", "cookie cached", "load inlined", "bare wrapper"):
        assert re.search(rf"^{variant}\s+\d+\.\d us/request$", run.stdout, re.M), run.stdout
