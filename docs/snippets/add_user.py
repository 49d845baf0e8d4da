"""Create an account: ``python add_user.py EMAIL ROLE`` (asks for the password twice)."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import os
import sys

from sessionauth import SessionAuthError, open_backend
from sessionauth.auth import PasswordHasher

ROLES = ("admin", "user")  # the Authenticator's default roles


async def add_user(email: str, password: str, role: str, database: str) -> int:
    """Store an account with an argon2id hash of ``password``; return its id."""
    async with open_backend(database) as backend:
        password_hash = await PasswordHasher().hash(password)
        user = await backend.user_store().create(email, password_hash, role=role)
    return user.id


def main(argv: list[str]) -> int:
    """Create the account ``argv`` names; print why not (exit 1) instead of a traceback."""
    parser = argparse.ArgumentParser(prog="add_user.py", description="Create an account.")
    parser.add_argument("email")
    parser.add_argument("role", choices=ROLES)
    args = parser.parse_args(argv)  # a usage line and exit 2 for missing or bad arguments
    database = os.environ.get("APP_DATABASE", "sqlite:///app.db")
    try:
        password = getpass.getpass("Password (8 characters or more): ")
        if getpass.getpass("Password again: ") != password:
            print("error: the two passwords differ", file=sys.stderr)
            return 1
        new_id = asyncio.run(add_user(args.email, password, args.role, database))
    except SessionAuthError as exc:  # a bad email or database URL, a short password, a duplicate
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except (EOFError, KeyboardInterrupt):
        print("\ncancelled", file=sys.stderr)
        return 1
    print(f"created user {new_id}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
