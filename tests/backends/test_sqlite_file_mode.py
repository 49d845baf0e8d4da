"""A SQLite database that sessionauth creates is its owner's alone; one it finds keeps its mode."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from sessionauth.backends import open_backend


@pytest.fixture
def usual_umask() -> Iterator[None]:
    """The umask most systems give (022), under which SQLite alone makes files 0644."""
    previous = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(previous)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.usefixtures("usual_umask")
async def test_a_new_database_is_0600_and_an_existing_one_keeps_its_mode(tmp_path: Path) -> None:
    """A new file, its -wal and -shm are owner-only; a file the operator made is never chmodded."""
    path = tmp_path / "new" / "sessionauth.db"
    async with open_backend(f"sqlite:///{path}") as backend:
        await backend.user_store().create("ann@example.com", "not-a-real-hash")
        # Looked at while open: SQLite removes -wal and -shm at the last close.
        files = [path, Path(f"{path}-wal"), Path(f"{path}-shm")]
        assert [(f.name, mode(f)) for f in files] == [(f.name, 0o600) for f in files]
    theirs = tmp_path / "theirs.db"
    theirs.touch()
    theirs.chmod(0o640)  # e.g. readable by a backup group, on purpose
    async with open_backend(f"sqlite:///{theirs}") as backend:
        await backend.user_store().create("ann@example.com", "not-a-real-hash")
    assert mode(theirs) == 0o640
