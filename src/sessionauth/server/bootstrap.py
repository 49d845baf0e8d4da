"""The first administrator of a development database.

There are no default accounts. When ``sessionauth serve`` starts in development on a user
database with no account at all, it creates one administrator, ``admin@localhost``, with a
random password printed once to stderr: it is never stored in clear, never logged, and a
restart does not print it again (the database is no longer empty). Lost it? Run
``sessionauth users set-password admin@localhost``.

Several workers starting together may all see an empty database; the unique email lets exactly
one of them create the account, and only that one prints.
"""

from __future__ import annotations

import secrets
import sys
from typing import TextIO

from sessionauth.auth.passwords import PasswordHasher
from sessionauth.auth.users import User, UserStore
from sessionauth.errors import DuplicateUser

__all__ = ["ADMIN_EMAIL", "bootstrap_admin"]

ADMIN_EMAIL = "admin@localhost"


async def bootstrap_admin(
    users: UserStore, hasher: PasswordHasher, *, out: TextIO | None = None
) -> tuple[User, str] | None:
    """Create the first administrator if the database has no account; print its password.

    Args:
        users: The user store.
        hasher: Hashes the generated password.
        out: Where the one-time notice goes (default: stderr).

    Returns:
        The account and its password, or ``None`` if there already was an account.

    Raises:
        StoreUnavailable: If the database does not answer.
    """
    if await users.list():
        return None
    password = secrets.token_urlsafe(18)
    try:
        user = await users.create(ADMIN_EMAIL, await hasher.hash(password), role="admin")
    except DuplicateUser:
        return None  # another worker won the race and printed the password
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
