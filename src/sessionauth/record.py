"""The stored form of a session, and the one place where session values are serialised.

Stores see :class:`SessionRecord` and :class:`RecordUpdate`, never requests or cookies. Values
are encoded as msgpack (Redis) or JSON (SQL columns), both through msgspec; nothing is ever
pickled, so stored bytes can never become code. A value that fails to decode makes the whole
record count as no session.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgspec

from sessionauth.principal import Principal

__all__ = [
    "CSRF_SEED",
    "FORMAT_VERSION",
    "REMEMBER",
    "RecordUpdate",
    "SessionRecord",
    "decode_json",
    "encode_json",
    "is_remembered",
]

FORMAT_VERSION = 2
"""The version of the stored record format; stores refuse (as no session) any other.

1 was sessionauth 0.1's (no epoch; roles copied into the session's values): such sessions are
no sessions, and their users sign in again. Each store writes the version with every record.

Version 2 grew one optional fact, without a new version: ``meta["remember"]`` (see
:data:`REMEMBER`), written by every login since remember-me. A record without it was written
before, when every session was persistent, so it means remembered (the long absolute timeout
and a persistent cookie): such records load and live on exactly as they would have.
"""

REMEMBER = "remember"
"""The ``meta`` key saying whether a login asked to be remembered (``True`` or ``False``).

Absent (records written before remember-me, anonymous sessions) means remembered. It lives in
``meta`` because ``meta`` is written once, when a record is created, and copied to the record
a rotation creates: every store already keeps it, so the flag needed no new column.
"""


CSRF_SEED = "csrf"
"""The ``meta`` key of the value a session's CSRF secret is derived from.

Written with the record that a login, a regeneration or a new session stores (a hash of its
first token, :func:`sessionauth.tokens.csrf_seed`), and kept by a renewal (``meta`` is copied
to the record a rotation creates), so a page rendered before a renewal still posts after it;
a login or a regeneration writes a new one. Records written before it have none, and their
CSRF secret is derived from the token, as it was then. It is not a credential: the secret is
an HMAC of it under the server's key.
"""


def is_remembered(meta: Mapping[str, Any]) -> bool:
    """Return whether a record with this ``meta`` is remembered (absent means yes)."""
    return meta.get(REMEMBER) is not False


class SessionRecord(msgspec.Struct, kw_only=True):
    """One session as a store keeps it.

    Attributes:
        data: The application's values (JSON-compatible).
        user_id: The authenticated user, or ``None``; stores index sessions by it.
        created: When the session (or its login) began, POSIX seconds; the absolute timeout
            counts from here.
        seen: The last activity the store knows of; the idle timeout counts from here.
        issued: When the current token was issued; renewal counts from here.
        expires: When the record dies, precomputed from the policy so that stores can expire
            records (TTL, purge) without knowing the policy.
        meta: Facts about the client at login (``ip``, ``ua``, ``auth``, and :data:`REMEMBER`),
            shown when listing sessions; written only when the record is created.
        epoch: The user's principal epoch when the login began (see
            :mod:`sessionauth.principal`); ``None`` for an anonymous session. The store serves
            a user's record only while this is still the principal's epoch.
        principal: The user's principal, as the store read it with the record (never stored
            with the record itself); ``None`` for an anonymous session.
    """

    data: dict[str, Any]
    created: float
    seen: float
    issued: float
    expires: float
    user_id: str | None = None
    # An empty dict default: msgspec copies it per instance. Not msgspec.field(default_factory=...),
    # whose Field object a mypyc-compiled class body refuses as the default of a dict attribute.
    meta: dict[str, Any] = {}
    epoch: str | None = None
    principal: Principal | None = None


class RecordUpdate(msgspec.Struct, kw_only=True, frozen=True):
    """The changes one request made to an existing record.

    Attributes:
        set: Keys assigned during the request, with their new values.
        delete: Keys deleted during the request.
        seen: The new last-activity time.
        expires: The new expiry time.
    """

    set: Mapping[str, Any]
    delete: tuple[str, ...]
    seen: float
    expires: float


_json_encoder = msgspec.json.Encoder()
_json_decoder = msgspec.json.Decoder(dict[str, Any])


def encode_json(data: Mapping[str, Any]) -> str:
    """Encode a mapping of session values as a JSON object (text)."""
    return _json_encoder.encode(data).decode()


def decode_json(text: str | bytes) -> dict[str, Any]:
    """Decode a JSON object of session values.

    Raises:
        msgspec.DecodeError: If ``text`` is not a JSON object; stores treat that as no session.
    """
    return _json_decoder.decode(text)
