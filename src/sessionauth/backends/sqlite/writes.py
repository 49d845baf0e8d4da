"""The SQLite session store's transactions: login, logout, principal change, purge.

Each function is the body of one ``BEGIN IMMEDIATE`` transaction
(:meth:`~sessionauth.backends.sqlite.files.SQLiteDatabase.transaction`) over the statements of
:mod:`sessionauth.backends.sqlite.session_sql`. The transaction holds the file's write lock
from its first statement, so nothing (another task on this connection, another process on the
file) runs between its reads and its writes: a login's epoch check, insert, count and eviction
are one step, and so are a rotation's new epoch, deletions and re-stamp. A rotation that
commits first makes the login find the new epoch (``StaleLogin``); one that commits second
deletes the session the login made.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sessionauth.backends.sqlite.files import Transaction
from sessionauth.errors import SessionExists, StaleLogin
from sessionauth.principal import Principal, PrincipalChange
from sessionauth.record import FORMAT_VERSION

__all__ = ["change_principal", "create", "delete", "purge_batch"]


async def create(
    tx: Transaction,
    sql: dict[str, str],
    row: tuple[Any, ...],
    *,
    epoch: str | None,
    now: float,
    max_sessions: int,
) -> Principal | None:
    """Insert the session ``row`` (the ``insert`` parameters), checked and counted if a user's.

    Raises:
        StaleLogin: If the user's principal is missing, disabled or has another epoch.
        SessionExists: If a live session has the row's id.
    """
    sid, user_id = row[0], row[2]
    claimed = None
    if user_id is not None:
        if epoch is None:  # a set_user() session: counted, never checked
            claimed = await tx.fetch(sql["claim_unchecked"], (user_id,))
        else:
            claimed = await tx.fetch(sql["claim"], (user_id, epoch))
        if not claimed:
            raise StaleLogin("the user's principal changed during the login")
    if not await tx.fetch(sql["insert"], row):
        replaced = await tx.fetch(sql["delete_dead"], (sid, now))
        if not replaced:
            raise SessionExists("a live session already has this id")
        await uncount(tx, sql, replaced)
        await tx.fetch(sql["insert"], row)
    if not claimed:
        return None
    current, role, _, count = claimed[0]
    if count > max_sessions:
        excess = count - max_sessions
        gone = await tx.fetch(sql["evict"], (user_id, sid, excess))
        # Fewer rows than the count says: it was too high (rows deleted by hand), and every
        # other session of the user is gone now.
        left = 1 if len(gone) < excess else count - sum(v is not None for (v,) in gone)
        await tx.fetch(sql["set_count"], (left, user_id))
    return None if epoch is None else Principal(epoch=current, role=role)


async def uncount(tx: Transaction, sql: dict[str, str], gone: Iterable[Sequence[Any]]) -> None:
    """Subtract deleted ``(user_id, version)`` rows from their users' counts."""
    lost: dict[str, int] = {}
    for user_id, version in gone:
        if user_id is not None and version is not None:  # counted: written by this version
            lost[user_id] = lost.get(user_id, 0) + 1
    await tx.many(sql["uncount"], [(n, user_id) for user_id, n in lost.items()])


async def delete(tx: Transaction, sql: dict[str, str], sid: str) -> bool:
    """Delete the session ``sid`` and uncount it; return whether there was one."""
    gone = list(await tx.fetch(sql["delete"], (sid,)))
    await uncount(tx, sql, gone)
    return bool(gone)


async def change_principal(
    tx: Transaction, sql: dict[str, str], user_id: str, change: PrincipalChange, *, now: float
) -> tuple[Principal, int]:
    """Apply ``change``; a rotation deletes every session but ``change.keep``, re-stamped."""
    current = None
    for epoch, role, disabled in await tx.fetch(sql["principal"], (user_id,)):
        if epoch is not None:
            current = Principal(epoch=epoch, role=role, disabled=bool(disabled))
    principal = change.apply(current)
    params = (user_id, principal.epoch, principal.role, principal.disabled)
    await tx.fetch(sql["set_principal"], params)
    old = None if current is None else current.epoch
    # Only a rotation ends sessions: a first principal installed by a role change leaves the
    # user's set_user() sessions (no epoch) as they were.
    if not change.rotate:
        return principal, 0
    gone = await tx.fetch(sql["rotate"], (user_id, change.keep, now))
    await tx.fetch(sql["restamp"], (principal.epoch, change.keep, user_id))
    await uncount(tx, sql, [(user_id, version) for _, _, version in gone])
    # Served until now: a live login of the old epoch, or a set_user() session (no epoch).
    served = sum(
        (epoch is None or epoch == old) and expires > now and version == FORMAT_VERSION
        for epoch, expires, version in gone
    )
    return principal, served


async def purge_batch(tx: Transaction, sql: dict[str, str], *, now: float, batch_size: int) -> int:
    """Delete up to ``batch_size`` expired sessions, uncounted; return how many went."""
    gone = await tx.fetch(sql["purge"], (now, batch_size))
    await uncount(tx, sql, gone)
    return len(gone)
