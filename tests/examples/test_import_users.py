"""docs/snippets/import_users.py: bcrypt hashes from another system log in and are upgraded."""

from __future__ import annotations

from pathlib import Path

import bcrypt

from sessionauth.auth.authenticator import Authenticator
from sessionauth.auth.passwords import PasswordHasher
from sessionauth.backends import open_backend
from sessionauth.stores import MemoryStore
from tests.support.examples import load_file


async def test_imported_bcrypt_hash_logs_in_and_becomes_argon2(tmp_path: Path) -> None:
    """An imported $2b$ hash verifies at login and is replaced by an argon2id hash."""
    import_users = load_file("docs/snippets/import_users.py", "import_users_snippet").import_users
    database = f"sqlite:///{tmp_path / 'users.db'}"
    legacy = bcrypt.hashpw(b"correct horse battery", bcrypt.gensalt(rounds=4)).decode()
    assert await import_users(database, [("alice@example.com", legacy, "admin")]) == 1
    async with open_backend(database) as backend:
        users = backend.user_store()
        auth = Authenticator(
            users=users, sessions=MemoryStore(), hasher=PasswordHasher.for_tests(), throttle=None
        )
        accepted = await auth.authenticate(
            "alice@example.com", "correct horse battery", address="::1"
        )
        assert (accepted.user.role, accepted.principal.role) == ("admin", "admin")
        stored = await users.get_by_email("alice@example.com")
        assert stored is not None
        assert stored.password_hash.startswith("$argon2id$")
