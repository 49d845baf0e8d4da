"""Fixtures of the integration tests: the ``sessionauth`` CLI's environment."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.cli import cli_environment


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    """The variables of a development CLI on a SQLite database in ``tmp_path``."""
    return cli_environment(tmp_path)
