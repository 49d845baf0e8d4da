"""Create an account: ``python add_user.py EMAIL ROLE`` (asks for the password)."""

from __future__ import annotations

import asyncio
import getpass
import os
import sys

from sessionauth import open_backend
from sessionauth.auth import PasswordHasher


async def add_user(email: str, password: str, role: str, database: str) -> int:
    """Store an account with an argon2id hash of ``password``; return its id."""
    async with open_backend(database) as backend:
        password_hash = await PasswordHasher().hash(password)
        user = await backend.user_store().create(email, password_hash, role=role)
    return user.id


if __name__ == "__main__":
    database = os.environ.get("APP_DATABASE", "sqlite:///app.db")
    new_id = asyncio.run(add_user(sys.argv[1], getpass.getpass(), sys.argv[2], database))
    print(f"created user {new_id}")
