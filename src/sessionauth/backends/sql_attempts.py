"""What the SQL attempt counters share: their table, and one statement per operation.

Each ``reserve`` is one ``INSERT … ON CONFLICT DO UPDATE … WHERE … RETURNING`` that starts a
new window when the stored one has ended (``reset_at <= now``), adds one while the count is
below the limit, and otherwise changes nothing and returns no row (refused): the row's lock
serialises concurrent attempts from every worker, so no more than the limit are ever granted.
``release`` takes one back only from the same window (same ``reset_at``). Ended rows count as
zero until ``purge`` deletes them. Windows come from the counter's clock, never the server's,
so they agree with the ``retry_after`` the throttle computes.

The counters are :mod:`sessionauth.backends.sqlite.attempts` and
:mod:`sessionauth.backends.postgres.attempts`; the Redis one is
:mod:`sessionauth.backends.redis.attempts`.
"""

from __future__ import annotations

import re

from sessionauth.errors import ConfigurationError

__all__ = ["DEFAULT_TABLE", "check_options", "schema", "statements"]

DEFAULT_TABLE = "sessionauth_attempts"
"""The table SQL counters use unless told otherwise."""

# At most 48 characters, so the index name derived from it fits PostgreSQL's 63 bytes.
_NAME = r"[A-Za-z_][A-Za-z0-9_]{0,47}"

# One upsert for both SQL dialects ({p1}..{p4} become their placeholders). Inside DO UPDATE,
# the table name refers to the stored row, ``excluded`` to the proposed one; a row the WHERE
# leaves alone (a live window at the limit) is not returned.
_RESERVE = (
    'INSERT INTO {table} AS t ("key", count, reset_at) VALUES ({p1}, 1, {p2})'
    ' ON CONFLICT ("key") DO UPDATE SET'
    " count = CASE WHEN t.reset_at <= {p3} THEN 1 ELSE t.count + 1 END,"
    " reset_at = CASE WHEN t.reset_at <= {p3} THEN excluded.reset_at ELSE t.reset_at END"
    " WHERE t.reset_at <= {p3} OR t.count < {p4}"
    " RETURNING count, reset_at"
)
_RELEASE = (
    'UPDATE {table} SET count = count - 1 WHERE "key" = {p1} AND reset_at = {p2} AND count > 0'
)
_COUNT = 'SELECT count, reset_at FROM {table} WHERE "key" = {p1} AND reset_at > {p2}'
_RESET = 'DELETE FROM {table} WHERE "key" = {p1}'
_PURGE = "DELETE FROM {table} WHERE reset_at <= {p1}"


def check_options(table: str, timeout: float, *, schemas: bool) -> tuple[str, str]:
    """Validate the options; return ``table`` quoted for SQL and its index's quoted name."""
    pattern = rf"(?:{_NAME}\.)?{_NAME}" if schemas else _NAME
    if not re.fullmatch(pattern, table):
        raise ConfigurationError(
            f"invalid table name {table!r}: use up to 48 letters, digits and _"
            + (", optionally after a schema and a dot" if schemas else "")
        )
    if not timeout > 0:
        raise ConfigurationError("the counter timeout must be a positive number of seconds")
    name = table.rpartition(".")[2]
    return ".".join(f'"{part}"' for part in table.split(".")), f'"{name}_reset_at"'


def statements(table: str, marker: str) -> dict[str, str]:
    """The counter's statements on ``table``, with ``marker`` + n as the n-th parameter."""
    p1, p2, p3, p4 = (f"{marker}{n}" for n in (1, 2, 3, 4))
    return {
        "reserve": _RESERVE.format(table=table, p1=p1, p2=p2, p3=p3, p4=p4),
        "release": _RELEASE.format(table=table, p1=p1, p2=p2),
        "count": _COUNT.format(table=table, p1=p1, p2=p2),
        "reset": _RESET.format(table=table, p1=p1),
        "purge": _PURGE.format(table=table, p1=p1),
    }


def schema(table: str, index: str, columns: str, options: str = "") -> tuple[str, str]:
    """The statements creating the counter table and its index, if missing."""
    return (
        f"CREATE TABLE IF NOT EXISTS {table} ({columns}){options}",
        # For purge; the index changes only when a new window starts, not on every hit.
        f"CREATE INDEX IF NOT EXISTS {index} ON {table} (reset_at)",
    )
