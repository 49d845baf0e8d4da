"""PostgreSQL: one asyncpg pool per URL, and the stores that share it.

Needs the ``postgres`` extra; importing this package is what imports asyncpg.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sessionauth.backends.base import Backend
from sessionauth.backends.postgres.attempts import PostgresCounter
from sessionauth.backends.postgres.factors import PostgresFactorStore
from sessionauth.backends.postgres.lock import PostgresLock
from sessionauth.backends.postgres.pool import APPLICATION_NAME, PostgresPool
from sessionauth.backends.postgres.sessions import PostgresStore
from sessionauth.backends.postgres.tokens import PostgresTokenStore
from sessionauth.backends.postgres.users import PostgresUserStore
from sessionauth.policy import Clock, system_clock
from sessionauth.stores.base import DEFAULT_TIMEOUT
from sessionauth.stores.users import DEFAULT_TABLE

__all__ = ["PostgresBackend"]


class PostgresBackend(Backend):
    """A PostgreSQL database: one pool, created on first use, for every view.

    Args:
        url: A ``postgresql://`` DSN.
        clock: The time source of every view.
        timeout: Seconds any operation may take before it raises ``StoreUnavailable``.
        min_size: Connections the pool keeps open.
        max_size: Connections the pool may open.
        application_name: What ``pg_stat_activity`` shows for the pool's connections.

    Raises:
        ConfigurationError: For a bad timeout or pool size.
    """

    def __init__(
        self,
        url: str,
        *,
        clock: Clock = system_clock,
        timeout: float = DEFAULT_TIMEOUT,
        min_size: int = 1,
        max_size: int = 10,
        application_name: str = APPLICATION_NAME,
    ):
        self.pool = PostgresPool(
            url,
            timeout=timeout,
            min_size=min_size,
            max_size=max_size,
            application_name=application_name,
        )
        super().__init__()
        self._clock = clock

    @property
    def kind(self) -> str:
        """``"PostgreSQL"``."""
        return "PostgreSQL"

    def session_store(self, *, owned: bool = False, **options: Any) -> PostgresStore:
        """Return a session store on the pool (``table=`` names its table)."""
        view = PostgresStore(database=self.pool, clock=self._clock, owned=owned, **options)
        return self._view(view, owned=owned)

    def attempt_counter(self, *, owned: bool = False, **options: Any) -> PostgresCounter:
        """Return an attempt counter on the pool (``table=`` names its table)."""
        view = PostgresCounter(database=self.pool, clock=self._clock, owned=owned, **options)
        return self._view(view, owned=owned)

    def factor_store(self, *, owned: bool = False, **options: Any) -> PostgresFactorStore:
        """Return the factor store on the pool (``table=`` prefixes its tables)."""
        view = PostgresFactorStore(database=self.pool, owned=owned, **options)
        return self._view(view, owned=owned)

    def token_store(self, *, owned: bool = False, **options: Any) -> PostgresTokenStore:
        """Return the token store on the pool (``table=`` names its table)."""
        view = PostgresTokenStore(database=self.pool, clock=self._clock, owned=owned, **options)
        return self._view(view, owned=owned)

    def user_store(self, *, table: str = DEFAULT_TABLE, owned: bool = False) -> PostgresUserStore:
        """Return the user store on the pool; its table is created on first use."""
        view = PostgresUserStore(database=self.pool, table=table, clock=self._clock, owned=owned)
        return self._view(view, owned=owned)

    def purge_lock(self, lock_dir: Path) -> PostgresLock:
        """Return an advisory lock taken on a connection of the pool."""
        del lock_dir
        return PostgresLock(self.pool)

    async def ping(self) -> None:
        """Raise ``StoreUnavailable`` unless the server answers a query."""
        await self.pool.ping()

    async def _close(self) -> None:
        """Close the pool; safe to call twice."""
        await self.pool.aclose()
