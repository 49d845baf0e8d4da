"""What the SQL factor stores share: three tables, and one statement per operation.

``{table}_totp`` has one row per user, ``{table}_recovery`` one per unused code hash,
``{table}_passkeys`` one per credential. Every deciding operation is a single statement whose
``WHERE`` is the whole condition, so the row lock serialises concurrent calls in both
dialects (PostgreSQL re-checks the ``WHERE`` on the row a concurrent transaction just
committed; SQLite runs one writer at a time):

* accepting a TOTP step is ``UPDATE … WHERE secret = ? AND last_step < ? AND confirmed = ?``;
* consuming a recovery code is ``DELETE … WHERE code_hash = ?`` (one row deleted, once);
* using a passkey is ``UPDATE … WHERE sign_count < ? OR (sign_count = 0 AND ? = 0)``.

Flags are integers (0 or 1) so that the statements are the same in both dialects.

The stores are :mod:`sessionauth.backends.sqlite.factors` and
:mod:`sessionauth.backends.postgres.factors`.
"""

from __future__ import annotations

import abc
import json
from collections.abc import Sequence
from typing import Any

from sessionauth.backends.sql_attempts import check_options
from sessionauth.stores.factors import FactorStore, Passkey, PasskeyUse, TotpRecord

__all__ = [
    "SQLFactorStore",
    "passkey_from_row",
    "passkey_row",
    "schema",
    "statements",
    "tables",
]

_PASSKEY_COLUMNS = (
    "credential_id, public_key, sign_count, backup_eligible, backed_up, transports, name,"
    " created, last_used"
)

_STATEMENTS = {
    "begin_totp": (
        "INSERT INTO {totp} AS t (user_id, secret, confirmed, last_step) VALUES ({p1}, {p2}, 0, -1)"
        " ON CONFLICT (user_id) DO UPDATE SET secret = excluded.secret, confirmed = 0,"
        " last_step = -1 WHERE t.confirmed = 0 RETURNING user_id"
    ),
    "get_totp": "SELECT secret, confirmed, last_step FROM {totp} WHERE user_id = {p1}",
    "accept_totp": (
        "UPDATE {totp} SET last_step = {p3}, confirmed = 1, secret = COALESCE({p5}, secret)"
        " WHERE user_id = {p1} AND secret = {p2} AND last_step < {p3} AND confirmed = {p4}"
        " RETURNING user_id"
    ),
    "delete_totp": "DELETE FROM {totp} WHERE user_id = {p1} RETURNING user_id",
    "totp_users": "SELECT user_id FROM {totp}",
    "replace_totp_secret": (
        "UPDATE {totp} SET secret = {p3} WHERE user_id = {p1} AND secret = {p2} RETURNING user_id"
    ),
    "delete_codes": "DELETE FROM {recovery} WHERE user_id = {p1}",
    "insert_code": "INSERT INTO {recovery} (user_id, code_hash) VALUES ({p1}, {p2})",
    "consume_code": (
        "DELETE FROM {recovery} WHERE user_id = {p1} AND code_hash = {p2} RETURNING user_id"
    ),
    "count_codes": "SELECT count(*) FROM {recovery} WHERE user_id = {p1}",
    "add_passkey": (
        "INSERT INTO {passkeys} (user_id, {columns}) VALUES"
        " ({p1}, {p2}, {p3}, {p4}, {p5}, {p6}, {p7}, {p8}, {p9}, {p10})"
        " ON CONFLICT (user_id, credential_id) DO NOTHING RETURNING user_id"
    ),
    "list_passkeys": (
        "SELECT {columns} FROM {passkeys} WHERE user_id = {p1} ORDER BY created, credential_id"
    ),
    "get_passkey": (
        "SELECT {columns} FROM {passkeys} WHERE user_id = {p1} AND credential_id = {p2}"
    ),
    "rename_passkey": (
        "UPDATE {passkeys} SET name = {p3} WHERE user_id = {p1} AND credential_id = {p2}"
        " RETURNING user_id"
    ),
    "delete_passkey": (
        "DELETE FROM {passkeys} WHERE user_id = {p1} AND credential_id = {p2} RETURNING user_id"
    ),
    "use_passkey": (
        "UPDATE {passkeys} SET sign_count = {p3}, backed_up = {p4}, last_used = {p5}"
        " WHERE user_id = {p1} AND credential_id = {p2}"
        " AND (sign_count < {p3} OR (sign_count = 0 AND {p3} = 0)) RETURNING user_id"
    ),
    "reset_totp": "DELETE FROM {totp} WHERE user_id = {p1}",
    "reset_passkeys": "DELETE FROM {passkeys} WHERE user_id = {p1}",
}


