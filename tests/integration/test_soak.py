"""A short soak: 40 users for 10 s against two server processes on one Redis.

The driver (`tests.support.soak`, shared with ``benchmarks/soak.py``'s 60 s, 200-user run)
fails on any 5xx, any answer carrying another user's identity, any session lost without a
logout or revocation, any session outliving its end, and any unhandled server exception.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.soak import soak

pytestmark = [pytest.mark.redis, pytest.mark.slow]


def test_forty_users_for_ten_seconds_on_two_processes(
    redis_url: str, redis_prefix: str, tmp_path: Path
) -> None:
    """Logins, reads, writes and revocations of 40 users mix nothing up and lose nothing."""
    report = soak(10, 40, 2, store_url=f"{redis_url}?prefix={redis_prefix}", workdir=tmp_path)
    print(report.summary())
    assert report.ok, report.summary()
    assert report.loops >= 40, report.summary()  # every user got through at least once on average
    assert report.revoked > 0, report.summary()
