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

import pytest

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


# Its own bounds are the subprocesses' (callgrind is slow, and slower on a busy machine).
@pytest.mark.timeout(900)
def test_in_process_times_and_counts_every_system(private_redis: RedisServer) -> None:
    """in_process.py drives each app to 200s and prints µs; --instructions prints counts."""
    script = str(BENCHMARKS / "in_process.py")
    timed = subprocess.run(  # noqa: S603 - our own interpreter and script
        [sys.executable, script, "--store", private_redis.url, "--requests", "320",
         "--repeat", "1"],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert timed.returncode == 0, timed.stderr
    for system in ("baseline", "floor", "session-floor", "library", "server"):
        assert re.search(rf"^{system}\s+\d+\.\d us/request", timed.stdout, re.M), timed.stdout
    counted = subprocess.run(  # noqa: S603 - our own interpreter and script
        [sys.executable, script, "--store", private_redis.url, "--instructions",
         "--systems", "baseline,library", "--runs", "320,640"],
        capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert counted.returncode == 0, counted.stderr
    counts = dict(re.findall(r"^(\S+)\s+([\d,]+) instructions/request", counted.stdout, re.M))
    assert set(counts) == {"baseline", "library"}, counted.stdout
    # The library does everything bare Starlette does and a session besides.
    assert int(counts["library"].replace(",", "")) > int(counts["baseline"].replace(",", ""))


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


def test_sqlite_batches_prints_both_costs_for_every_batch_size() -> None:
    """sqlite_batches.py reads real sessions both ways and prints µs for each batch size."""
    run = subprocess.run(  # noqa: S603 - our own interpreter and script
        [sys.executable, str(BENCHMARKS / "sqlite_batches.py"), "--reads", "200", "--repeat", "1"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    sizes = re.findall(
        r"^batch of\s+(\d+):\s+\d+\.\d\d us a read by its own statement,\s+\d+\.\d\d us in one",
        run.stdout,
        re.M,
    )
    assert sizes == ["1", "2", "4", "8", "16", "32"], run.stdout
