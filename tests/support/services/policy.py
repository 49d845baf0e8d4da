"""Whether a missing service skips a test or fails the run.

`require_service` turns "this service is not there" into a skip on a developer machine and a
loud failure under ``CI=true``, so a CI run can never go green by skipping its backends.
`ServiceUnavailable` is what every probe and private server raises to say so.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from typing import TypeVar

import pytest

T = TypeVar("T")


class ServiceUnavailable(RuntimeError):
    """A service could not be reached, or a private server could not be started in time."""


def ci_mode() -> bool:
    """Whether the tests run under CI (env ``CI=true``), where a missing service is a failure."""
    return os.environ.get("CI", "").strip().lower() in {"true", "1", "yes"}


def require_service(name: str, probe: Callable[[], T]) -> T:
    """Return what `probe()` returns; if the service is not there, skip, or fail under CI.

    Args:
        name: What the service is, for the skip or failure message.
        probe: Reaches or starts the service; raises `ServiceUnavailable` or `OSError` if it
            cannot.

    Returns:
        The probe's result (for example a started server).
    """
    try:
        return probe()
    except (ServiceUnavailable, OSError, subprocess.SubprocessError) as exc:
        reason = f"{name} is unavailable: {exc}"
        if ci_mode():
            pytest.fail(
                f"{reason}\n(CI=true: a missing service fails the run, never skips it)",
                pytrace=False,
            )
        pytest.skip(reason)
