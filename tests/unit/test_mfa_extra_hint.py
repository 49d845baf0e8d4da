"""Without the ``mfa`` extra, the second-factor modules say how to install it.

A bare ``ModuleNotFoundError: pyotp`` leaves the user to guess which extra brings it; the
import error names ``pip install 'sessionauth[mfa]'``, as the store backends do for theirs.
"""

from __future__ import annotations

import subprocess
import sys

import pytest


@pytest.mark.parametrize(
    ("module", "missing"),
    [("sessionauth.auth.totp", "pyotp"), ("sessionauth.auth.passkeys", "webauthn")],
)
def test_a_missing_mfa_dependency_names_the_extra(module: str, missing: str) -> None:
    """The dependency made unimportable (``sys.modules[name] = None``): the hint comes out."""
    script = f"import sys; sys.modules[{missing!r}] = None; import {module}"
    run = subprocess.run(  # noqa: S603 - our own interpreter
        [sys.executable, "-c", script], capture_output=True, text=True, check=False
    )
    assert run.returncode == 1
    assert "pip install 'sessionauth[mfa]'" in run.stderr, run.stderr
    assert missing in run.stderr.splitlines()[-1]
