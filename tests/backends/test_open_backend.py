"""open_backend(): the one URL dispatch, and the views each backend builds."""

from __future__ import annotations

from pathlib import Path

import pytest

from sessionauth.backends import open_backend
from sessionauth.backends.memory import MemoryBackend
from sessionauth.backends.postgres import PostgresBackend
from sessionauth.backends.postgres.attempts import PostgresCounter
from sessionauth.backends.postgres.sessions import PostgresStore
from sessionauth.backends.postgres.users import PostgresUserStore
from sessionauth.backends.redis import RedisBackend
from sessionauth.backends.redis.attempts import RedisCounter
from sessionauth.backends.redis.sessions import RedisStore
from sessionauth.backends.sqlite import SQLiteBackend
from sessionauth.backends.sqlite.attempts import SQLiteCounter
from sessionauth.backends.sqlite.sessions import SQLiteStore
from sessionauth.backends.sqlite.users import SQLiteUserStore
from sessionauth.errors import ConfigurationError, StoreUnavailable
from sessionauth.stores.attempts import AttemptCounter
from sessionauth.stores.memory import MemoryCounter, MemoryStore


async def test_each_scheme_gives_its_backend_and_views_without_connecting(tmp_path: Path) -> None:
    """Every scheme maps to one backend class whose views are its own, and nothing connects."""
    expected = {
        "memory://": (MemoryBackend, MemoryStore, None),
        f"sqlite:///{tmp_path}/a.db": (SQLiteBackend, SQLiteStore, SQLiteUserStore),
        "postgresql://nobody@127.0.0.1:1/none": (PostgresBackend, PostgresStore, PostgresUserStore),
        "postgres://nobody@127.0.0.1:1/none": (PostgresBackend, PostgresStore, PostgresUserStore),
        "redis://127.0.0.1:1/0": (RedisBackend, RedisStore, None),
    }
    for url, (backend_type, store_type, users_type) in expected.items():
        async with open_backend(url) as backend:
            assert type(backend) is backend_type
            assert type(backend.session_store()) is store_type
            if users_type is None:
                with pytest.raises(ConfigurationError, match="cannot keep user accounts"):
                    backend.user_store()
            else:
                assert type(backend.user_store()) is users_type
    assert not (tmp_path / "a.db").exists()


async def test_closing_a_backend_twice_is_safe(tmp_path: Path) -> None:
    """aclose() after aclose() returns quietly, and the views then refuse to work."""
    backend = open_backend(f"sqlite:///{tmp_path}/a.db")
    store = backend.session_store()
    await store.ping()
    await backend.aclose()
    await backend.aclose()
    with pytest.raises(StoreUnavailable, match="closed"):
        await backend.attempt_counter().count("k")


async def test_each_scheme_gives_its_counter_without_connecting(tmp_path: Path) -> None:
    """Each URL scheme gives its counter, and building one opens no connection."""
    urls: dict[str, type[AttemptCounter]] = {
        "memory://": MemoryCounter,
        f"sqlite:///{tmp_path}/a.db": SQLiteCounter,
        "postgresql://nobody@127.0.0.1:1/none": PostgresCounter,
        "redis://127.0.0.1:1/0": RedisCounter,
        "rediss://127.0.0.1:1/0": RedisCounter,
        "redis+cluster://127.0.0.1:1,[::1]:2": RedisCounter,
        "redis+sentinel://:pw@127.0.0.1:1,[::1]/mymaster?db=2": RedisCounter,
    }
    for url, kind in urls.items():
        async with open_backend(url) as backend:
            assert type(backend.attempt_counter()) is kind
    assert not (tmp_path / "a.db").exists()


@pytest.mark.parametrize(
    ("url", "prefix"),
    [
        ("redis://127.0.0.1:1/0", "sessionauth:attempts:"),
        ("redis://127.0.0.1:1/0?prefix=app1:", "app1:attempts:"),
        ("redis+sentinel://127.0.0.1:1/mymaster?prefix=app1:", "app1:attempts:"),
        ("redis+sentinel://127.0.0.1:1/mymaster?db=2&prefix=app1:", "app1:attempts:"),
        ("redis+cluster://127.0.0.1:1?prefix=app1:", "app1:attempts:"),
    ],
)
async def test_the_redis_counter_keeps_to_the_store_urls_prefix(url: str, prefix: str) -> None:
    """The session store URL's ``?prefix=`` namespaces the counters too, and is not sent on."""
    async with open_backend(url) as backend:
        counter = backend.attempt_counter()
        assert isinstance(counter, RedisCounter)
        assert counter.prefix == prefix


@pytest.mark.parametrize(
    "url",
    [
        "memcached://127.0.0.1",
        "sqlite://relative-without-third-slash",
        "redis+sentinel://127.0.0.1:26379",
        "redis+sentinel://127.0.0.1:26379/mymaster?db=x",
        "redis+sentinel://127.0.0.1:port/mymaster",
        "redis+cluster://127.0.0.1:7000/0",
        "redis+cluster://",
        "redis://127.0.0.1:port",
    ],
)
def test_bad_urls_are_refused_at_once(url: str) -> None:
    """An unknown scheme or a malformed URL is a configuration error, raised at once."""
    with pytest.raises(ConfigurationError):
        open_backend(url)
