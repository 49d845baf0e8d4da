"""The PostgreSQL session store's SQL: its schema, one statement per operation, its table name.

Statements are templates with ``{table}`` (the quoted, validated table name) and asyncpg's
``$n`` parameters; :class:`~sessionauth.backends.postgres.sessions.PostgresStore` formats them
once. Why each statement is safe under concurrency is in that module's docstring.
"""

from __future__ import annotations

import re

from sessionauth.errors import ConfigurationError

__all__ = ["READY", "SCHEMA", "STATEMENTS", "parse_table"]

# Table and schema names are interpolated into SQL, so only plain identifiers pass. The table
# part stays short enough that the index names derived from it fit PostgreSQL's 63 bytes (longer
# names would be truncated, and two truncated index names could collide).
_TABLE_NAME = re.compile(r"(?:([A-Za-z_][A-Za-z0-9_]{0,62})\.)?([A-Za-z_][A-Za-z0-9_]{0,47})")

# Run as one simple-protocol script, hence one transaction, unless READY says the tables are
# complete (a read-only standby then still serves). Concurrent CREATE ... IF NOT EXISTS can
# still fail on the catalog's unique indexes, so processes starting together first queue on a
# transaction-scoped advisory lock named after the table. A table of 0.1 gets its new columns
# here (NULL in its rows, which are then no sessions).
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
    " meta jsonb NOT NULL,"
    ' epoch text COLLATE "C",'
    " version smallint)",
    'ALTER TABLE {table} ADD COLUMN IF NOT EXISTS epoch text COLLATE "C",'
    " ADD COLUMN IF NOT EXISTS version smallint",
    # Anonymous sessions (user_id NULL) never need the per-user index, so they stay out of it.
    'CREATE INDEX IF NOT EXISTS "{name}_user_idx" ON {table} (user_id, created)'
    " WHERE user_id IS NOT NULL",
    'CREATE INDEX IF NOT EXISTS "{name}_expires_idx" ON {table} (expires)',
    "CREATE TABLE IF NOT EXISTS {principals} ("
    ' user_id text COLLATE "C" PRIMARY KEY,'
    ' epoch text COLLATE "C",'
    " role text NOT NULL DEFAULT '',"
    " disabled boolean NOT NULL DEFAULT false,"
    " sessions integer NOT NULL DEFAULT 0)",
)

READY = (
    "SELECT to_regclass($1) IS NOT NULL AND EXISTS (SELECT 1 FROM pg_attribute"
    " WHERE attrelid = to_regclass($2) AND attname = 'version' AND NOT attisdropped)"
)
"""Whether the principals table and the sessions table's last added column exist."""

_ROW = "s.data::text, s.meta::text, s.user_id, s.created, s.seen, s.issued, s.expires, s.epoch"
_JOINED = (
    f"SELECT {_ROW}, s.version, p.epoch, p.role, p.disabled, s.id"  # noqa: S608 - templates
    " FROM {table} s LEFT JOIN {principals} p ON p.user_id = s.user_id"
)

_INSERT_CLAIMED = (
    "INSERT INTO {table} (id, user_id, created, seen, issued, expires, data, meta, epoch,"
    " version) SELECT $1, $2, $3, $4, $5, $6, $7::text::jsonb, $8::text::jsonb, $9, $10"
    " FROM claim"
)

