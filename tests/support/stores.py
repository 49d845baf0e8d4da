"""Store wrappers for middleware tests: count calls, or inject faults, around a real store."""

from __future__ import annotations

import asyncio
from collections import Counter

from sessionauth.errors import StoreUnavailable
from sessionauth.principal import Principal, PrincipalChange
from sessionauth.record import RecordUpdate, SessionRecord
from sessionauth.stores.base import MAX_PAGE, SessionPage, SessionStore


class InstrumentedStore(SessionStore):
    """Delegates to a real store, counting calls; can be told to fail or hang.

    Attributes:
        calls: How often each operation ran.
        fail: When set, every operation raises ``StoreUnavailable`` (a backend outage).
        hang: When set, every operation waits forever (a blackholed backend).
    """

    def __init__(self, inner: SessionStore):
        self.inner = inner
        self.calls: Counter[str] = Counter()
        self.fail = False
        self.hang = False
        self.fail_writes = False

    async def _enter(self, name: str, *, write: bool = False) -> None:
        self.calls[name] += 1
        if self.hang:
            await asyncio.Event().wait()
        if self.fail or (write and self.fail_writes):
            raise StoreUnavailable("injected outage")

    async def load(self, sid: str) -> SessionRecord | None:
        await self._enter("load")
        return await self.inner.load(sid)

    async def create(self, sid: str, record: SessionRecord) -> Principal | None:
        await self._enter("create", write=True)
        return await self.inner.create(sid, record)

    async def update(self, sid: str, update: RecordUpdate) -> bool:
        await self._enter("update", write=True)
        return await self.inner.update(sid, update)

    async def touch(self, sid: str, *, seen: float, expires: float) -> bool:
        await self._enter("touch", write=True)
        return await self.inner.touch(sid, seen=seen, expires=expires)

    async def delete(self, sid: str) -> bool:
        await self._enter("delete", write=True)
        return await self.inner.delete(sid)

    async def list_user(
        self, user_id: str, *, limit: int = MAX_PAGE, cursor: str | None = None
    ) -> SessionPage:
        await self._enter("list_user")
        return await self.inner.list_user(user_id, limit=limit, cursor=cursor)

    async def principal(self, user_id: str) -> Principal | None:
        await self._enter("principal")
        return await self.inner.principal(user_id)

    async def install_principal(self, user_id: str, principal: Principal) -> Principal:
        await self._enter("install_principal", write=True)
        return await self.inner.install_principal(user_id, principal)

    async def change_principal(
        self, user_id: str, change: PrincipalChange
    ) -> tuple[Principal, int]:
        await self._enter("change_principal", write=True)
        return await self.inner.change_principal(user_id, change)

    async def ping(self) -> None:
        await self._enter("ping")
        await self.inner.ping()

    @property
    def writes(self) -> int:
        """How many write operations ran."""
        return sum(self.calls[n] for n in ("create", "update", "touch", "delete"))
