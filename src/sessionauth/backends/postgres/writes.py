"""The PostgreSQL session store's transactions: login, logout, principal change, purge.

Each function is the body of one transaction (run by
:meth:`~sessionauth.backends.postgres.calls.PooledCalls.transact` on one pooled connection,
READ COMMITTED) over the statements of :mod:`sessionauth.backends.postgres.sql`.

**Lock order.** Every transaction that writes a principal's row takes it *before* any row of
that user's sessions, so no two of them wait on each other in a cycle:

* a login's first step (``claim``, inside the one ``login`` statement) updates its
  principal's row: the epoch check, the count and the lock in one step; the insert follows.
  A rotation that comes first makes it find the new epoch (``StaleLogin``); a rotation that
  comes second waits for the login to commit, then deletes the session it made. Either way
  no session outlives the rotation with the old epoch. The cap's eviction, when due, is a
  second statement (``evict``) that locks the principal's row again first;
* a principal change locks the row first (``lock_principal``, creating it if missing), then
  deletes the user's sessions, re-stamps the kept one and writes the principal;
* a logout reads the session's user and locks that user's principal row before it deletes
  the session (if it still has that user) and uncounts it in one statement;
* a purge locks its candidate session rows and then the principals' rows with ``SKIP
  LOCKED``, so it never waits while holding rows: sessions of users whose principal another
  transaction holds are left for the next batch.

``update`` and ``touch`` lock one session row in a single statement and wait for nothing else,
so they cannot close a cycle either.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypeAlias

import asyncpg
import asyncpg.pool

from sessionauth.errors import SessionExists, StaleLogin
from sessionauth.principal import Principal, PrincipalChange
from sessionauth.record import FORMAT_VERSION

__all__ = ["change_principal", "create", "delete", "insert", "purge_batch"]

if TYPE_CHECKING:  # asyncpg's classes are generic only to the type checker
    Connection: TypeAlias = asyncpg.Connection[Any] | asyncpg.pool.PoolConnectionProxy[Any]
else:
    Connection = Any


async def create(
    connection: Connection,
    sql: dict[str, str],
    row: tuple[Any, ...],
    *,
    epoch: str | None,
    now: float,
    max_sessions: int,
) -> Principal | None:
    """Insert a user's session ``row`` if ``epoch`` is current; evict beyond ``max_sessions``.

    ``row`` holds the ``insert`` statement's parameters: ``(id, user_id, ...)``.

    Raises:
        StaleLogin: If the principal is missing, disabled or has another epoch.
        SessionExists: If a live session has the row's id.
    """
    sid, user_id = row[0], row[1]
    if epoch is None:
        claimed = await connection.fetchrow(sql["claim_unchecked"], user_id)
    else:
        claimed = await connection.fetchrow(sql["claim"], user_id, epoch)
    if claimed is None:
        raise StaleLogin("the user's principal changed during the login")
    await insert(connection, sql, row, now=now)
    if claimed["sessions"] > max_sessions:
        await connection.execute(sql["evict"], user_id, sid, max_sessions)
    if epoch is None:
        return None
    return Principal(epoch=claimed["epoch"], role=claimed["role"])


async def insert(
    connection: Connection, sql: dict[str, str], row: tuple[Any, ...], *, now: float
) -> None:
    """Insert ``row``, replacing an expired row with its id (uncounted) but never a live one.

    Raises:
        SessionExists: If a live session has the row's id.
    """
    if await connection.fetchval(sql["insert"], *row):
        return
    # Only a token used again after its session expired gets here, so it may take the
    # principal's lock after the session's (see the module docstring).
    replaced = await connection.fetchrow(sql["delete_dead"], row[0], now)
    if replaced is None:
        raise SessionExists("a live session already has this id")
    if replaced["user_id"] is not None and replaced["version"] is not None:
        await connection.execute(sql["uncount"], replaced["user_id"], 1)
    await connection.execute(sql["insert"], *row)


async def delete(connection: Connection, sql: dict[str, str], sid: str) -> bool:
    """Delete the session ``sid`` and uncount it, its principal's row locked first.

    Returns whether there was one.
    """
    owner = await connection.fetchval(sql["owner"], sid)
    if owner is not None:
        await connection.execute(sql["lock_user"], owner)
    return bool(await connection.fetchval(sql["delete"], sid, owner))


async def change_principal(
    connection: Connection,
    sql: dict[str, str],
    user_id: str,
    change: PrincipalChange,
    *,
    now: float,
) -> tuple[Principal, int]:
    """Apply ``change``; a rotation deletes every session but ``change.keep``, re-stamped."""
    locked = await connection.fetchrow(sql["lock_principal"], user_id)
    assert locked is not None  # noqa: S101 - an upsert with RETURNING returns its row
    old = locked["epoch"]
    current = None
    if old is not None:
        current = Principal(epoch=old, role=locked["role"], disabled=locked["disabled"])
    principal = change.apply(current)
    served = uncounted = 0
    # Only a rotation ends sessions: a first principal installed by a role change leaves the
    # user's set_user() sessions (no epoch) as they were.
    if change.rotate:
        counts = await connection.fetchrow(
            sql["rotate"], user_id, change.keep, now, old, FORMAT_VERSION
        )
        assert counts is not None  # noqa: S101 - an aggregate returns one row
        served, uncounted = counts
        await connection.execute(sql["restamp"], principal.epoch, change.keep, user_id)
    await connection.execute(
        sql["set_principal"],
        user_id,
        principal.epoch,
        principal.role,
        principal.disabled,
        uncounted,
    )
    return principal, served


async def purge_batch(
    connection: Connection, sql: dict[str, str], *, now: float, batch_size: int
) -> tuple[int, int]:
    """Delete up to ``batch_size`` expired sessions; return ``(candidates, deleted)``.

    Sessions whose principal's row another transaction holds stay for a later batch.
    """
    candidates = await connection.fetch(sql["purge_candidates"], now, batch_size)
    users = list({user for _, user in candidates if user is not None})
    owners = dict(await connection.fetch(sql["purge_owners"], users)) if users else {}
    doomed = [sid for sid, user in candidates if user is None or owners.get(user, True)]
    if doomed:
        await connection.execute(sql["purge"], doomed)
    return len(candidates), len(doomed)