def tables(table: str, timeout: float, *, schemas: bool) -> dict[str, str]:
    """Validate the options; return the three tables' quoted names, by role.

    Raises:
        ConfigurationError: For an invalid table name or timeout.
    """
    quoted, _ = check_options(table, timeout, schemas=schemas)
    return {role: quoted[:-1] + f'_{role}"' for role in ("totp", "recovery", "passkeys")}


def statements(names: dict[str, str], marker: str) -> dict[str, str]:
    """The statements on the tables ``names``, with ``marker`` + n as the n-th parameter."""
    params = {f"p{n}": f"{marker}{n}" for n in range(1, 11)}
    return {
        key: sql.format(**names, **params, columns=_PASSKEY_COLUMNS)
        for key, sql in _STATEMENTS.items()
    }


def schema(names: dict[str, str], *, blob: str, integer: str, real: str) -> tuple[str, ...]:
    """The statements creating the three tables, if missing, in a dialect's types."""
    return (
        f"CREATE TABLE IF NOT EXISTS {names['totp']} (user_id text PRIMARY KEY,"
        f" secret {blob} NOT NULL, confirmed {integer} NOT NULL, last_step {integer} NOT NULL)",
        f"CREATE TABLE IF NOT EXISTS {names['recovery']} (user_id text NOT NULL,"
        " code_hash text NOT NULL, PRIMARY KEY (user_id, code_hash))",
        f"CREATE TABLE IF NOT EXISTS {names['passkeys']} (user_id text NOT NULL,"
        f" credential_id {blob} NOT NULL, public_key {blob} NOT NULL,"
        f" sign_count {integer} NOT NULL, backup_eligible {integer} NOT NULL,"
        f" backed_up {integer} NOT NULL, transports text NOT NULL, name text NOT NULL,"
        f" created {real} NOT NULL, last_used {real},"
        " PRIMARY KEY (user_id, credential_id))",
    )


def passkey_row(user_id: str, passkey: Passkey) -> tuple[Any, ...]:
    """The parameters of ``add_passkey`` for ``passkey``."""
    return (
        user_id,
        passkey.credential_id,
        passkey.public_key,
        passkey.sign_count,
        int(passkey.backup_eligible),
        int(passkey.backed_up),
        json.dumps(list(passkey.transports)),
        passkey.name,
        passkey.created,
        passkey.last_used,
    )


def passkey_from_row(row: Sequence[Any]) -> Passkey:
    """The passkey a row of ``list_passkeys`` or ``get_passkey`` holds."""
    transports = json.loads(row[5])
    return Passkey(
        credential_id=bytes(row[0]),
        public_key=bytes(row[1]),
        sign_count=int(row[2]),
        backup_eligible=bool(row[3]),
        backed_up=bool(row[4]),
        transports=tuple(str(t) for t in transports) if isinstance(transports, list) else (),
        name=str(row[6]),
        created=float(row[7]),
        last_used=None if row[8] is None else float(row[8]),
    )


