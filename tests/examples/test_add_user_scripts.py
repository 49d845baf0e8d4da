"""The account scripts users run by hand: a clear one-line error for bad input, no traceback.

``docs/snippets/add_user.py`` (the FastAPI quickstart) and ``examples/starlette_sqlite/app.py
add-user`` run as a person runs them: a process of their own, with the password typed on
standard input (the process has no terminal, so getpass reads it from there).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.support.examples import ROOT

PASSWORD = "correct horse battery\n"
Runner = Callable[..., subprocess.CompletedProcess[str]]
SCRIPTS = {
    "quickstart": ["docs/snippets/add_user.py"],
    "starlette": ["examples/starlette_sqlite/app.py", "add-user"],
}


@pytest.fixture(params=sorted(SCRIPTS))
def add_user(request: pytest.FixtureRequest, tmp_path: Path) -> Runner:
    """Run one of the scripts with arguments and typed lines; its database is the test's."""
    command = SCRIPTS[request.param]
    # No APP_SECRET: creating an account does not need one.
    environment = {k: v for k, v in os.environ.items() if not k.startswith("APP_")}
    environment["APP_DATABASE"] = f"sqlite:///{tmp_path / 'app.db'}"

    def run(*args: str, typed: str = PASSWORD * 2) -> subprocess.CompletedProcess[str]:
        return subprocess.run(  # noqa: S603 - this interpreter, the repository's own files
            [sys.executable, *command, *args],
            cwd=ROOT,
            input=typed,
            env=environment,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
            start_new_session=True,  # no controlling terminal: getpass reads standard input
        )

    return run


def said(result: subprocess.CompletedProcess[str]) -> str:
    assert "Traceback" not in result.stderr, result.stderr
    return result.stderr.strip().splitlines()[-1]


def test_bad_input_gets_one_clear_line_and_a_failure_code(add_user: Runner) -> None:
    """Missing arguments, a bad email, role or password, a duplicate: each says what is wrong."""
    missing = add_user()
    assert missing.returncode == 2
    assert "the following arguments are required" in said(missing)
    role = add_user("alice@example.com", "superuser")
    assert (role.returncode, "invalid choice: 'superuser'" in said(role)) == (2, True)
    email = add_user("not-an-email", "admin")
    assert (email.returncode, said(email)) == (
        1,
        "error: email address needs text on both sides of an '@'",
    )
    short = add_user("alice@example.com", "admin", typed="short\nshort\n")
    assert (short.returncode, said(short)) == (1, "error: password shorter than 8 characters")
    differ = add_user("alice@example.com", "admin", typed=PASSWORD + "another password\n")
    assert (differ.returncode, said(differ)) == (1, "error: the two passwords differ")
    cancelled = add_user("alice@example.com", "admin", typed="")
    assert (cancelled.returncode, said(cancelled)) == (1, "cancelled")

    created = add_user("alice@example.com", "admin")
    assert (created.returncode, created.stdout) == (0, "created user 1\n"), created.stderr
    again = add_user("Alice@Example.com", "user")
    assert again.returncode == 1
    assert said(again) == "error: a user with email 'alice@example.com' already exists"
