"""Where the Redis session store keeps what: the keys and hash fields a session id names.

Layout, under a key prefix (``sa:`` by default)::

    {prefix}u:{group}   HASH, the user's (and, rarely, of users sharing the group):
        <11 chars>      a session's record: the field is the first 11 characters of the
                        session's digest, the record's binding the last 11 (together, all of it)
        p               the principals: msgpack {user id: [epoch, role, disabled]}
        <n>             the creation index: decimal n -> the field of the n-th session created
        q               msgpack [next n, head n, index entries]
                        PEXPIREAT: the latest session expiry, and at least a day after the last
                        principal write (a principal without sessions is forgotten after that)
    {prefix}a:{digest}  STRING: an anonymous session's record; PEXPIREAT at its expiry

A logged-in session's token names its user's *group* (:func:`sessionauth.tokens.user_group`), so
the store finds the user's hash from the session id alone (:meth:`SessionKeys.locate`), with no
lookup. The layout is apart from :mod:`~sessionauth.backends.redis.sessions` because the
scripts (:mod:`~sessionauth.backends.redis.scripts`), the per-user operations
(:mod:`~sessionauth.backends.redis.principals`) and the codec all rely on it, while the store
only needs to turn an id into a key and a field.
"""

from __future__ import annotations

__all__ = ["FIELD_LENGTH", "SessionKeys"]

FIELD_LENGTH = 11
"""Characters of a logged-in session's digest that name its field in the user hash."""


class SessionKeys:
    """The keys of one session store, under its prefix.

    Args:
        prefix: Prepended to every key.

    Attributes:
        user_prefix: What every user hash's key starts with (``{prefix}u:``).
        anon_prefix: What every anonymous session's key starts with (``{prefix}a:``).
    """

    def __init__(self, prefix: str):
        self.user_prefix = f"{prefix}u:".encode()
        self.anon_prefix = f"{prefix}a:".encode()

    def locate(self, sid: str) -> tuple[bytes, bytes] | None:
        """Return (key, field) for a storage id; field ``b""`` means an anonymous string key.

        ``None`` for an id whose digest is too short to name a field: no session of ours.
        """
        group, dot, digest = sid.partition(".")
        if not dot:
            return self.anon_prefix + sid.encode(), b""
        if len(digest) <= FIELD_LENGTH:
            return None
        return self.user_prefix + group.encode(), digest[:FIELD_LENGTH].encode()
