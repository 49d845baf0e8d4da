"""The reference server in process, for tests: its settings and the app inside its lifespan."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI

from sessionauth.auth.passwords import PasswordHasher
from sessionauth.server.app import create_app
from sessionauth.server.settings import Settings

__all__ = ["production", "running_app", "server_settings"]


def server_settings(tmp_path: Path, **overrides: Any) -> Settings:
    """Development settings with users on SQLite in ``tmp_path``; ``overrides`` replace any."""
    values: dict[str, Any] = {
        "env": "development",
        "database_url": f"sqlite:///{tmp_path / 'users.db'}",
        "data_dir": tmp_path / "data",
        "secret": "s" * 40,
    }
    values.update(overrides)
    return Settings(**values)


@asynccontextmanager
async def running_app(tmp_path: Path, **overrides: Any) -> AsyncIterator[FastAPI]:
    """``create_app`` of :func:`server_settings` with the fast test hasher, inside its lifespan."""
    app = create_app(server_settings(tmp_path, **overrides), hasher=PasswordHasher.for_tests())
    async with app.router.lifespan_context(app):
        yield app


def production(tmp_path: Path, **overrides: Any) -> Settings:
    """Safe production settings with users on SQLite in ``tmp_path``; ``overrides`` replace any."""
    return server_settings(tmp_path, **{"env": "production", **overrides})