STATEMENTS = {
    # The loads of one event-loop iteration, in one query (loads.py), each row joined with its
    # user's principal; the id comes last, so that rows are matched to the loads by their id.
    "load_many": f"{_JOINED} WHERE s.id = ANY($1::text[]) AND s.expires > $2",
    # Checks the epoch, counts the new session and locks the principal's row until commit: a
    # rotation waits for the login, or the login finds the new epoch.
    "claim": (
        "UPDATE {principals} SET sessions = sessions + 1"
        " WHERE user_id = $1 AND epoch = $2 AND NOT disabled RETURNING epoch, role, sessions"
    ),
    # A set_user() session: counted (and the row locked) without any principal check.
    "claim_unchecked": (
        "INSERT INTO {principals} AS p (user_id, sessions) VALUES ($1, 1)"
        " ON CONFLICT (user_id) DO UPDATE SET sessions = p.sessions + 1"
        " RETURNING epoch, role, sessions"
    ),
    # A login in one statement (autocommitted): the claim's row, once locked, feeds the insert,
    # so the principal's row is locked before the session's is written. A claim that finds no
    # current principal inserts nothing; an id already taken fails the whole statement (unique
    # violation), and the store takes the slow path, a transaction over the statements above.
    "login": (
        "WITH claim AS (UPDATE {principals} SET sessions = sessions + 1"  # noqa: S608 - templates
        " WHERE user_id = $2 AND epoch = $9 AND NOT disabled RETURNING epoch, role, sessions),"
        f" stored AS ({_INSERT_CLAIMED})"
        " SELECT epoch, role, sessions FROM claim"
    ),
    "login_unchecked": (
        "WITH claim AS (INSERT INTO {principals} AS p (user_id, sessions) VALUES ($2, 1)"  # noqa: S608
        " ON CONFLICT (user_id) DO UPDATE SET sessions = p.sessions + 1"
        " RETURNING epoch, role, sessions),"
        f" stored AS ({_INSERT_CLAIMED})"
        " SELECT epoch, role, sessions FROM claim"
    ),
    "insert": (
        "INSERT INTO {table} (id, user_id, created, seen, issued, expires, data, meta, epoch,"
        " version) VALUES ($1, $2, $3, $4, $5, $6, $7::text::jsonb, $8::text::jsonb, $9, $10)"
        " ON CONFLICT (id) DO NOTHING RETURNING true"
    ),
    "delete_dead": "DELETE FROM {table} WHERE id = $1 AND expires <= $2 RETURNING user_id, version",
    # The cap, in one statement: the principal's row locked (and its count read) first, then
    # the user's oldest sessions but $2 beyond the cap $3 deleted through the (user_id,
    # created) index, LIMIT k, and the count set to what is left. Fewer rows found than the
    # count says means it was too high (rows deleted by hand) and only $2 is left: 1.
    "evict": (
        "WITH counted AS (SELECT sessions, greatest(sessions - $3, 0) AS excess"
        " FROM {principals} WHERE user_id = $1 FOR UPDATE),"
        " gone AS (DELETE FROM {table} WHERE id = ANY(ARRAY(SELECT id FROM {table}"
        " WHERE user_id = $1 AND id <> $2 ORDER BY created, id"
        " LIMIT (SELECT excess FROM counted))) RETURNING version)"
        " UPDATE {principals} p SET sessions = CASE WHEN g.found < c.excess THEN 1"
        " ELSE c.sessions - g.counted END"
        " FROM counted c, (SELECT count(*) AS found, count(version) AS counted FROM gone) g"
        " WHERE p.user_id = $1 AND c.excess > 0"
    ),
    "uncount": "UPDATE {principals} SET sessions = greatest(sessions - $2, 0) WHERE user_id = $1",
    # A logout reads the session's user, locks that user's principal row, then deletes the
    # session only if it still has that user (a row that appeared since was made after the
    # logout, which leaves it alone): the principal's row is always locked first.
    "owner": "SELECT user_id FROM {table} WHERE id = $1",
    "lock_user": "SELECT 1 FROM {principals} WHERE user_id = $1 FOR UPDATE",
    # Both deletes answer how many rows went (0 or 1): a rotation asks whether the record it
    # replaces was still there. The UPDATE runs whether or not the SELECT reads it.
    "delete": (
        "WITH gone AS (DELETE FROM {table} WHERE id = $1 AND user_id IS NOT DISTINCT FROM $2"
        " RETURNING user_id, version),"
        " uncounted AS (UPDATE {principals} p SET sessions = greatest(p.sessions - 1, 0)"
        " FROM gone WHERE p.user_id = gone.user_id AND gone.version IS NOT NULL)"
        " SELECT count(*) FROM gone"
    ),
    # An anonymous session's id (no user group in it): nothing to lock first.
    "delete_any": (
        "WITH gone AS (DELETE FROM {table} WHERE id = $1 RETURNING user_id, version),"
        " uncounted AS (UPDATE {principals} p SET sessions = greatest(p.sessions - 1, 0)"
        " FROM gone WHERE p.user_id = gone.user_id AND gone.version IS NOT NULL)"
        " SELECT count(*) FROM gone"
    ),
    "purge_candidates": (
        "SELECT id, user_id FROM {table} WHERE expires <= $1 LIMIT $2 FOR UPDATE SKIP LOCKED"
    ),
    # Users of the candidates whose principal row exists, and those this purge could lock.
    "purge_owners": (
        "WITH locked AS (SELECT user_id FROM {principals} WHERE user_id = ANY($1::text[])"
        " FOR UPDATE SKIP LOCKED)"
        " SELECT p.user_id, EXISTS (SELECT 1 FROM locked l WHERE l.user_id = p.user_id)"
        " FROM {principals} p WHERE p.user_id = ANY($1::text[])"
    ),
    # = ANY($1) rather than IN (...): the planner may turn IN into a hash join over a scan of
    # the whole table, where ANY of an array always probes the primary key.
    "purge": (
        "WITH gone AS (DELETE FROM {table} WHERE id = ANY($1::text[]) RETURNING user_id, version)"
        " UPDATE {principals} p SET sessions = greatest(p.sessions - g.n, 0)"
        " FROM (SELECT user_id, count(*) AS n FROM gone WHERE version IS NOT NULL"
        " GROUP BY user_id) g WHERE p.user_id = g.user_id"
    ),
    "list_user": (
        f"{_JOINED} WHERE s.user_id = $1 AND s.expires > $2 AND (s.created, s.id) < ($3, $4)"
        # Served sessions only (see sql_sessions.served), so that pages come out full.
        " AND s.version = $6 AND (s.epoch IS NULL OR (p.epoch = s.epoch AND NOT p.disabled))"
        " ORDER BY s.created DESC, s.id DESC LIMIT $5"
    ),
    "principal": "SELECT epoch, role, disabled FROM {principals} WHERE user_id = $1",
    "install": (
        "INSERT INTO {principals} AS p (user_id, epoch, role, disabled) VALUES ($1, $2, $3, $4)"
        " ON CONFLICT (user_id) DO UPDATE SET epoch = coalesce(p.epoch, EXCLUDED.epoch),"
        " role = CASE WHEN p.epoch IS NULL THEN EXCLUDED.role ELSE p.role END,"
        " disabled = CASE WHEN p.epoch IS NULL THEN EXCLUDED.disabled ELSE p.disabled END"
        " RETURNING epoch, role, disabled"
    ),
    # The principal's row, created empty if missing, locked, and read as it was.
    "lock_principal": (
        "INSERT INTO {principals} AS p (user_id) VALUES ($1)"
        " ON CONFLICT (user_id) DO UPDATE SET user_id = EXCLUDED.user_id"
        " RETURNING epoch, role, disabled"
    ),
    # A rotation: every session of the user but the kept one while it lives; counts those that
    # were being served (of the old epoch $4, or set_user() ones without an epoch) and those
    # the principal's count included.
    "rotate": (
        "WITH gone AS (DELETE FROM {table} WHERE user_id = $1"
        " AND (id IS DISTINCT FROM $2 OR expires <= $3) RETURNING epoch, expires, version)"
        " SELECT count(*) FILTER (WHERE (epoch IS NULL OR epoch = $4) AND expires > $3"
        " AND version = $5),"
        " count(version) FROM gone"
    ),
    "restamp": "UPDATE {table} SET epoch = $1 WHERE id = $2 AND user_id = $3",
    "set_principal": (
        "UPDATE {principals} SET epoch = $2, role = $3, disabled = $4,"
        " sessions = greatest(sessions - $5, 0) WHERE user_id = $1"
    ),
    # jsonb_typeof guards the merge: a corrupt (non-object) record is no session to write to.
    "update": (
        "UPDATE {table} SET data = (data || $2::text::jsonb) - $3::text[],"
        " seen = $4, expires = $5"
        " WHERE id = $1 AND expires > $6 AND jsonb_typeof(data) = 'object'"
    ),
    "touch": "UPDATE {table} SET seen = $2, expires = $3 WHERE id = $1 AND expires > $4",
}


def parse_table(table: str) -> tuple[str, str, str]:
    """Return ``table`` and its principals table quoted for SQL, and the bare name.

    The bare name prefixes the index names; the principals table is ``<table>_principals``
    in the same schema.

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
    prefix = "" if schema is None else f'"{schema}".'
    return f'{prefix}"{name}"', f'{prefix}"{name}_principals"', name
