"""What the SQL token stores share: their table, and one statement per operation.

``take`` is one ``DELETE … RETURNING``: the row's lock makes concurrent takes of one token,
from any number of workers, return it to exactly one of them; the others delete nothing and
get no row. A take for another user matches no row and leaves the token alone. Expiry is
decided from the store's clock (passed in), never the server's: expired rows count as missing
until ``purge_expired`` deletes them.

The stores are :mod:`sessionauth.backends.sqlite.tokens` and
:mod:`sessionauth.backends.postgres.tokens`; the Redis one is
:mod:`sessionauth.backends.redis.tokens`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sessionauth.backends.sql_attempts import check_options
from sessionauth.stores.tokens import DEFAULT_TABLE, TokenRecord

__all__ = ["DEFAULT_TABLE", "names", "record_of", "schema", "statements"]

_COLUMNS = "token_hash, user_id, purpose, binding, expires, payload"
_ADD = "INSERT INTO {table} ({columns}) VALUES ({p1}, {p2}, {p3}, {p4}, {p5}, {p6})"
# A NULL second parameter takes the token whoever it belongs to.
_TAKE = (
    "DELETE FROM {table} WHERE token_hash = {p1} AND ({p2} IS NULL OR user_id = {p2})"
    " RETURNING user_id, purpose, binding, expires, payload"
)
_PURGE = "DELETE FROM {table} WHERE expires <= {p1}"


def names(table: str, timeout: float, *, schemas: bool) -> tuple[str, str]:
    """Validate the options; return ``table`` quoted for SQL and its expiry index's quoted name.

    Raises:
        ConfigurationError: For an invalid table name or timeout.
    """
    quoted, index = check_options(table, timeout, schemas=schemas)
    return quoted, index.removesuffix('_reset_at"') + '_expires"'


def statements(table: str, marker: str, *, text_cast: str = "") -> dict[str, str]:
    """The store's statements on ``table``, with ``marker`` + n as the n-th parameter.

    Args:
        table: The quoted table name.
        marker: ``?`` (SQLite) or ``$`` (PostgreSQL).
        text_cast: Appended to the user parameter of ``take`` (PostgreSQL needs ``::text`` to
            type a parameter that may be NULL).
    """
    p1, p2, p3, p4, p5, p6 = (f"{marker}{n}" for n in range(1, 7))
    return {
        "add": _ADD.format(table=table, columns=_COLUMNS, p1=p1, p2=p2, p3=p3, p4=p4, p5=p5, p6=p6),
        "take": _TAKE.format(table=table, p1=p1, p2=p2 + text_cast),
        "purge": _PURGE.format(table=table, p1=p1),
    }


def schema(table: str, index: str, columns: str, options: str = "") -> tuple[str, str]:
    """The statements creating the token table and its expiry index, if missing."""
    return (
        f"CREATE TABLE IF NOT EXISTS {table} ({columns}){options}",
        f"CREATE INDEX IF NOT EXISTS {index} ON {table} (expires)",
    )


def record_of(row: Sequence[Any]) -> TokenRecord:
    """The record a ``take`` row holds."""
    user_id, purpose, binding, expires, payload = row
    return TokenRecord(
        user_id=str(user_id),
        purpose=str(purpose),
        binding=str(binding),
        expires=float(expires),
        payload=None if payload is None else str(payload),
    )
