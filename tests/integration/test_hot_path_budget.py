"""The hot paths stay within their instruction budgets (benchmarks/*hot_path.py)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.services import ServiceUnavailable, require_service

pytestmark = pytest.mark.slow

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


def _valgrind() -> str:
    found = shutil.which("valgrind")
    if found is None:
        raise ServiceUnavailable("valgrind is not installed (apt-get install valgrind)")
    return found


# Two callgrind runs each; the server's start-up (FastAPI, the routes' models) is most of its
# runs: a few minutes under callgrind, past the suite's default timeout.
@pytest.mark.timeout(900)
@pytest.mark.parametrize("script", ["hot_path.py", "server_hot_path.py"])
def test_instructions_per_authenticated_request_stay_within_ten_percent_of_the_budget(
    script: str,
) -> None:
    """Callgrind's count per GET /dashboard is at most 110 % of the committed figure."""
    require_service("valgrind", _valgrind)
    run = subprocess.run(  # noqa: S603 - our own interpreter and script
        [sys.executable, str(BENCHMARKS / script), "--check"],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    print(run.stdout)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "instructions per authenticated request" in run.stdout
