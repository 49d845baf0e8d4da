"""A SQLite database deleted or corrupted under a server is noticed, never silently replaced."""

from __future__ import annotations

import logging
from pathlib import Path

import httpx
import pytest

from sessionauth.auth.passwords import PasswordHasher
from sessionauth.backends.sqlite.sessions import SQLiteStore
from sessionauth.backends.sqlite.users import SQLiteUserStore
from sessionauth.errors import StoreUnavailable
from sessionauth.server.app import create_app
from sessionauth.server.bootstrap import ADMIN_EMAIL
from sessionauth.server.settings import Settings


def settings_for(tmp_path: Path) -> Settings:
    return Settings(
        env="development",
        database_url=f"sqlite:///{tmp_path / 'sessionauth.db'}",
        data_dir=tmp_path / "data",
        secret="s" * 40,
    )


def delete_database(tmp_path: Path) -> None:
    """What an operator's `rm sessionauth.db*` does: the file and its WAL and shared memory."""
    for suffix in ("", "-wal", "-shm"):
        (tmp_path / f"sessionauth.db{suffix}").unlink(missing_ok=True)


def errors(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        record.getMessage()
        for record in caplog.records
        if record.name.startswith("sessionauth") and record.levelno >= logging.ERROR
    ]


async def test_readyz_answers_503_once_the_database_file_is_deleted(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """With sessionauth.db, -wal and -shm deleted while serving, /readyz is 503, logged once."""
    app = create_app(settings_for(tmp_path), hasher=PasswordHasher.for_tests())
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            assert (await client.get("/readyz")).status_code == 200
            delete_database(tmp_path)
            with caplog.at_level(logging.INFO, logger="sessionauth"):
                answers = [await client.get("/readyz") for _ in range(3)]
    assert [response.status_code for response in answers] == [503, 503, 503]
    logged = errors(caplog)
    # One line for the file (sessions and users share its connection), not one per check.
    assert len(logged) == 1, logged
    assert "sessionauth.db was deleted while the" in logged[0], logged


async def test_a_worker_started_after_the_deletion_creates_no_second_administrator(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A restart on the new, empty file bootstraps no admin the other workers cannot see."""
    settings = settings_for(tmp_path)
    first = create_app(settings, hasher=PasswordHasher.for_tests())
    async with first.router.lifespan_context(first):
        assert [u.email for u in await first.state.authenticator.users.list()] == [ADMIN_EMAIL]
        delete_database(tmp_path)
        second = create_app(settings, hasher=PasswordHasher.for_tests())
        with caplog.at_level(logging.INFO, logger="sessionauth"):
            async with second.router.lifespan_context(second):
                assert await second.state.authenticator.users.list() == []
    logged = errors(caplog)
    assert len(logged) == 1, logged
    assert "is empty, but the accounts of this data directory were in another file" in logged[0]


async def test_a_new_data_directory_still_gets_its_first_administrator(tmp_path: Path) -> None:
    """The guard only stops replacements: a fresh database is bootstrapped, once."""
    settings = settings_for(tmp_path)
    for _ in range(2):
        app = create_app(settings, hasher=PasswordHasher.for_tests())
        async with app.router.lifespan_context(app):
            users = await app.state.authenticator.users.list()
            assert [user.email for user in users] == [ADMIN_EMAIL]


async def test_a_file_that_is_not_a_database_is_an_outage_for_every_sqlite_store(
    tmp_path: Path,
) -> None:
    """Session store and user store both raise StoreUnavailable on a corrupt file, not a 500."""
    path = tmp_path / "garbage.db"
    path.write_bytes(b"this is not a SQLite database, " * 200)
    sessions = SQLiteStore.from_url(f"sqlite:///{path}")
    try:
        with pytest.raises(StoreUnavailable, match="not a database"):
            await sessions.ping()
    finally:
        await sessions.aclose()
    async with SQLiteUserStore(path=path) as users:
        with pytest.raises(StoreUnavailable, match="not a database"):
            await users.ping()
