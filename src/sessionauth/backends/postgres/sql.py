"""The PostgreSQL session store's SQL: its schema, one statement per operation, its table name.

Statements are templates with ``{table}`` (the quoted, validated table name) and asyncpg's
``$n`` parameters; :class:`~sessionauth.backends.postgres.sessions.PostgresStore` formats them
once. Why each statement is safe under concurrency is in that module's docstring.
"""

from __future__ import annotations

import re

from sessionauth.errors import ConfigurationError

__all__ = ["SCHEMA", "STATEMENTS", "parse_table"]

# Table and schema names are interpolated into SQL, so only plain identifiers pass. The table
# part stays short enough that the index names derived from it fit PostgreSQL's 63 bytes (longer
# names would be truncated, and two truncated index names could collide).
_TABLE_NAME = re.compile(r"(?:([A-Za-z_][A-Za-z0-9_]{0,62})\.)?([A-Za-z_][A-Za-z0-9_]{0,47})")

# Run as one simple-protocol script, hence one transaction. Concurrent CREATE ... IF NOT EXISTS
# can still fail on the catalog's unique indexes, so processes starting together first queue on
# a transaction-scoped advisory lock named after the table.
SCHEMA = (
    "SELECT pg_advisory_xact_lock({lock_key})",
    "CREATE TABLE IF NOT EXISTS {table} ("
    ' id text COLLATE "C" PRIMARY KEY,'
    ' user_id text COLLATE "C",'
    " created double precision NOT NULL,"
    " seen double precision NOT NULL,"
    " issued double precision NOT NULL,"
    " expires double precision NOT NULL,"
    " data jsonb NOT NULL,"
    " meta jsonb NOT NULL)",
    # Anonymous sessions (user_id NULL) never need the per-user index, so they stay out of it.
    'CREATE INDEX IF NOT EXISTS "{name}_user_idx" ON {table} (user_id, created)'
    " WHERE user_id IS NOT NULL",
    'CREATE INDEX IF NOT EXISTS "{name}_expires_idx" ON {table} (expires)',
)

STATEMENTS = {
    # The loads of one event-loop iteration, in one query (loads.py); the id
    # comes last, as in list_user, so that rows are matched to the loads by their own id.
    "load_many": (
        "SELECT data::text, meta::text, user_id, created, seen, issued, expires, id"
        " FROM {table} WHERE id = ANY($1::text[]) AND expires > $2"
    ),
    "create": (
        "INSERT INTO {table} AS t (id, user_id, created, seen, issued, expires, data, meta)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7::text::jsonb, $8::text::jsonb)"
        " ON CONFLICT (id) DO UPDATE SET user_id = EXCLUDED.user_id,"
        " created = EXCLUDED.created, seen = EXCLUDED.seen, issued = EXCLUDED.issued,"
        " expires = EXCLUDED.expires, data = EXCLUDED.data, meta = EXCLUDED.meta"
        # An expired leftover under the same id may be replaced; a live session never is.
        " WHERE t.expires <= $9"
    ),
    # jsonb_typeof guards the merge: a corrupt (non-object) record is no session to write to.
    "update": (
        "UPDATE {table} SET data = (data || $2::text::jsonb) - $3::text[],"
        " seen = $4, expires = $5"
        " WHERE id = $1 AND expires > $6 AND jsonb_typeof(data) = 'object'"
    ),
    "touch": "UPDATE {table} SET seen = $2, expires = $3 WHERE id = $1 AND expires > $4",
    "delete": "DELETE FROM {table} WHERE id = $1",
    "list_user": (
        "SELECT data::text, meta::text, user_id, created, seen, issued, expires, id"
        " FROM {table}"
        " WHERE user_id = $1 AND expires > $2 ORDER BY created, id"
    ),
    "delete_user": (
        "WITH doomed AS (SELECT id FROM {table} WHERE user_id = $1 AND id IS DISTINCT FROM $2"
        " ORDER BY id FOR UPDATE),"
        " gone AS (DELETE FROM {table} t USING doomed WHERE t.id = doomed.id"
        " RETURNING t.expires)"
        " SELECT count(*) FILTER (WHERE expires > $3) FROM gone"
    ),
    "update_user": (
        "UPDATE {table} SET data = data || $2::text::jsonb WHERE id IN"
        " (SELECT id FROM {table} WHERE user_id = $1 AND expires > $3"
        " AND jsonb_typeof(data) = 'object' ORDER BY id FOR UPDATE)"
    ),
    # = ANY(ARRAY(...)) rather than IN (...): the planner may turn IN into a hash join over a
    # scan of the whole table, where ANY of an array always probes the primary key.
    "purge": (
        "DELETE FROM {table} WHERE id = ANY(ARRAY(SELECT id FROM {table} WHERE expires <= $1"
        " LIMIT $2 FOR UPDATE SKIP LOCKED))"
    ),
}


def parse_table(table: str) -> tuple[str, str]:
    """Return ``table`` quoted for SQL, and the bare name that prefixes its index names.

    Raises:
        ConfigurationError: If ``table`` is not ``name`` or ``schema.name`` made of letters,
            digits and underscores.
    """
    match = _TABLE_NAME.fullmatch(table)
    if match is None:
        raise ConfigurationError(
            f"invalid session table name {table!r}: use letters, digits and underscores"
            " (at most 48), optionally prefixed by a schema and a dot"
        )
    schema, name = match.groups()
    quoted = f'"{name}"' if schema is None else f'"{schema}"."{name}"'
    return quoted, name
