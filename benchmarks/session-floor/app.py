"""The least a session layer of this design can do per request: the library's work, inlined.

``floor/`` is the limit of one store read and nothing else. This app is the next limit up: every
check an authenticated request of the library needs, with the library's own parts, and none of
its structure. The same cookie (token + 128-bit HMAC-SHA256 through :class:`HmacSha256`, with
the same hash), the same storage id, the same one pipelined ``HMGET`` of the user's hash
(:class:`ReadPipeline`) for the record and the principals, the same record bytes, the same
checks (format version, binding to its id, expiry, idle and absolute timeouts with remember-me's
shorter one, the principal's epoch and disabled flag, a corrupt record or a doubled cookie
being no session), and a private response (``Cache-Control: no-store``, ``Vary: Cookie``).
What it leaves out is what makes a library: a ``Session`` mapping, a store interface, a commit
plan, the pre-session and CSRF cookies, several keys, outage handling.

The login goes through the library (``RedisStore.install_principal`` and ``create``, as
``library/app.py`` does), so both read the very same stored bytes. compare.sh's ratio of this
system against ``library`` is what the library's structure costs on top of its work; it is an
experiment, not a product (``benchmarks/README.md``, "the floor of a session layer").
"""

from __future__ import annotations

import binascii
import hmac
import importlib.util
import os
import secrets
import time
from pathlib import Path
from typing import Any

import msgspec
from starlette.responses import JSONResponse

from sessionauth import Keyring, Session, TimeoutPolicy, open_store
from sessionauth.hmac_sha256 import sha256
from sessionauth.principal import Principal, new_epoch
from sessionauth.record import FORMAT_VERSION, REMEMBER
from sessionauth.tokens import new_token, storage_id

LIFETIME = 86400.0  # the contract's 24 h, idle and absolute


def _floor() -> Any:
    """``floor/app.py``: the same baseline app and read pipeline, on the same store URL."""
    path = Path(__file__).resolve().parents[1] / "floor" / "app.py"
    spec = importlib.util.spec_from_file_location("session_floor_base", path)
    if spec is None or spec.loader is None:
        raise SystemExit(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_base = _floor()
baseline, reads = _base.baseline, _base.reads
store = open_store(_base.REDIS_URL)
keyring = Keyring([os.environ.get("BENCH_SECRET") or secrets.token_urlsafe(48)])
mac = keyring._cookie_macs[0]  # the experiment inlines Keyring.unsign
policy = TimeoutPolicy(idle_timeout=LIFETIME, absolute_timeout=LIFETIME)

_PREFIX = b"sessionId="
_URLSAFE = bytes.maketrans(b"+/", b"-_")
_PRIVATE = ((b"cache-control", b"no-store"), (b"vary", b"Cookie"))
_unpack = msgspec.msgpack.Decoder(list[Any]).decode
_principals: dict[bytes, dict[str, Any]] = {}
_meta = msgspec.json.Decoder(dict[str, Any]).decode


def _b64(raw: bytes) -> bytes:
    return binascii.b2a_base64(raw, newline=False).translate(_URLSAFE)


async def _login(scope: Any, receive: Any, send: Any) -> None:
    """The baseline's login, then a session stored by the library and its cookie set."""
    user_id = "1"
    principal = await store.install_principal(user_id, Principal(epoch=new_epoch(), role="admin"))
    token = new_token(user_id)
    record = Session(policy=policy).login_record(
        user_id, token=token, meta={}, epoch=principal.epoch, now=time.time()
    )
    await store.create(storage_id(token), record)
    cookie = f"sessionId={keyring.sign(token)}; Path=/; HttpOnly; SameSite=Lax".encode()

    async def with_cookie(message: Any) -> None:
        if message["type"] == "http.response.start":
            message["headers"] = [*message.get("headers", ()), (b"set-cookie", cookie)]
        await send(message)

    await baseline(scope, receive, with_cookie)


async def _user_of(value: bytes) -> str | None:
    """The user of a cookie value, or ``None``: every check the library makes, inline."""
    if len(value) != 77 or value[54] != 0x2E:  # group (11) + random (43) + "." + MAC (22)
        return None
    token = value[:54]
    if not hmac.compare_digest(_b64(mac.digest(token)[:16])[:22], value[55:]):
        return None
    digest = _b64(sha256(token).digest()[:16])[:22].decode()
    blob, principals = await reads.hmget(b"sa:u:" + token[:11], digest[:11].encode(), b"p")
    if blob is None or principals is None:
        return None
    try:
        version, created, expires, seen, _, user, meta, _, bound, epoch, _ = _unpack(blob)
        # Remembered unless the login said otherwise: then the shorter absolute timeout.
        remembered = not meta or _meta(meta).get(REMEMBER) is not False
        known = _principals.get(principals)
        if known is None:
            known = _principals[principals] = msgspec.msgpack.decode(principals)
        current = known.get(user)
    except (TypeError, ValueError, AttributeError, msgspec.DecodeError):
        return None  # corrupt: no session
    now = time.time() * 1000
    absolute = LIFETIME if remembered else policy.lifetime(False)
    if (
        version != FORMAT_VERSION
        or bound != digest[11:]
        or created + expires <= now
        or created + seen + LIFETIME * 1000 <= now  # idle
        or created + absolute * 1000 <= now
        or current is None
    ):
        return None
    return user if current[0] == epoch and not current[2] else None


async def app(scope: Any, receive: Any, send: Any) -> None:
    """The bench contract: ``GET /dashboard`` is 200 with a live session's cookie, else 401."""
    if scope["type"] != "http":
        await baseline(scope, receive, send)
        return
    if scope["path"] == "/login":
        await _login(scope, receive, send)
        return
    value = None
    for name, raw in scope["headers"]:
        if name == b"cookie" and raw.startswith(_PREFIX) and raw.find(b";") < 0:
            # Two of them: a planted cookie; the library answers no session either.
            value = raw[len(_PREFIX) :] if value is None else b""
    user_id = None if value is None else await _user_of(value)
    if user_id is None and scope["path"] == "/dashboard":
        await JSONResponse({"error": "Authentication required"}, 401)(scope, receive, send)
        return
    scope["user_id"] = user_id

    async def private(message: Any) -> None:
        if message["type"] == "http.response.start":
            message["headers"] = [*message.get("headers", ()), *_PRIVATE]
        await send(message)

    await baseline(scope, receive, private)