class SQLFactorStore(FactorStore):
    """The operations of both SQL dialects, over one statement runner each.

    Subclasses run a named statement (:meth:`_rows`) and the two multi-statement steps
    (:meth:`_transaction`, given ``(statement name, parameters)`` pairs) on their database.
    """

    @abc.abstractmethod
    async def _rows(self, name: str, *params: Any) -> list[Sequence[Any]]:
        """Run the statement ``name`` and return its rows."""

    @abc.abstractmethod
    async def _transaction(self, steps: Sequence[tuple[str, tuple[Any, ...]]]) -> None:
        """Run the statements ``steps`` in one transaction."""

    async def begin_totp(self, user_id: str, secret: bytes) -> bool:
        """Store an unconfirmed secret unless a confirmed one exists (one upsert)."""
        return bool(await self._rows("begin_totp", user_id, secret))

    async def get_totp(self, user_id: str) -> TotpRecord | None:
        """Return the user's TOTP factor, or ``None``."""
        for secret, confirmed, last_step in await self._rows("get_totp", user_id):
            return TotpRecord(
                secret=bytes(secret), confirmed=bool(confirmed), last_step=int(last_step)
            )
        return None

    async def accept_totp_step(
        self,
        user_id: str,
        secret: bytes,
        step: int,
        *,
        confirm: bool = False,
        reseal: bytes | None = None,
    ) -> bool:
        """Compare-and-set the last accepted step in one guarded ``UPDATE``."""
        return bool(
            await self._rows("accept_totp", user_id, secret, step, int(not confirm), reseal)
        )

    async def delete_totp(self, user_id: str) -> bool:
        """Delete the TOTP factor; return whether there was one."""
        return bool(await self._rows("delete_totp", user_id))

    async def totp_users(self) -> list[str]:
        """Return the users with a TOTP factor (one ``SELECT``)."""
        return [str(user_id) for (user_id,) in await self._rows("totp_users")]

    async def replace_totp_secret(self, user_id: str, secret: bytes, new: bytes) -> bool:
        """Compare-and-set the secret in one guarded ``UPDATE``."""
        return bool(await self._rows("replace_totp_secret", user_id, secret, new))

    async def set_recovery_codes(self, user_id: str, hashes: Sequence[str]) -> None:
        """Replace the user's codes in one transaction."""
        await self._transaction(
            [("delete_codes", (user_id,)), *(("insert_code", (user_id, h)) for h in set(hashes))]
        )

    async def consume_recovery_code(self, user_id: str, code_hash: str) -> bool:
        """Delete one code; only the call whose ``DELETE`` found the row wins."""
        return bool(await self._rows("consume_code", user_id, code_hash))

    async def count_recovery_codes(self, user_id: str) -> int:
        """Return how many codes are left."""
        return int((await self._rows("count_codes", user_id))[0][0])

    async def add_passkey(self, user_id: str, passkey: Passkey) -> bool:
        """Insert the passkey unless the user has one with its id."""
        return bool(await self._rows("add_passkey", *passkey_row(user_id, passkey)))

    async def list_passkeys(self, user_id: str) -> list[Passkey]:
        """Return the user's passkeys, oldest first."""
        return [passkey_from_row(row) for row in await self._rows("list_passkeys", user_id)]

    async def get_passkey(self, user_id: str, credential_id: bytes) -> Passkey | None:
        """Return one passkey, or ``None``."""
        for row in await self._rows("get_passkey", user_id, credential_id):
            return passkey_from_row(row)
        return None

    async def rename_passkey(self, user_id: str, credential_id: bytes, name: str) -> bool:
        """Rename one passkey if it exists."""
        return bool(await self._rows("rename_passkey", user_id, credential_id, name))

    async def delete_passkey(self, user_id: str, credential_id: bytes) -> bool:
        """Delete one passkey if it exists."""
        return bool(await self._rows("delete_passkey", user_id, credential_id))

    async def use_passkey(
        self, user_id: str, credential_id: bytes, *, sign_count: int, backed_up: bool, now: float
    ) -> PasskeyUse:
        """Compare-and-set the sign count in one guarded ``UPDATE``."""
        params = (user_id, credential_id, sign_count, int(backed_up), now)
        if await self._rows("use_passkey", *params):
            return PasskeyUse.ACCEPTED
        # Refused: tell a regressed counter from a passkey deleted meanwhile (a read after
        # the decision, for the answer only).
        if await self._rows("get_passkey", user_id, credential_id):
            return PasskeyUse.COUNTER_REGRESSED
        return PasskeyUse.UNKNOWN

    async def reset(self, user_id: str) -> None:
        """Delete every factor of the user in one transaction."""
        await self._transaction(
            [
                ("reset_totp", (user_id,)),
                ("delete_codes", (user_id,)),
                ("reset_passkeys", (user_id,)),
            ]
        )
