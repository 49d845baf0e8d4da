"""Import accounts from another system, keeping their bcrypt hashes (no password reset)."""

from __future__ import annotations

from collections.abc import Iterable

from sessionauth.backends import open_backend


async def import_users(database: str, rows: Iterable[tuple[str, str, str]]) -> int:
    """Store ``(email, bcrypt_hash, role)`` rows as they are; return how many were imported.

    A bcrypt hash (``$2a$``/``$2b$``, as Node's bcrypt and Flask-Bcrypt write them) verifies
    at login and is replaced by an argon2id hash of the same password at that moment.
    """
    count = 0
    async with open_backend(database) as backend:
        users = backend.user_store()
        for email, bcrypt_hash, role in rows:
            await users.create(email, bcrypt_hash, role=role)
            count += 1
    return count
