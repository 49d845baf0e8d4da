"""The SQLite session store's SQL: its tables, their migration from 0.1, one statement each.

:func:`statements` formats them once for a store's table ``T`` (a validated identifier); the
principals live in ``T_principals``. What the columns mean, and why the count in
``T_principals.sessions`` is exact, is in :mod:`sessionauth.backends.sql_sessions`; why the
statements are safe together is in :mod:`sessionauth.backends.sqlite.sessions`.
"""

from __future__ import annotations

import functools

from sessionauth.backends.sqlite.files import Transaction

__all__ = ["LOAD_BATCH", "MIGRATIONS", "create_schema", "load_many", "statements"]

MIGRATIONS = {"epoch": "TEXT", "version": "INTEGER"}
"""Columns that tables created by sessionauth 0.1 lack, added on first use (NULL in old rows)."""

LOAD_BATCH = 32
"""Most ids one load statement reads; larger batches take several (each size is one statement
in sqlite3's per-connection cache, so sizes are bounded)."""

_COLUMNS = "data, user_id, created, seen, issued, expires, meta, epoch, version"
_PRINCIPAL = "p.epoch, p.role, p.disabled"


@functools.cache  # a few tables, at most LOAD_BATCH sizes each
def load_many(t: str, count: int) -> str:
    """The load of ``count`` ids (at most :data:`LOAD_BATCH`), then the time, as parameters.

    Each row is a live session ``LEFT JOIN`` its user's principal, its id last (the batch is
    answered by id, :mod:`sessionauth.backends.load_batches`).
    """
    ids = ", ".join("?" * count)
    return (
        f"SELECT s.data, s.user_id, s.created, s.seen, s.issued, s.expires, s.meta,"  # noqa: S608
        f" s.epoch, s.version, {_PRINCIPAL}, s.id"
        f" FROM {t} AS s LEFT JOIN {t}_principals AS p ON p.user_id = s.user_id"
        f" WHERE s.id IN ({ids}) AND s.expires > ?"
    )


