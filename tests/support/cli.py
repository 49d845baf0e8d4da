"""The ``sessionauth`` CLI in tests: its environment, the runner, and looks into its database."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path

from typer.testing import CliRunner, Result

from sessionauth.cli import app as cli
from sessionauth.record import SessionRecord
from sessionauth.stores import open_store
from sessionauth.stores.users import User
from sessionauth.tokens import new_token, storage_id
from tests.support.backends import user_store

__all__ = [
    "PASSWORD",
    "SCRIPT",
    "STRONG",
    "add_session",
    "cli_environment",
    "invoke",
    "live_sessions",
    "script",
    "script_environment",
    "user_named",
]

SCRIPT = str(Path(sys.executable).parent / "sessionauth")
STRONG = "k" * 48
PASSWORD = "correct horse battery"


def cli_environment(tmp_path: Path) -> dict[str, str]:
    """The variables of a development CLI whose users and sessions are in one SQLite file."""
    return {
        "SESSIONAUTH_ENV": "development",
        "SESSIONAUTH_DATABASE_URL": f"sqlite:///{tmp_path / 'cli.db'}",
        "SESSIONAUTH_DATA_DIR": str(tmp_path / "data"),
        "SESSIONAUTH_SECRET": STRONG,
    }


def invoke(env: Mapping[str, str], *args: str, input: str | None = None) -> Result:
    """Run ``sessionauth ARGS`` in process with ``env`` (and ``input`` on stdin)."""
    return CliRunner().invoke(cli, list(args), env=dict(env), input=input)


def script_environment() -> dict[str, str]:
    """This process's environment without its ``SESSIONAUTH_*`` variables, for the script."""
    return {k: v for k, v in os.environ.items() if not k.startswith("SESSIONAUTH_")}


def script(
    env: Mapping[str, str], *args: str, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the console script (stdin from ``stdin``, else /dev/null: no terminal)."""
    return subprocess.run(  # noqa: S603 - the venv's own script, fixed arguments
        [SCRIPT, *args],
        input=stdin,
        stdin=subprocess.DEVNULL if stdin is None else None,
        env={**script_environment(), **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def user_named(env: Mapping[str, str], email: str) -> User | None:
    """The account with ``email`` in the CLI's database, or ``None``."""

    async def find() -> User | None:
        async with user_store(env["SESSIONAUTH_DATABASE_URL"]) as users:
            return await users.get_by_email(email)

    return asyncio.run(find())


def created_user(env: Mapping[str, str], email: str) -> User:
    """Create the account ``email`` (password :data:`PASSWORD`) through the CLI; return it."""
    created = invoke(env, "users", "create", email, "--password-stdin", input=PASSWORD)
    assert created.exit_code == 0, created.output
    user = user_named(env, email)
    assert user is not None
    return user


def add_session(
    env: Mapping[str, str], user: User, sid: str | None = None, *, user_agent: str = "curl/8"
) -> str:
    """Store a live hour-long session of ``user`` under ``sid`` (else a fresh id); return the id."""
    handle = sid or storage_id(new_token(str(user.id)))

    async def create() -> None:
        now = time.time()
        record = SessionRecord(
            data={},
            created=now,
            seen=now,
            issued=now,
            expires=now + 3600,
            user_id=str(user.id),
            meta={"ip": "203.0.113.9", "ua": user_agent},
        )
        async with open_store(env["SESSIONAUTH_DATABASE_URL"]) as store:
            await store.create(handle, record)

    asyncio.run(create())
    return handle


def live_sessions(env: Mapping[str, str], user: User) -> list[str]:
    """The handles of ``user``'s live sessions in the CLI's database."""

    async def listing() -> list[str]:
        async with open_store(env["SESSIONAUTH_DATABASE_URL"]) as store:
            page = await store.list_user(str(user.id))
            return [handle for handle, _ in page.sessions]

    return asyncio.run(listing())
