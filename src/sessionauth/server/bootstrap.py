"""The first administrator of a development database.

There are no default accounts. When ``sessionauth serve`` starts in development on a user
database with no account at all, it creates one administrator, ``admin@localhost``, with a
random password printed once to stderr: it is never stored in clear, never logged, and a
restart does not print it again (the database is no longer empty). Lost it? Run
``sessionauth users set-password admin@localhost``.

Several workers starting together may all see an empty database; the unique email lets exactly
one of them create the account, and only that one prints.

An empty SQLite database is not always a new one: if the file was deleted while the server
ran, the workers still running serve the deleted file, and a worker starting now would create
a second administrator in a new file they never see. So the data directory remembers which
file (device and inode) holds its accounts (``accounts-database``, rewritten at every start on
a non-empty database), and an empty file at that path that is not the one remembered gets no
administrator: one ERROR line says what happened and how to proceed.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import sys
from pathlib import Path
from typing import TextIO

from sessionauth.auth.accounts import AccountAdministration
from sessionauth.backends.sqlite.files import database_path
from sessionauth.errors import DuplicateUser
from sessionauth.stores.users import ADMIN_ROLE, User

__all__ = ["ACCOUNTS_FILE", "ADMIN_EMAIL", "bootstrap_admin"]

logger = logging.getLogger("sessionauth.server")

ADMIN_EMAIL = "admin@localhost"
ACCOUNTS_FILE = "accounts-database"
"""In the data directory: which SQLite file (path, device, inode) holds the accounts."""


def _sqlite_identity(database_url: str) -> dict[str, object] | None:
    """Return the path, device and inode of a ``sqlite:///`` database, else ``None``."""
    if not database_url.lower().startswith("sqlite:"):
        return None
    path = database_path(database_url)
    if path == ":memory:":
        return None
    try:
        found = os.stat(path)
    except FileNotFoundError:
        return None
    return {"path": os.path.abspath(path), "device": found.st_dev, "inode": found.st_ino}


def _remembered(record: Path) -> dict[str, object] | None:
    try:
        value = json.loads(record.read_text())
    except (FileNotFoundError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def _remember(record: Path, identity: dict[str, object]) -> None:
    record.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    temporary = record.with_name(f".{record.name}.{os.getpid()}")
    temporary.write_text(json.dumps(identity) + "\n")
    temporary.replace(record)  # atomic: a reader sees the old record or the new one


def _is_replacement(record: Path, identity: dict[str, object] | None) -> bool:
    """Whether an empty database is a stand-in for the remembered one at the same path."""
    remembered = _remembered(record)
    return (
        identity is not None
        and remembered is not None
        and remembered.get("path") == identity["path"]
        and remembered != identity
    )


async def bootstrap_admin(
    accounts: AccountAdministration[int],
    *,
    out: TextIO | None = None,
    data_dir: Path | None = None,
    database_url: str | None = None,
) -> tuple[User, str] | None:
    """Create the first administrator if the database has no account; print its password.

    Args:
        accounts: Creates the account (the Authenticator, which publishes ``UserCreated``).
        out: Where the one-time notice goes (default: stderr).
        data_dir: Where to remember which SQLite file holds the accounts.
        database_url: The user database's URL (only ``sqlite:///`` files are remembered).

    Returns:
        The account and its password, or ``None`` if there already was an account.

    Raises:
        StoreUnavailable: If the database does not answer.
    """
    identity = None if database_url is None else _sqlite_identity(database_url)
    record = None if data_dir is None or identity is None else data_dir / ACCOUNTS_FILE
    if await accounts.list_users():
        if record is not None and identity is not None:
            _remember(record, identity)
        return None
    if record is not None and _is_replacement(record, identity):
        logger.error(
            "the user database %s is empty, but the accounts of this data directory were in "
            "another file at that path, deleted or replaced since (workers that opened it "
            "before may still serve it): not creating an administrator here. Restore the "
            "database file, or create one with `sessionauth users create EMAIL --role admin`, "
            "or delete %s to have one created at the next start",
            identity["path"] if identity else database_url,
            record,
        )
        return None
    password = secrets.token_urlsafe(18)
    try:
        user = await accounts.create_user(ADMIN_EMAIL, password, role=ADMIN_ROLE)
    except DuplicateUser:
        return None  # another worker won the race and printed the password
    if record is not None and identity is not None:
        _remember(record, identity)
    stream = out if out is not None else sys.stderr
    print(
        "\n"
        "  sessionauth: created the first administrator (shown only this once)\n"
        f"    email:    {ADMIN_EMAIL}\n"
        f"    password: {password}\n"
        "  Change it on /account, or: sessionauth users set-password admin@localhost\n",
        file=stream,
        flush=True,
    )
    return user, password