def statements(t: str) -> dict[str, str]:
    """Return the store's statements on table ``t`` (and ``t_principals``), by name."""
    p = f"{t}_principals"
    return {
        "create_sessions": (
            f"CREATE TABLE IF NOT EXISTS {t} ("
            " id TEXT PRIMARY KEY NOT NULL, user_id TEXT,"
            " created REAL NOT NULL, seen REAL NOT NULL, issued REAL NOT NULL,"
            " expires REAL NOT NULL, data TEXT NOT NULL, meta TEXT NOT NULL,"
            " epoch TEXT, version INTEGER"
            ") WITHOUT ROWID"
        ),
        "columns": f"SELECT name FROM pragma_table_info('{t}')",  # noqa: S608
        # Partial: anonymous sessions (no user) stay out of the per-user index. In a WITHOUT
        # ROWID table every index ends with the primary key, so this orders by (created, id).
        "user_index": (
            f"CREATE INDEX IF NOT EXISTS {t}_user ON {t} (user_id, created)"
            " WHERE user_id IS NOT NULL"
        ),
        "expires_index": f"CREATE INDEX IF NOT EXISTS {t}_expires ON {t} (expires)",
        "create_principals": (
            f"CREATE TABLE IF NOT EXISTS {p} ("
            " user_id TEXT PRIMARY KEY NOT NULL, epoch TEXT, role TEXT NOT NULL DEFAULT '',"
            " disabled INTEGER NOT NULL DEFAULT 0, sessions INTEGER NOT NULL DEFAULT 0"
            ") WITHOUT ROWID"
        ),
        # Checks the epoch and counts the new session in one write of the principal's row.
        "claim": (
            f"UPDATE {p} SET sessions = sessions + 1"  # noqa: S608
            " WHERE user_id = ? AND epoch = ? AND NOT disabled"
            " RETURNING epoch, role, disabled, sessions"
        ),
        # A set_user() session: counted without any principal check (a row without epoch).
        "claim_unchecked": (
            f"INSERT INTO {p} (user_id, sessions) VALUES (?, 1)"  # noqa: S608
            " ON CONFLICT (user_id) DO UPDATE SET sessions = sessions + 1"
            " RETURNING epoch, role, disabled, sessions"
        ),
        "insert": (
            f"INSERT INTO {t} (id, {_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"  # noqa: S608
            " ON CONFLICT (id) DO NOTHING RETURNING 1"
        ),
        "delete_dead": f"DELETE FROM {t} WHERE id = ? AND expires <= ? RETURNING user_id, version",  # noqa: S608
        # The k oldest other sessions of the user, through the (user_id, created) index.
        "evict": (
            f"DELETE FROM {t} WHERE id IN (SELECT id FROM {t}"  # noqa: S608
            " WHERE user_id = ? AND id <> ? ORDER BY created, id LIMIT ?) RETURNING version"
        ),
        "set_count": f"UPDATE {p} SET sessions = ? WHERE user_id = ?",  # noqa: S608
        "uncount": f"UPDATE {p} SET sessions = max(sessions - ?, 0) WHERE user_id = ?",  # noqa: S608
        "delete": f"DELETE FROM {t} WHERE id = ? RETURNING user_id, version",  # noqa: S608
        "purge": (
            f"DELETE FROM {t} WHERE id IN"  # noqa: S608
            f" (SELECT id FROM {t} WHERE expires <= ? LIMIT ?) RETURNING user_id, version"
        ),
        "list_user": (
            f"SELECT s.id, s.data, s.user_id, s.created, s.seen, s.issued, s.expires, s.meta,"  # noqa: S608
            f" s.epoch, s.version, {_PRINCIPAL}"
            f" FROM {t} AS s LEFT JOIN {p} AS p ON p.user_id = s.user_id"
            " WHERE s.user_id = ? AND s.expires > ? AND (s.created, s.id) < (?, ?)"
            # Served sessions only (see sql_sessions.served), so that pages come out full.
            " AND s.version = ? AND (s.epoch IS NULL OR (p.epoch = s.epoch AND NOT p.disabled))"
            " ORDER BY s.created DESC, s.id DESC LIMIT ?"
        ),
        "principal": f"SELECT epoch, role, disabled FROM {p} WHERE user_id = ?",  # noqa: S608
        "install": (
            f"INSERT INTO {p} (user_id, epoch, role, disabled) VALUES (?, ?, ?, ?)"  # noqa: S608
            " ON CONFLICT (user_id) DO UPDATE SET"
            " role = iif(epoch IS NULL, excluded.role, role),"
            " disabled = iif(epoch IS NULL, excluded.disabled, disabled),"
            " epoch = coalesce(epoch, excluded.epoch)"
            " RETURNING epoch, role, disabled"
        ),
        "set_principal": (
            f"INSERT INTO {p} (user_id, epoch, role, disabled) VALUES (?, ?, ?, ?)"  # noqa: S608
            " ON CONFLICT (user_id) DO UPDATE SET"
            " epoch = excluded.epoch, role = excluded.role, disabled = excluded.disabled"
        ),
        # A rotation: every session of the user but the kept one while it lives.
        "rotate": (
            f"DELETE FROM {t} WHERE user_id = ? AND (id IS NOT ? OR expires <= ?)"  # noqa: S608
            " RETURNING epoch, expires, version"
        ),
        "restamp": f"UPDATE {t} SET epoch = ? WHERE id = ? AND user_id = ?",  # noqa: S608
        "update": (
            f"UPDATE {t} SET data = json_patch(data, ?), seen = ?, expires = ?"  # noqa: S608
            " WHERE id = ? AND expires > ?"
            # A tampered row that is not a JSON object is left alone: json_patch would fail on
            # malformed JSON, or replace a non-object wholesale and so revive a dead record.
            " AND CASE WHEN json_valid(data) THEN json_type(data) = 'object' END"
        ),
        "touch": f"UPDATE {t} SET seen = ?, expires = ? WHERE id = ? AND expires > ?",  # noqa: S608
    }


async def create_schema(tx: Transaction, *, sql: dict[str, str], table: str) -> None:
    """Create the tables and indexes, or add what 0.1's table lacks (under the write lock)."""
    await tx.fetch(sql["create_sessions"])
    present = {name for (name,) in await tx.fetch(sql["columns"])}
    for column, kind in MIGRATIONS.items():
        if column not in present:
            await tx.fetch(f"ALTER TABLE {table} ADD COLUMN {column} {kind}")
    for name in ("user_index", "expires_index", "create_principals"):
        await tx.fetch(sql[name])
