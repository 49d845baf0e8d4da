"""The Redis store's per-user operations: principals, their changes, and pages of sessions.

Each is one script on the user's hash (see :mod:`.keys` for the layout and
:mod:`.scripts`), so one Cluster slot, atomic with every login and session write of the user:

* ``install`` stores a principal only if the user has none; ``change`` applies a
  :class:`~sessionauth.principal.PrincipalChange` like ``PrincipalChange.apply`` does, the new
  epoch made here (random, never a Lua number). A new epoch deletes every session of the user
  but the one kept, which takes it: O(sessions of the user), acceptable for a rare rotation.
  Both leave the hash living at least :data:`PRINCIPAL_TTL` longer, so a principal without
  sessions is forgotten after a day and installed again by the next login. On Sentinel both
  wait for the replicas like a login does; unacknowledged, the write stands on the master (a
  restriction is safer applied than not) and ``StoreUnavailable`` is raised all the same.
* ``page`` reads the user's hash in one script and returns the sessions served now, newest
  first by their creation sequence number (from before the cursor, one such number):
  O(the user's live sessions), however many times they rotated.
"""

from __future__ import annotations

from typing import Any

from sessionauth.backends.binding import binding
from sessionauth.backends.redis import scripts
from sessionauth.backends.redis.codec import decode_principal, decode_record, to_ms
from sessionauth.backends.redis.runner import Runner, Unacknowledged
from sessionauth.errors import StoreUnavailable
from sessionauth.policy import Clock
from sessionauth.principal import Principal, PrincipalChange, new_epoch
from sessionauth.record import SessionRecord
from sessionauth.stores.base import MAX_PAGE, SessionPage
from sessionauth.tokens import user_group

__all__ = ["PRINCIPALS_FIELD", "PRINCIPAL_TTL", "RedisPrincipals", "principal_of"]

PRINCIPAL_TTL = 86400.0
"""Seconds a user hash lives at least after a principal write: a principal without sessions is
forgotten after a day (the next login installs it again from the users database)."""
PRINCIPALS_FIELD = b"p"
"""The user hash's field holding its principals."""
_NO_CURSOR = 2**63  # "before" of a first page: newer than any sequence number


def principal_of(reply: list[Any]) -> Principal:
    """A principal from a script's ``[epoch, role, disabled]`` reply."""
    epoch, role, disabled = reply[:3]
    return Principal(epoch=epoch.decode(), role=role.decode(), disabled=bool(disabled))


def _flag(value: bool) -> str:
    return "1" if value else "0"


class RedisPrincipals:
    """The per-user half of :class:`~sessionauth.backends.redis.sessions.RedisStore`.

    Args:
        runner: Sends the scripts.
        clock: The time source used to decide expiry.
        user_prefix: The key prefix of user hashes (``{prefix}u:``).
    """

    def __init__(self, runner: Runner, *, clock: Clock, user_prefix: bytes):
        self._runner = runner
        self._clock = clock
        self._user_prefix = user_prefix

    def key_of(self, user_id: str) -> tuple[str, bytes]:
        """Return the user's group and the key of the hash holding it."""
        group = user_group(user_id)
        return group, self._user_prefix + group.encode()

    async def page(self, user_id: str, *, limit: int, cursor: str | None) -> SessionPage:
        """Return a page of the user's served sessions, newest first; see the module."""
        if limit < 1:
            raise ValueError("a page holds at least one session")
        limit = min(limit, MAX_PAGE)
        if cursor is None:
            before = _NO_CURSOR
        elif cursor.isascii() and cursor.isdigit() and len(cursor) < 19:
            before = int(cursor)
        else:
            return SessionPage([], None)
        group, key = self.key_of(user_id)
        now = to_ms(self._clock())
        reply = await self._runner.script(scripts.LIST, key, [user_id, now, before, limit + 1])
        principal = decode_principal(reply[0], user_id)
        entries = range(1, len(reply), 3)  # the script's sessions: limit + 1 if there are more
        found: list[tuple[str, SessionRecord]] = []
        for at in entries[:limit]:
            try:
                sid = f"{group}.{reply[at].decode('ascii')}"
            except UnicodeDecodeError:  # no id this store writes: no session
                continue
            record = decode_record(reply[at + 1], now, sid)
            if record is None:
                continue
            record.principal = None if record.epoch is None else principal
            found.append((sid, record))
        # The cursor follows the script's entries, not the sessions that decoded: a corrupt
        # record on this page must not end the listing before the sessions after it.
        if len(entries) <= limit:
            return SessionPage(found, None)
        return SessionPage(found, str(reply[entries[limit - 1] + 2]))

    async def get(self, user_id: str) -> Principal | None:
        """Return the principal of ``user_id`` (one ``HGET``), or ``None``."""
        _, key = self.key_of(user_id)
        command = self._runner.client.execute_command("HGET", key, PRINCIPALS_FIELD)
        return decode_principal(await self._runner.run(command), user_id)

    async def install(self, user_id: str, principal: Principal) -> Principal:
        """Store ``principal`` unless the user has one; return the one in force."""
        _, key = self.key_of(user_id)
        args: list[Any] = [
            user_id,
            principal.epoch,
            principal.role,
            _flag(principal.disabled),
            to_ms(self._clock()),
            to_ms(PRINCIPAL_TTL),
        ]
        return principal_of(await self._write(scripts.INSTALL, key, args))

    async def change(
        self, user_id: str, change: PrincipalChange, *, keep_field: bytes
    ) -> tuple[Principal, int]:
        """Apply ``change``; return the principal now and how many served sessions went.

        ``keep_field`` is the hash field of ``change.keep`` (``b""``: no session is kept).
        """
        _, key = self.key_of(user_id)
        args: list[Any] = [
            user_id,
            to_ms(self._clock()),
            keep_field,
            binding(change.keep) if change.keep and keep_field else "",
            new_epoch(),
            change.fallback_role,
            _flag(change.fallback_disabled),
            change.role or "",
            "" if change.disabled is None else _flag(change.disabled),
            _flag(change.rotate),
            to_ms(PRINCIPAL_TTL),
        ]
        reply = await self._write(scripts.CHANGE, key, args)
        return principal_of(reply[:3]), int(reply[3])

    async def _write(self, source: str, key: bytes, args: list[Any]) -> Any:
        try:
            return await self._runner.acknowledged(source, key, args)
        except Unacknowledged as exc:
            raise StoreUnavailable(
                f"the principal change reached {exc.acknowledged} of "
                f"{self._runner.wait_replicas} replicas in time"
            ) from None
