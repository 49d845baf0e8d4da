"""Hostile input against every guarded route: cookies, bodies, types, paths, methods, roles.

Every response any test here receives goes through :func:`check_response` (an httpx event hook,
and the raw ASGI helper calls it too): never a 5xx, never a CR or LF in a response header, and
on an API error always a JSON ``{"error": "..."}`` body. On top of that each test asserts that
the bad input grants no access and, where the route could change something, that the users
table and every user's sessions are exactly as they were.
"""

from __future__ import annotations

import base64
import json
import logging
import uuid
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

import httpx
import pyotp
import pytest
from fastapi import FastAPI
from pwdlib.hashers.argon2 import Argon2Hasher
from pwdlib.hashers.bcrypt import BcryptHasher

from sessionauth.auth.passwords import PasswordHasher
from sessionauth.server.app import create_app
from sessionauth.server.schemas import MAX_TRANSFER
from sessionauth.server.settings import Settings
from sessionauth.stores.users import User, normalize_email
from sessionauth.tokens import Keyring, new_token
from tests.support.asgi import http_scope

PASSWORD = "correct horse battery"
NEW_PASSWORD = "a brand new passphrase"
COOKIE = "session"  # development: no Secure, no __Host- prefix
BASE = "http://testserver"
TRUSTED_ORIGIN = "https://app.example.com"
AUTH_REQUIRED = {"error": "Authentication required"}
INSUFFICIENT = {"error": "Insufficient permissions"}
INVALID = {"error": "Invalid credentials"}
UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})
PASSKEY_ID = "AAAAAAAAAAAAAAAAAAAAAA"  # 16 zero bytes: no passkey of anyone's

RawHeaders = list[tuple[bytes, bytes]]


# -- every response --------------------------------------------------------------------------


def check_response(
    method: str, status: int, headers: RawHeaders, body: bytes, *, html_ok: bool = False
) -> None:
    """The invariants of every answer, whatever was sent."""
    assert status < 500, f"{method} answered {status}: {body[:300]!r}"
    for name, value in headers:
        assert b"\r" not in name + value, f"CR in response header {name!r}: {value!r}"
        assert b"\n" not in name + value, f"LF in response header {name!r}: {value!r}"
        assert not name.lower().startswith(b"x-injected"), f"injected header {name!r}"
    content_type = next((v for k, v in headers if k.lower() == b"content-type"), b"")
    if status < 400 or method == "HEAD" or (html_ok and content_type.startswith(b"text/html")):
        return
    assert content_type.startswith(b"application/json"), f"{status} with {content_type!r}"
    payload = json.loads(body)
    assert isinstance(payload, dict), payload
    assert isinstance(payload.get("error"), str), payload
    assert payload["error"], payload


async def _hook(response: httpx.Response) -> None:
    await response.aread()
    accept = response.request.headers.get("accept", "")
    check_response(
        response.request.method,
        response.status_code,
        list(response.headers.raw),
        response.content,
        html_ok="text/html" in accept,
    )


def denied(status: int) -> bool:
    """No access: anything but a 2xx (a redirect to the login page or a slash is not access)."""
    return not 200 <= status < 300


@dataclass
class RawResponse:
    """An answer to :func:`raw_request`, checked like every other."""

    status: int
    headers: RawHeaders
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    def header(self, name: bytes) -> bytes | None:
        return next((v for k, v in self.headers if k.lower() == name), None)


async def raw_request(
    app: FastAPI,
    method: str,
    raw_path: bytes,
    headers: Sequence[tuple[bytes, bytes]] = (),
    body: bytes = b"",
    query: bytes = b"",
) -> RawResponse:
    """Drive the ASGI app with exactly these bytes: no client normalises or refuses anything.

    The path in the scope is the percent-decoded ``raw_path``, as uvicorn and hypercorn give it.
    """
    path = unquote(raw_path.decode("latin-1"), encoding="latin-1")
    scope = http_scope(method, path, headers, raw_path=raw_path, query=query)
    sent = False
    status = 0
    response_headers: RawHeaders = []
    chunks: list[bytes] = []

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status, response_headers
        if message["type"] == "http.response.start":
            status = message["status"]
            response_headers = list(message.get("headers", []))
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))

    await app(scope, receive, send)
    accept = next((v for k, v in headers if k == b"accept"), b"")
    response = RawResponse(status, response_headers, b"".join(chunks))
    check_response(method, status, response.headers, response.body, html_ok=b"text/html" in accept)
    return response


# -- the routes of DESIGN.md section 7 that need a session -----------------------------------


@dataclass(frozen=True)
class Route:
    """A guarded route; ``{victim}`` is another user's id, ``{handle}`` one of their sessions."""

    method: str
    template: str
    level: str  # "user" (any session) or "admin"
    body: dict[str, Any] | None = None
    variant: str = ""  # tells apart two bodies of one route in the test ids

    def __str__(self) -> str:
        return f"{self.method} {self.template}" + (f" ({self.variant})" if self.variant else "")


ROUTES = [
    Route("GET", "/dashboard", "user"),
    Route("GET", "/admin", "admin"),
    Route("DELETE", "/users/{victim}", "admin"),
    Route("POST", "/api/transfer", "user", {"amount": 10}),
    Route("GET", "/me", "user"),
    Route("GET", "/sessions", "user"),
    Route("DELETE", "/sessions/{handle}", "user"),
    Route("POST", "/sessions/revoke-others", "user"),
    Route(
        "POST", "/password", "user", {"current_password": PASSWORD, "new_password": NEW_PASSWORD}
    ),
    Route("GET", "/users", "admin"),
    Route(
        "POST",
        "/users",
        "admin",
        {"email": "mallory@example.com", "password": PASSWORD, "role": "admin"},
    ),
    Route("PATCH", "/users/{victim}", "admin", {"role": "admin", "disabled": True}),
    Route("POST", "/users/{victim}/revoke-sessions", "admin"),
    Route("POST", "/mfa/totp/setup", "user"),
    Route("POST", "/mfa/totp/confirm", "user", {"code": "123456"}),
    Route("POST", "/mfa/totp/disable", "user", {"code": "123456"}),
    # The same route's other body: a recovery code instead (a user who lost the app).
    Route("POST", "/mfa/totp/disable", "user", {"recoveryCode": "AAAAA-AAAAA"}, "recovery"),
    Route("POST", "/mfa/recovery-codes", "user"),
    Route("GET", "/passkeys", "user"),
    Route("POST", "/passkeys/register/options", "user"),
    Route("POST", "/passkeys/register", "user", {"credential": {"id": "AAAA"}, "name": "Key"}),
    Route("PATCH", "/passkeys/" + PASSKEY_ID, "user", {"name": "Key"}),
    Route("DELETE", "/passkeys/" + PASSKEY_ID, "user"),
    Route("POST", "/logout", "user"),
]
ADMIN_ROUTES = [r for r in ROUTES if r.level == "admin"]
UNSAFE_ROUTES = [r for r in ROUTES if r.method in UNSAFE]
BODY_ROUTES = [r for r in ROUTES if r.body is not None]


def route_owner(route: Route) -> str:
    """Who may legitimately call ``route``."""
    return "admin" if route.level == "admin" else "alice"


@dataclass(frozen=True)
class State:
    """What a refused request must leave alone: every account, and every user's sessions."""

    users: tuple[tuple[int, str, str, bool, str], ...]
    sessions: tuple[tuple[int, tuple[str, ...]], ...]


@dataclass
class World:
    """The app in its lifespan; an admin, alice and bob (the victim), each signed in."""

    app: FastAPI
    users: dict[str, User] = field(default_factory=dict)
    clients: dict[str, httpx.AsyncClient] = field(default_factory=dict)
    tokens: dict[str, str] = field(default_factory=dict)
    handles: dict[str, str] = field(default_factory=dict)
    loads: list[str] = field(default_factory=list)
    _opened: list[httpx.AsyncClient] = field(default_factory=list)

    def client(self, **kwargs: Any) -> httpx.AsyncClient:
        """A fresh client (its own cookie jar) whose every response is checked."""
        client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=self.app),
            base_url=BASE,
            event_hooks={"response": [_hook]},
            **kwargs,
        )
        self._opened.append(client)
        return client

    def cookie(self, who: str) -> str:
        """The raw session cookie value of ``who``."""
        value = self.clients[who].cookies.get(COOKIE)
        assert value is not None
        return value

    def path(self, route: Route) -> str:
        return route.template.format(victim=self.users["bob"].id, handle=self.handles["bob"])

    async def add_user(self, name: str, email: str, role: str = "user") -> User:
        auth = self.app.state.authenticator
        user: User = await auth.users.create(email, await auth.hasher.hash(PASSWORD), role=role)
        self.users[name] = user
        return user

    async def sign_in(self, name: str) -> None:
        client = self.client()
        response = await client.post(
            "/login", json={"email": self.users[name].email, "password": PASSWORD}
        )
        assert response.status_code == 200, response.text
        token = await client.get("/csrf-token")
        self.clients[name] = client
        self.tokens[name] = token.json()["csrfToken"]
        sessions = (await client.get("/sessions")).json()["sessions"]
        self.handles[name] = next(s["handle"] for s in sessions if s["current"])

    def csrf(self, who: str) -> dict[str, str]:
        return {"X-CSRF-Token": self.tokens[who]}

    async def call(
        self,
        who: str | None,
        route: Route,
        *,
        csrf: bool = True,
        method: str | None = None,
        url: str | None = None,
        **kwargs: Any,
    ) -> httpx.Response:
        """Send ``route`` as ``who`` (``None``: anonymous), with its valid body unless given."""
        client = self.clients[who] if who is not None else self.client()
        headers = dict(kwargs.pop("headers", {}))
        if csrf and who is not None:
            headers.update(self.csrf(who))
        if route.body is not None and not {"json", "content", "data", "files"} & kwargs.keys():
            kwargs["json"] = route.body
        return await client.request(
            method or route.method, url or self.path(route), headers=headers, **kwargs
        )

    async def state(self) -> State:
        auth = self.app.state.authenticator
        users = await auth.users.list()
        sessions = []
        for user in users:
            infos = await auth.all_sessions(user.id)
            sessions.append((user.id, tuple(sorted(info.handle for info in infos))))
        return State(
            users=tuple((u.id, u.email, u.role, u.disabled, u.password_hash) for u in users),
            sessions=tuple(sessions),
        )

    async def aclose(self) -> None:
        for client in self._opened:
            await client.aclose()


@pytest.fixture
async def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[World]:
    settings = Settings(
        env="development",
        database_url=f"sqlite:///{tmp_path / 'users.db'}",
        data_dir=tmp_path / "data",
        secret="s" * 40,
        allowed_origins=(TRUSTED_ORIGIN,),
    )
    app = create_app(settings, hasher=PasswordHasher.for_tests())
    async with app.router.lifespan_context(app):
        running = World(app)
        await running.add_user("admin", "root@example.com", role="admin")
        await running.add_user("alice", "alice@example.com")
        await running.add_user("bob", "bob@example.com")
        for name in ("admin", "alice", "bob"):
            await running.sign_in(name)
        store = app.state.authenticator.sessions
        load = store.load

        async def counting_load(sid: str) -> Any:
            running.loads.append(sid)
            return await load(sid)

        # The middleware and the authenticator share this store object.
        monkeypatch.setattr(store, "load", counting_load)
        running.loads.clear()
        yield running
        await running.aclose()


@pytest.fixture
def hash_calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every argon2 or bcrypt hash and verify the process runs, by name."""
    calls: list[str] = []
    for cls in (Argon2Hasher, BcryptHasher):
        for name in ("hash", "verify"):
            original = getattr(cls, name)

            def counting(
                self: Any, *args: Any, _original: Any = original, _name: str = name, **kw: Any
            ) -> Any:
                calls.append(_name)
                return _original(self, *args, **kw)

            monkeypatch.setattr(cls, name, counting)
    return calls


@pytest.fixture
def security_log(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    with caplog.at_level(logging.DEBUG, logger="sessionauth"):
        yield caplog


# -- cookies ---------------------------------------------------------------------------------


def _other_key_signature(value: str) -> str:
    token = value.split(".", 1)[0]
    return Keyring.generate().sign(token)


def _flip_first_mac_char(value: str) -> str:
    token, mac = value.split(".", 1)
    return f"{token}.{'B' if mac[0] == 'A' else 'A'}{mac[1:]}"


CookieCase = Callable[[str], list[bytes]]
"""Given alice's valid cookie value, the raw ``Cookie`` header(s) to send."""

MALFORMED_COOKIES: dict[str, CookieCase] = {
    "garbage": lambda v: [b"session=garbage"],
    "empty": lambda v: [b"session="],
    "name-only": lambda v: [b"session"],
    "nameless-valid-value": lambda v: [f"={v}".encode()],
    "bare-valid-value": lambda v: [v.encode()],
    "other-case-name": lambda v: [f"SESSION={v}".encode()],
    "prefixed-name": lambda v: [f"__Host-session={v}".encode()],
    "duplicated-valid": lambda v: [f"session={v}; session={v}".encode()],
    "duplicated-forged-first": lambda v: [
        f"session={_flip_first_mac_char(v)}; session={v}".encode()
    ],
    "duplicated-valid-last-empty": lambda v: [f"session={v}; session=".encode()],
    "duplicated-across-headers": lambda v: [f"session={v}".encode(), f"session={v}".encode()],
    "quoted": lambda v: [f'session="{v}"'.encode()],
    "escaped-quotes": lambda v: [f'session=\\"{v}\\"'.encode()],
    "semicolon-inside-quotes": lambda v: [f'session="x;session={v}"'.encode()],
    "quoted-with-trailing-semicolon": lambda v: [f'session="{v};"'.encode()],
    "comma-joined": lambda v: [f"session={v}, session={v}".encode()],
    "nul-suffix": lambda v: [f"session={v}".encode() + b"\x00"],
    "nul-inside": lambda v: [f"session={v[:10]}".encode() + b"\x00" + v[11:].encode()],
    "utf8-char-inside": lambda v: [f"session={v[:-1]}é".encode()],
    "latin1-high-bytes": lambda v: [f"session={v[:-2]}".encode() + b"\xff\xfe"],
    "utf8-bom": lambda v: [b"session=\xef\xbb\xbf" + v.encode()],
    "truncated": lambda v: [f"session={v[:-1]}".encode()],
    "extended": lambda v: [f"session={v}A".encode()],
    "oversized-4k-value": lambda v: [b"session=" + b"A" * 4096],
    "valid-inside-64k-header": lambda v: [b"pad=" + b"x" * 65536 + f"; session={v}".encode()],
    "forged-mac": lambda v: [f"session={_flip_first_mac_char(v)}".encode()],
    "foreign-key-mac": lambda v: [f"session={_other_key_signature(v)}".encode()],
    "no-mac": lambda v: [f"session={v.split('.')[0]}".encode()],
    "mac-only": lambda v: [f"session={v.split('.')[1]}".encode()],
    "swapped-halves": lambda v: [f"session={v.split('.')[1]}.{v.split('.')[0]}".encode()],
    "crlf-injected": lambda v: [f"session={v}\r\nx-injected: 1".encode()],
}


@pytest.mark.parametrize("case", list(MALFORMED_COOKIES), ids=str)
async def test_malformed_cookies_are_no_session_on_every_route(world: World, case: str) -> None:
    """Malformed, duplicated, quoted, oversized or forged cookies: 401 everywhere, no lookup."""
    before = await world.state()
    cookies = MALFORMED_COOKIES[case](world.cookie("alice"))
    for route in ROUTES:
        headers = [(b"cookie", value) for value in cookies]
        headers += [(b"x-csrf-token", world.tokens["alice"].encode())]
        body = b""
        if route.body is not None:
            headers.append((b"content-type", b"application/json"))
            body = json.dumps(route.body).encode()
        response = await raw_request(
            world.app, route.method, world.path(route).encode(), headers, body
        )
        assert (response.status, response.json()) == (401, AUTH_REQUIRED), f"{route}: {case}"
    assert world.loads == [], "a malformed cookie cost a store lookup"
    assert await world.state() == before


async def test_the_valid_cookie_is_the_positive_control(world: World) -> None:
    """The same harness with alice's real cookie reaches the route (the cases above can fail)."""
    headers = [(b"cookie", f"session={world.cookie('alice')}".encode())]
    response = await raw_request(world.app, "GET", b"/dashboard", headers)
    assert (response.status, response.json()) == (200, {"userId": world.users["alice"].id})
    assert len(world.loads) == 1


@pytest.mark.parametrize("position", range(1, 4))
async def test_non_canonical_mac_encodings_are_no_session(world: World, position: int) -> None:
    """A MAC that decodes to the right bytes but is not the issued text is not a session."""
    value = world.cookie("alice")
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    # The last of the 22 MAC characters carries 2 bits; its 4 low bits are padding.
    index = alphabet.index(value[-1])
    variant = value[:-1] + alphabet[(index & ~0b1111) | ((index + position) & 0b1111)]
    assert variant != value
    response = await world.client().get("/dashboard", headers={"cookie": f"session={variant}"})
    assert (response.status_code, response.json()) == (401, AUTH_REQUIRED)
    assert world.loads == []


async def test_a_validly_signed_but_never_issued_token_is_never_adopted(world: World) -> None:
    """Strict mode: a token signed with the real key but never issued is replaced, not adopted."""
    forged = world.app.state.keyring.sign(new_token())
    client = world.client()
    client.cookies.set(COOKIE, forged)
    assert (await client.get("/dashboard")).status_code == 401
    minted = await client.get("/csrf-token")
    assert minted.status_code == 200
    assert forged not in minted.headers.get("set-cookie", "")
    login = await client.post(
        "/login",
        json={"email": "alice@example.com", "password": PASSWORD},
        headers={"X-CSRF-Token": minted.json()["csrfToken"]},  # the pre-session cookie's
    )
    assert login.status_code == 200
    assert forged not in login.headers["set-cookie"]
    again = world.client()
    again.cookies.set(COOKIE, forged)
    assert (await again.get("/dashboard")).status_code == 401


# -- bodies: size, content type, syntax, types -----------------------------------------------


def _padded(route: Route, size: int) -> bytes:
    body = dict(route.body or {})
    body["pad"] = "x" * size
    return json.dumps(body).encode()


@pytest.mark.parametrize("size", [1024 * 1024, 10 * 1024 * 1024], ids=["1MB", "10MB"])
@pytest.mark.parametrize("route", UNSAFE_ROUTES, ids=str)
async def test_oversized_bodies_are_refused_without_a_server_error(
    world: World, route: Route, size: int
) -> None:
    """1 MB and 10 MB JSON bodies, declared (or streamed to a JSON route): 413, no change."""
    before = await world.state()
    owner = route_owner(route)
    declared = await world.call(
        owner, route, content=_padded(route, size), headers={"content-type": "application/json"}
    )
    assert declared.status_code == 413

    async def chunks() -> AsyncIterator[bytes]:
        data = _padded(route, size)
        for start in range(0, len(data), 64 * 1024):
            yield data[start : start + 64 * 1024]

    if route.body is not None:
        # Streamed without a length, a body is cut off where the handler reads past the limit;
        # routes that take no body never read it (nothing is buffered, so nothing to refuse).
        streamed = await world.call(
            owner, route, content=chunks(), headers={"content-type": "application/json"}
        )
        assert streamed.status_code in (400, 413)
    anonymous = await world.call(
        None, route, content=_padded(route, size), headers={"content-type": "application/json"}
    )
    assert anonymous.status_code == 413
    assert await world.state() == before


WRONG_CONTENT_TYPES: dict[str, dict[str, Any]] = {
    "text/plain": {"content": b'{"amount": 1}', "headers": {"content-type": "text/plain"}},
    "form": {"data": {"amount": "1", "email": "x@example.com", "password": PASSWORD}},
    "multipart": {"files": {"amount": ("a.json", b'{"amount": 1}', "application/json")}},
    "missing": {"content": b'{"amount": 1}', "headers": {"content-type": ""}},
    "json-lookalike": {
        "content": b'{"amount": 1}',
        "headers": {"content-type": "application/jsonx"},
    },
    "json-listed-second": {
        "content": b'{"amount": 1}',
        "headers": {"content-type": "text/plain, application/json"},
    },
}


@pytest.mark.parametrize("kind", list(WRONG_CONTENT_TYPES), ids=str)
async def test_json_endpoints_refuse_other_content_types(world: World, kind: str) -> None:
    """Text, form, multipart or no content type on every JSON endpoint: 415, nothing changes."""
    before = await world.state()
    for route in UNSAFE_ROUTES:
        options = dict(WRONG_CONTENT_TYPES[kind])
        headers = dict(options.pop("headers", {}))
        if headers.get("content-type") == "":
            # httpx adds no content type to raw bytes; make sure none is sent.
            headers.pop("content-type")
        response = await world.call(route_owner(route), route, headers=headers, **options)
        assert (response.status_code, response.json()) == (
            415,
            {"error": "Content-Type must be application/json"},
        ), f"{route}"
    assert await world.state() == before


async def test_two_content_type_headers_are_refused(world: World) -> None:
    """Content-Type sent twice (JSON and form): 415, since which one counts is ambiguous."""
    before = await world.state()
    for route in UNSAFE_ROUTES:
        owner = route_owner(route)
        headers = [
            (b"cookie", f"session={world.cookie(owner)}".encode()),
            (b"x-csrf-token", world.tokens[owner].encode()),
            (b"content-type", b"application/json"),
            (b"content-type", b"application/x-www-form-urlencoded"),
        ]
        body = json.dumps(route.body or {}).encode()
        path = world.path(route).encode()
        response = await raw_request(world.app, route.method, path, headers, body)
        assert response.status == 415, f"{route}"
    assert await world.state() == before


MALFORMED_JSON = {
    "empty": b"",
    "truncated-object": b'{"amount": 1',
    "truncated-string": b'{"email": "alice@exa',
    "open-brace": b"{",
    "not-json": b"amount=1",
    "nul": b"\x00",
    "invalid-utf8": b'{"email": "\xff\xfe"}',
    "trailing-garbage": b'{"amount": 1}}',
    "trailing-comma": b'{"amount": 1,}',
    "single-quotes": b"{'amount': 1}",
    "comment": b'{"amount": 1 /* x */}',
    "unquoted-key": b"{amount: 1}",
    "deep-nesting": b"[" * 20_000 + b"]" * 20_000,
    "array": b"[]",
    "null": b"null",
    "string": b'"{}"',
    "number": b"1",
    "true": b"true",
    "empty-object": b"{}",
}


@pytest.mark.parametrize("kind", list(MALFORMED_JSON), ids=str)
async def test_malformed_or_truncated_json_is_a_400(world: World, kind: str) -> None:
    """Non-JSON, truncated, or non-object JSON to every JSON route: 400, nothing changes."""
    before = await world.state()
    for route in BODY_ROUTES:
        response = await world.call(
            route_owner(route),
            route,
            content=MALFORMED_JSON[kind],
            headers={"content-type": "application/json"},
        )
        assert response.status_code == 400, f"{route}: {response.text}"
    assert await world.state() == before


HUGE_INT = "9" * 5000  # more digits than Python's int parsing limit (4300)
BEYOND_FLOAT = "1" + "0" * 309  # parses as an int, overflows a float: it once raised a 500
BAD_VALUES: dict[str, Any] = {
    "true": True,
    "false": False,
    "null": None,
    "array": ["alice@example.com"],
    "empty-array": [],
    "object": {"$ne": None},
    "nested": {"a": {"b": {"c": ["d"]}}},
    "int": 1,
    "float": 1.5,
    "negative": -1,
    "huge-int": "@@HUGE@@",
    "beyond-float": "@@BEYOND_FLOAT@@",
    "above-the-bound": MAX_TRANSFER + 1,
    "NaN": "@@NaN@@",
    "Infinity": "@@Infinity@@",
    "-Infinity": "@@-Infinity@@",
    "exponent-overflow": "@@1e999@@",
    "string": "10",
}
# JSON literals json.dumps would not write: substituted into the text after dumping.
_LITERALS = {
    '"@@HUGE@@"': HUGE_INT,
    '"@@BEYOND_FLOAT@@"': BEYOND_FLOAT,
    '"@@NaN@@"': "NaN",
    '"@@Infinity@@"': "Infinity",
    '"@@-Infinity@@"': "-Infinity",
    '"@@1e999@@"': "1e999",
}


def _dumps(body: dict[str, Any]) -> bytes:
    text = json.dumps(body)
    for marker, literal in _LITERALS.items():
        text = text.replace(marker, literal)
    return text.encode()


def _is_acceptable(route: Route, name: str, value: Any) -> bool:
    """Values that are valid for a field, which the type tests must not send."""
    if isinstance(value, str) and not value.startswith("@@"):
        # A string is the right type for a string field; its content is another test's job.
        return isinstance((route.body or {})[name], str)
    if name == "credential":
        # Any JSON object is the right type: the ceremony judges its inside (see below).
        return isinstance(value, dict)
    if route.template == "/api/transfer":
        return (
            isinstance(value, int | float)
            and not isinstance(value, bool)
            and 0 < value <= MAX_TRANSFER
        )
    if route.method == "PATCH":
        # None means "leave unchanged" and a bool is what `disabled` is.
        return value is None or (name == "disabled" and isinstance(value, bool))
    return False


@pytest.mark.parametrize("kind", list(BAD_VALUES), ids=str)
async def test_wrong_json_types_are_a_400_never_coerced(world: World, kind: str) -> None:
    """Booleans, arrays, nulls, objects, huge ints, NaN/Infinity in every field: 400, no change."""
    before = await world.state()
    value = BAD_VALUES[kind]
    sent = 0
    for route in BODY_ROUTES:
        for name in route.body or {}:
            if _is_acceptable(route, name, value):
                continue
            body = {**(route.body or {}), name: value}
            response = await world.call(
                route_owner(route),
                route,
                content=_dumps(body),
                headers={"content-type": "application/json"},
            )
            assert response.status_code == 400, f"{route} {name}={kind}: {response.text}"
            error = response.json()["error"]
            assert error.startswith(("Invalid request", "There was an error")), error
            sent += 1
    assert sent > 0
    assert await world.state() == before


REMEMBER_VALUES = {
    **{kind: value for kind, value in BAD_VALUES.items() if not isinstance(value, bool)},
    "string-true": "true",
    "string-on": "on",
    "string-empty": "",
}


@pytest.mark.parametrize("kind", list(REMEMBER_VALUES), ids=str)
async def test_remember_must_be_a_json_boolean(world: World, kind: str) -> None:
    """POST /login's remember: anything but true or false is a 400 naming it, and no login."""
    before = await world.state()
    client = world.client()
    body = {"email": world.users["alice"].email, "password": PASSWORD}
    response = await client.post(
        "/login",
        content=_dumps({**body, "remember": REMEMBER_VALUES[kind]}),
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    # A body the JSON parser itself refuses (a huge integer) is refused before any field.
    assert error.startswith("Invalid request") or error == "There was an error parsing the body"
    assert "remember" in error or kind == "huge-int", error
    assert "set-cookie" not in response.headers
    assert await world.state() == before


@pytest.mark.parametrize("remember", [True, False])
async def test_remember_as_a_boolean_logs_in(world: World, remember: bool) -> None:
    """The positive control: a JSON true or false in remember is a login."""
    response = await world.client().post(
        "/login",
        json={"email": world.users["alice"].email, "password": PASSWORD, "remember": remember},
    )
    assert response.status_code == 200, response.text
    assert ("Max-Age=" in response.headers["set-cookie"]) is remember


@pytest.mark.parametrize("extra", ["role", "is_admin", "user_id", "__proto__", "email", "disabled"])
async def test_unknown_fields_are_a_400(world: World, extra: str) -> None:
    """Mass assignment: a field a route does not take (role, user_id...) is a 400, not ignored."""
    before = await world.state()
    for route in BODY_ROUTES:
        if extra in (route.body or {}):
            continue
        value = "admin" if extra != "user_id" else world.users["admin"].id
        response = await world.call(
            route_owner(route), route, json={**(route.body or {}), extra: value}
        )
        assert response.status_code == 400, f"{route}: {response.text}"
    assert await world.state() == before


# -- passwords: length before hashing --------------------------------------------------------

LONG_PASSWORDS = {
    "1MB": "x" * 1024 * 1024,
    "schema-limit": "x" * 5000,
    "policy-limit": "x" * 4000,
    "just-over": "x" * 1025,
    "nfkc-expanding": "\ufb03" * 1500,  # the ffi ligature: 1500 characters, 4500 after NFKC
}


def _password_requests(
    world: World, password: str
) -> list[tuple[str | None, str, str, dict[str, Any]]]:
    alice = world.users["alice"].email
    return [
        (None, "POST", "/login", {"email": alice, "password": password}),
        (None, "POST", "/login", {"email": "nobody@example.com", "password": password}),
        (
            "alice",
            "POST",
            "/password",
            {"current_password": password, "new_password": NEW_PASSWORD},
        ),
        ("alice", "POST", "/password", {"current_password": PASSWORD, "new_password": password}),
        ("admin", "POST", "/users", {"email": "new@example.com", "password": password}),
    ]


@pytest.mark.parametrize("kind", list(LONG_PASSWORDS), ids=str)
async def test_overlong_passwords_are_refused_before_any_hashing(
    world: World, hash_calls: list[str], kind: str
) -> None:
    """A 1 MB (or just over 1024 characters) password: 400/413 with no argon2/bcrypt call."""
    before = await world.state()
    for who, method, path, body in _password_requests(world, LONG_PASSWORDS[kind]):
        client = world.clients[who] if who else world.client()
        headers = world.csrf(who) if who else {}
        hash_calls.clear()
        response = await client.request(method, path, json=body, headers=headers)
        assert response.status_code in (400, 413), f"{path}: {response.text[:200]}"
        assert hash_calls == [], f"{path} {sorted(body)} hashed before refusing"
        assert COOKIE not in response.headers.get("set-cookie", "")
    assert await world.state() == before


# -- emails: SQL-shaped and look-alike -------------------------------------------------------

SQL_EMAILS = [
    "' OR 1=1 --",
    "' OR '1'='1",
    '" OR ""="',
    "alice@example.com' --",
    "alice@example.com' OR '1'='1",
    "root@example.com'; DROP TABLE sessionauth_users; --",
    "x@x.com' UNION SELECT 1, 'root@example.com', 'admin' --",
    "%",
    "%@example.com",
    "_lice@example.com",
    "%alice%",
    "*",
    "alice@example.com\\",
    "alice@example.com;",
]


@pytest.mark.parametrize("email", SQL_EMAILS)
async def test_sql_shaped_emails_never_log_in(world: World, email: str) -> None:
    """Injection and LIKE-wildcard emails with a real password: the uniform 401, no session."""
    before = await world.state()
    response = await world.client().post("/login", json={"email": email, "password": PASSWORD})
    assert (response.status_code, response.json()) == (401, INVALID)
    assert "set-cookie" not in response.headers
    assert await world.state() == before


@pytest.mark.parametrize("email", [e for e in SQL_EMAILS if "@" in e])
async def test_sql_shaped_emails_are_stored_literally(world: World, email: str) -> None:
    """An admin creating such an account stores the literal text and touches no other row."""
    before = await world.state()
    response = await world.clients["admin"].post(
        "/users", json={"email": email, "password": PASSWORD}, headers=world.csrf("admin")
    )
    after = await world.state()
    if response.status_code == 400:
        assert after == before
        return
    assert response.status_code == 201, response.text
    assert response.json()["user"]["email"] == normalize_email(email)
    assert response.json()["user"]["role"] == "user"
    assert after.users[: len(before.users)] == before.users
    assert len(after.users) == len(before.users) + 1


@pytest.mark.parametrize("handle", ["%", "*", "' OR 1=1 --", "%25", "_" * 43, "?", "[a-z]*"])
async def test_wildcard_handles_revoke_nothing(world: World, handle: str) -> None:
    """DELETE /sessions/{pattern}: 404, and no session of anyone (alice's own included) ends."""
    before = await world.state()
    response = await world.clients["alice"].delete(
        f"/sessions/{quote(handle, safe='')}", headers=world.csrf("alice")
    )
    assert (response.status_code, response.json()) == (404, {"error": "Session not found"})
    assert await world.state() == before


LOOKALIKE_EMAILS = {
    "cyrillic-a": "\u0430lice@example.com",
    "cyrillic-e-domain": "alice@\u0435xample.com",
    "greek-omicron-tld": "alice@example.c\u03bfm",
    "dotless-i": "al\u0131ce@example.com",
    "dotted-capital-i": "al\u0130ce@example.com",
    "zero-width-joiner": "ali\u200dce@example.com",
    "zero-width-space": "\u200balice@example.com",
    "zero-width-non-joiner": "alice\u200c@example.com",
    "soft-hyphen": "al\u00adice@example.com",
    "bom": "\ufeffalice@example.com",
    "right-to-left-override": "alice@example.com\u202e",
    "combining-dot": "alice\u0307@example.com",
    "trailing-dot-domain": "alice@example.com.",
    "nul": "alice@example.com\x00",
}


@pytest.mark.parametrize("kind", list(LOOKALIKE_EMAILS), ids=str)
async def test_lookalike_emails_do_not_match_the_real_account(world: World, kind: str) -> None:
    """Homoglyphs and invisible characters with alice's password: the uniform 401."""
    client = world.client()
    response = await client.post(
        "/login", json={"email": LOOKALIKE_EMAILS[kind], "password": PASSWORD}
    )
    assert (response.status_code, response.json()) == (401, INVALID)
    assert (await client.get("/dashboard")).status_code == 401


@pytest.mark.parametrize(
    ("email", "status"),
    [
        ("\uff41\uff4c\uff49\uff43\uff45@example.com", 409),  # fullwidth: NFKC-equal to alice
        ("\U0001d41alice@example.com", 409),  # mathematical bold a: NFKC-equal too
        ("ALICE@EXAMPLE.COM", 409),
        ("ali\u200dce@example.com", 400),
        ("\u200balice@example.com", 400),
        ("alice@example.com\u202e", 400),
        ("alice@example.com\r\nBcc: x@evil.example", 400),
    ],
)
async def test_lookalike_accounts_cannot_shadow_a_real_one(
    world: World, email: str, status: int
) -> None:
    """Creating a NFKC/case twin of alice is a 409; invisible characters are a 400."""
    before = await world.state()
    response = await world.clients["admin"].post(
        "/users", json={"email": email, "password": PASSWORD}, headers=world.csrf("admin")
    )
    assert response.status_code == status, response.text
    assert await world.state() == before


async def test_a_homoglyph_account_is_a_different_account(world: World) -> None:
    """A Cyrillic twin of alice is its own account: its login never yields alice's id."""
    response = await world.clients["admin"].post(
        "/users",
        json={"email": "\u0430lice@example.com", "password": NEW_PASSWORD},
        headers=world.csrf("admin"),
    )
    assert response.status_code == 201
    twin = response.json()["user"]["id"]
    assert twin != world.users["alice"].id
    client = world.client()
    login = await client.post(
        "/login", json={"email": "\u0430lice@example.com", "password": NEW_PASSWORD}
    )
    assert login.json()["user"]["id"] == twin
    assert (await client.get("/dashboard")).json() == {"userId": twin}


# -- CR/LF: in JSON fields and in headers that may be reflected ------------------------------

CRLF_PAYLOADS = [
    "\r\nX-Injected: yes",
    "\r\n\r\n<script>alert(1)</script>",
    "%0d%0aX-Injected: yes",
    "\nX-Injected: yes",
    "\u2028X-Injected: yes",
    "\u0085X-Injected: yes",
]
LOGIN = Route("POST", "/login", "anyone", {"email": "alice@example.com", "password": PASSWORD})
CRLF_FIELD_CASES = [
    pytest.param(route, name, payload, id=f"{route}-{name}-{i}")
    for route in [LOGIN, *BODY_ROUTES]
    for name, value in (route.body or {}).items()
    if isinstance(value, str)
    for i, payload in enumerate(CRLF_PAYLOADS)
]


@pytest.mark.parametrize(("route", "name", "payload"), CRLF_FIELD_CASES)
async def test_crlf_in_json_fields_never_reaches_a_header_or_a_log_line(
    world: World, security_log: pytest.LogCaptureFixture, route: Route, name: str, payload: str
) -> None:
    """CR/LF in any string field: no header or log line breaks, email/role refused."""
    before = await world.state()
    body = dict(route.body or {})
    body[name] = f"{body[name]}{payload}"
    who = None if route.level == "anyone" else route_owner(route)
    response = await world.call(who, route, json=body)
    if name in ("email", "role") and "%" not in payload:
        assert response.status_code in (400, 401), response.text
        assert await world.state() == before
    if route is LOGIN:
        assert response.status_code in (400, 401)
    for record in security_log.records:
        message = record.getMessage()
        assert not set(message) & set("\r\n\u2028\u0085"), message


REFLECTED_HEADERS = [
    b"user-agent",
    b"origin",
    b"referer",
    b"host",
    b"x-forwarded-for",
    b"forwarded",
    b"x-forwarded-host",
    b"x-forwarded-proto",
    b"accept",
    b"x-csrf-token",
    b"x-request-id",
]
RAW_CRLF = [b"x\r\nX-Injected: yes", b"x\nX-Injected: yes", b"x\rX-Injected: yes"]


REFLECTING_REQUESTS = [
    ("GET", b"/dashboard/", b"application/json"),  # the slash redirect builds a URL
    ("GET", b"/dashboard", b"text/html"),  # the login redirect reflects the path
    ("GET", b"/admin", b"application/json"),
    ("POST", b"/logout", b"application/json"),
    ("POST", b"/login", b"application/json"),
]


@pytest.mark.parametrize("name", REFLECTED_HEADERS, ids=lambda n: n.decode())
async def test_crlf_in_request_headers_is_never_reflected_raw(world: World, name: bytes) -> None:
    """CR/LF in any header a response might echo: no header split, no access, no change."""
    before = await world.state()
    for method, path, accept in REFLECTING_REQUESTS:
        for payload in RAW_CRLF:
            headers = [(b"accept", accept)] if name != b"accept" else []
            headers.append((name, payload))
            body = b""
            if path == b"/login":
                headers.append((b"content-type", b"application/json"))
                wrong = {"email": "alice@example.com", "password": "wrong password"}
                body = json.dumps(wrong).encode()
            response = await raw_request(world.app, method, path, headers, body)
            assert denied(response.status), f"{method} {path!r} {payload!r}"
    assert await world.state() == before


@pytest.mark.parametrize(
    "target",
    [
        b"/dashboard%0d%0aX-Injected:%20yes",
        b"/dashboard/%0d%0aX-Injected:%20yes/",
        b"/admin%0aX-Injected:%20yes",
        b"/%0d%0aX-Injected:%20yes/dashboard",
    ],
)
@pytest.mark.parametrize("accept", [b"text/html", b"application/json"])
async def test_crlf_in_the_path_is_never_reflected_raw(
    world: World, target: bytes, accept: bytes
) -> None:
    """A path carrying CR/LF (decoded by the server) cannot split a redirect or error header."""
    response = await raw_request(world.app, "GET", target, [(b"accept", accept)])
    assert denied(response.status)
    response = await raw_request(
        world.app, "GET", b"/dashboard", [(b"accept", accept)], query=b"next=%0d%0aX-Injected:1"
    )
    assert denied(response.status)


# -- paths and methods -----------------------------------------------------------------------


def _path_variants(path: str) -> dict[str, str]:
    head, tail = path[1], path[2:]
    return {
        "trailing-slash": f"{path}/",
        "upper-case": path.upper(),
        "double-slash": f"/{path}",
        "dot-segment": f"/.{path}",
        "dot-dot-segment": f"/x/..{path}",
        "ui-dot-dot": f"/ui/..{path}",
        "encoded-dot-dot": f"/ui/%2e%2e{path}",
        "matrix-param": f"{path};x",
        "encoded-slashes": path.replace("/", "%2F"),
        "encoded-inner-slash": "/" + path[1:].replace("/", "%2F"),
        "encoded-first-letter": f"/%{ord(head):02x}{tail}",
        "encoded-nul": f"{path}%00",
        "backslash": "\\" + path[1:],
        "trailing-dot": f"{path}.",
        "trailing-space": f"{path}%20",
        "fragment": f"{path}%23x",
    }


def _senders(route: Route) -> list[tuple[str | None, bool]]:
    """Who must be refused: anonymous, the wrong role (with a token), no CSRF token."""
    senders: list[tuple[str | None, bool]] = [(None, True)]
    if route.level == "admin":
        senders.append(("alice", True))
    if route.method in UNSAFE:
        senders.append((route_owner(route), False))
    return senders


@pytest.mark.parametrize("variant", list(_path_variants("/dashboard")), ids=str)
async def test_path_variants_grant_nothing(world: World, variant: str) -> None:
    """Slashes, case, encodings, dot segments, ';x' on every route: no 2xx for the refused."""
    before = await world.state()
    for route in ROUTES:
        target = _path_variants(world.path(route))[variant].encode()
        body = json.dumps(route.body).encode() if route.body is not None else b""
        json_type = [(b"content-type", b"application/json")] if route.body is not None else []
        for who, with_token in _senders(route):
            headers = list(json_type)
            if who is not None:
                headers.append((b"cookie", f"session={world.cookie(who)}".encode()))
                if with_token:
                    headers.append((b"x-csrf-token", world.tokens[who].encode()))
            response = await raw_request(world.app, route.method, target, headers, body)
            where = f"{who} {route.method} {target!r}: {response.status}"
            assert denied(response.status), where
            if 300 <= response.status < 400:
                location = response.header(b"location") or b""
                assert location.startswith((b"/", BASE.encode() + b"/")), where
    assert await world.state() == before


OTHER_METHODS = ["HEAD", "OPTIONS", "PUT", "PATCH", "POST", "GET", "DELETE", "TRACE", "PROPFIND"]


@pytest.mark.parametrize("method", OTHER_METHODS)
async def test_other_methods_grant_nothing(world: World, method: str) -> None:
    """HEAD/OPTIONS/PUT/PATCH/... on every route: no 2xx for anonymous, wrong role or no CSRF."""
    before = await world.state()
    for route in ROUTES:
        # HEAD is GET without the body (RFC 9110): it may answer whatever GET may.
        if method == route.method or (method, route.method) == ("HEAD", "GET"):
            continue
        senders: list[tuple[str | None, bool]] = [(None, True), ("alice", True)]
        if method in UNSAFE:
            senders.append((route_owner(route), False))
        for who, with_token in senders:
            response = await world.call(who, route, method=method, csrf=with_token)
            assert denied(response.status_code), f"{who} {method} {world.path(route)}"
    assert await world.state() == before


async def test_methods_are_case_sensitive(world: World) -> None:
    """A lower-case method (sent raw: httpx upper-cases) is never the route's, even with a token."""
    before = await world.state()
    for route in ROUTES:
        owner = route_owner(route)
        headers = [
            (b"cookie", f"session={world.cookie(owner)}".encode()),
            (b"x-csrf-token", world.tokens[owner].encode()),
            (b"content-type", b"application/json"),
        ]
        body = json.dumps(route.body).encode() if route.body is not None else b""
        path = world.path(route).encode()
        lowercase = await raw_request(world.app, route.method.lower(), path, headers, body)
        assert denied(lowercase.status), f"{route}"
    assert await world.state() == before


OVERRIDES = [
    {"headers": {"X-HTTP-Method-Override": "{m}"}},
    {"headers": {"X-Method-Override": "{m}"}},
    {"headers": {"X-HTTP-Method": "{m}"}},
    {"params": {"_method": "{m}"}},
    {"params": {"method": "{m}"}},
]


@pytest.mark.parametrize("override", range(len(OVERRIDES)))
async def test_method_override_from_a_safe_method_changes_nothing(
    world: World, override: int
) -> None:
    """GET + X-HTTP-Method-Override/X-Method-Override/?_method=: the GET is not upgraded."""
    before = await world.state()
    for route in UNSAFE_ROUTES:
        options = json.loads(json.dumps(OVERRIDES[override]).replace("{m}", route.method))
        response = await world.call(route_owner(route), route, method="GET", csrf=False, **options)
        if route.template == "/users":
            # GET /users is a route of its own: it must answer the list, not create anyone.
            assert response.status_code == 200
            assert list(response.json()) == ["users", "nextCursor"]
        else:
            assert denied(response.status_code), f"{route}"
    assert await world.state() == before


@pytest.mark.parametrize("route", [r for r in UNSAFE_ROUTES if r.method != "POST"], ids=str)
async def test_method_override_from_post_changes_nothing(world: World, route: Route) -> None:
    """POST with a valid token plus every override mechanism is not the DELETE/PATCH it names."""
    before = await world.state()
    owner = route_owner(route)
    headers = {
        "X-HTTP-Method-Override": route.method,
        "X-Method-Override": route.method,
        "X-HTTP-Method": route.method,
    }
    as_json = await world.call(
        owner,
        route,
        method="POST",
        headers=headers,
        params={"_method": route.method},
        json={**(route.body or {}), "_method": route.method},
    )
    assert denied(as_json.status_code)
    as_form = await world.call(
        owner,
        route,
        method="POST",
        csrf=False,
        headers=headers,
        data={"_method": route.method, "csrf_token": world.tokens[owner]},
    )
    assert denied(as_form.status_code)
    assert await world.state() == before


# -- client-asserted identity and roles ------------------------------------------------------


def _asserted_identity(world: World) -> dict[str, dict[str, Any]]:
    admin = world.users["admin"]
    return {
        "x-role": {"headers": {"X-Role": "admin"}},
        "x-user-role": {"headers": {"X-User-Role": "admin", "X-Roles": "admin"}},
        "x-user-id": {"headers": {"X-User-Id": str(admin.id)}},
        "x-forwarded-user": {
            "headers": {"X-Forwarded-User": admin.email, "X-Remote-User": admin.email}
        },
        "x-auth-request": {"headers": {"X-Auth-Request-Email": admin.email, "X-Admin": "true"}},
        "authorization": {"headers": {"Authorization": "Bearer admin"}},
        "basic-auth": {"auth": (admin.email, PASSWORD)},
        "query": {"params": {"role": "admin", "user_id": str(admin.id), "admin": "true"}},
        "extra-cookies": {"cookie": f"role=admin; user_id={admin.id}; admin=1; is_admin=true"},
    }


IDENTITY_KINDS = [
    "x-role",
    "x-user-role",
    "x-user-id",
    "x-forwarded-user",
    "x-auth-request",
    "authorization",
    "basic-auth",
    "query",
    "extra-cookies",
]


@pytest.mark.parametrize("kind", IDENTITY_KINDS)
async def test_client_asserted_roles_never_grant_admin(world: World, kind: str) -> None:
    """X-Role, X-User-Id, ?role=admin, role cookies, Basic auth: alice 403, anonymous 401."""
    before = await world.state()
    options = _asserted_identity(world)[kind]
    extra = options.pop("cookie", None)
    cases = [("alice", (403, INSUFFICIENT)), (None, (401, AUTH_REQUIRED))]
    for route, (who, expected) in [(r, c) for r in ADMIN_ROUTES for c in cases]:
        # Every cookie in one explicit header, next to the real session cookie if any.
        jar = [f"session={world.cookie(who)}"] if who else []
        headers = dict(options.get("headers", {}))
        if extra or jar:
            headers["cookie"] = "; ".join([*jar, *([extra] if extra else [])])
        if who:
            headers.update(world.csrf(who))
        response = await world.client().request(
            route.method,
            world.path(route),
            json=route.body,
            **{**options, "headers": headers},
        )
        assert (response.status_code, response.json()) == expected, f"{who}: {response.text}"
    assert await world.state() == before


async def test_a_user_cannot_promote_or_recreate_themself(world: World) -> None:
    """alice PATCHing her own role, or POSTing an admin account, is 403 and changes nothing."""
    before = await world.state()
    alice = world.users["alice"]
    client = world.clients["alice"]
    patch = await client.patch(
        f"/users/{alice.id}", json={"role": "admin"}, headers=world.csrf("alice")
    )
    assert (patch.status_code, patch.json()) == (403, INSUFFICIENT)
    create = await client.post(
        "/users",
        json={"email": "alice2@example.com", "password": PASSWORD, "role": "admin"},
        headers=world.csrf("alice"),
    )
    assert (create.status_code, create.json()) == (403, INSUFFICIENT)
    login = await world.client().post(
        "/login", json={"email": alice.email, "password": PASSWORD, "role": "admin"}
    )
    assert login.status_code == 400
    assert (await client.get("/admin")).status_code == 403
    assert await world.state() == before


def _forged_admin_cookies(world: World) -> dict[str, str]:
    admin_value = world.cookie("admin")
    admin_token = admin_value.split(".")[0]
    handle = world.handles["admin"]
    claims = base64.urlsafe_b64encode(
        json.dumps({"user_id": str(world.users["admin"].id), "role": "admin"}).encode()
    ).decode()
    jwt_none = "eyJhbGciOiJub25lIn0.eyJyb2xlIjoiYWRtaW4iLCJzdWIiOiIxIn0."
    return {
        "json-claims": claims,
        "jwt-alg-none": jwt_none,
        "admin-word": "admin",
        "admin-handle": handle,
        "admin-handle-with-admin-mac": f"{handle}.{admin_value.split('.')[1]}",
        "admin-handle-with-handle-mac": f"{handle}.{handle[:22]}",
        "admin-handle-as-token": f"{handle.replace('.', '')}.{admin_value.split('.')[1]}",
        "admin-token-foreign-key": Keyring.generate().sign(admin_token),
        "admin-token-no-mac": admin_token,
        "admin-token-forged-mac": _flip_first_mac_char(admin_value),
        "random-uuid": uuid.uuid4().hex,
    }


FORGED_KINDS = [
    "json-claims",
    "jwt-alg-none",
    "admin-word",
    "admin-handle",
    "admin-handle-with-admin-mac",
    "admin-handle-with-handle-mac",
    "admin-handle-as-token",
    "admin-token-foreign-key",
    "admin-token-no-mac",
    "admin-token-forged-mac",
    "random-uuid",
]


@pytest.mark.parametrize("kind", FORGED_KINDS)
async def test_forged_admin_cookies_are_no_session(world: World, kind: str) -> None:
    """Claims, alg-none JWTs, the admin's handle or re-signed token: 401 on every route."""
    before = await world.state()
    value = _forged_admin_cookies(world)[kind]
    for route in ROUTES:
        client = world.client()
        client.cookies.set(COOKIE, value)
        response = await client.request(
            route.method, world.path(route), json=route.body, headers=world.csrf("admin")
        )
        assert (response.status_code, response.json()) == (401, AUTH_REQUIRED), f"{route}"
    assert world.loads == []
    assert await world.state() == before


# -- the TOTP forms of the account page (sessionauth.server.totp_pages) ----------------------

TOTP_FORMS = [
    "/ui/mfa/totp/setup",
    "/ui/mfa/totp/confirm",
    "/ui/mfa/recovery-codes",
    "/ui/mfa/totp/disable",
]
FORM = {"Content-Type": "application/x-www-form-urlencoded"}
FORM_BODIES: dict[str, dict[str, Any]] = {
    "no-body": {},
    "no-code": {"data": {"other": "1"}},
    "empty-code": {"data": {"code": ""}},
    "long-code": {"data": {"code": "1" * 60_000}},
    "nul": {"data": {"code": "123\x00456"}},
    "crlf": {"data": {"code": "123456\r\nX-Injected: yes"}},
    "other-digits": {"data": {"code": "\u0661\u0662\u0663\u0664\u0665\u0666"}},
    "fullwidth-digits": {"data": {"code": "\uff11\uff12\uff13\uff14\uff15\uff16"}},
    "negative": {"data": {"code": "-12345"}},
    "repeated": {"content": b"code=123456&code=654321", "headers": FORM},
    "bad-percent": {"content": b"code=%ZZ%&%%=%", "headers": FORM},
    "file": {"files": {"code": ("code.txt", b"123456", "text/plain")}},
    "json": {"json": {"code": ["123456"]}},
    "oversized": {"content": b"code=" + b"1" * 2_000_000, "headers": FORM},
    # The disable form's other field: a recovery code instead of the app's.
    "both-codes": {"data": {"code": "123456", "recovery_code": "AAAAA-AAAAA"}},
    "empty-recovery-code": {"data": {"recovery_code": ""}},
    "long-recovery-code": {"data": {"recovery_code": "A" * 60_000}},
    "nul-recovery-code": {"data": {"recovery_code": "AAAAA\x00AAAAA"}},
    "crlf-recovery-code": {"data": {"recovery_code": "AAAAA-AAAAA\r\nX-Injected: yes"}},
    "repeated-recovery-code": {
        "content": b"recovery_code=AAAAA-AAAAA&recovery_code=BBBBB-BBBBB",
        "headers": FORM,
    },
    "file-recovery-code": {"files": {"recovery_code": ("code.txt", b"AAAAA-AAAAA", "text/plain")}},
}
# Where a refused or judged form may send the browser: fixed pages, never text it sent.
FORM_LOCATIONS = {"/account", "/account/totp", "/account/totp?error=invalid"}


async def _enrol_alice(world: World) -> str:
    """Turn TOTP on for alice (her CSRF token follows the new session token); the secret."""
    client = world.clients["alice"]
    setup = await client.post("/mfa/totp/setup", headers=world.csrf("alice"))
    secret: str = setup.json()["secret"]
    code = pyotp.TOTP(secret).now()
    confirm = await client.post(
        "/mfa/totp/confirm", json={"code": code}, headers=world.csrf("alice")
    )
    assert confirm.status_code == 200, confirm.text
    world.tokens["alice"] = (await client.get("/csrf-token")).json()["csrfToken"]
    return secret


async def _factor_state(world: World) -> tuple[bool, int]:
    factors = world.app.state.authenticator.factors
    user_id = str(world.users["alice"].id)
    return await factors.totp_enabled(user_id), await factors.store.count_recovery_codes(user_id)


@pytest.mark.parametrize("kind", FORM_BODIES)
@pytest.mark.parametrize("enrolled", [False, True], ids=["totp-off", "totp-on"])
async def test_totp_forms_refuse_malformed_codes(world: World, kind: str, enrolled: bool) -> None:
    """Odd, oversized, repeated or mistyped codes: 303 to a fixed page or a 4xx, TOTP as it was."""
    if enrolled:
        await _enrol_alice(world)
    before = await _factor_state(world)
    client = world.clients["alice"]
    for path in TOTP_FORMS:
        if path == "/ui/mfa/recovery-codes" and enrolled:
            continue  # a valid request whatever the body: it renews the codes (tested elsewhere)
        options = dict(FORM_BODIES[kind])
        headers = {**world.csrf("alice"), **options.pop("headers", {})}
        response = await client.post(path, headers=headers, **options)
        assert response.status_code in (303, 400, 413, 415), f"{path}: {response.status_code}"
        if response.status_code == 303:
            assert response.headers["location"] in FORM_LOCATIONS, path
        # A setup started by a bad request of another form must not stand in for the check.
        if path == "/ui/mfa/totp/setup" and not enrolled:
            continue
        assert await _factor_state(world) == before, path


@pytest.mark.parametrize(
    "query",
    [
        "error=%3Cscript%3Ealert(1)%3C/script%3E",
        "error=",
        "error=invalid&error=x",
        "error=" + "i" * 5000,
    ],
)
async def test_enrolment_page_never_shows_text_from_the_url(world: World, query: str) -> None:
    """The enrolment page's error comes from a fixed table: nothing of the query is echoed."""
    client = world.clients["alice"]
    await client.post("/mfa/totp/setup", headers=world.csrf("alice"))
    page = await client.get(f"/account/totp?{query}", headers={"Accept": "text/html"})
    assert page.status_code == 200
    assert "<script>alert" not in page.text
    assert "iiiiiiiiii" not in page.text
    assert page.headers["cache-control"] == "no-store"


async def test_totp_forms_without_a_session_or_token_change_nothing(world: World) -> None:
    """Anonymous: 303 to the login page; signed in without the CSRF token: 403; TOTP unchanged."""
    await _enrol_alice(world)
    before = await _factor_state(world)
    for path in TOTP_FORMS:
        anonymous = await world.client().post(path, data={"code": "123456"}, headers=FORM)
        assert anonymous.status_code in (303, 403), path
        if anonymous.status_code == 303:
            assert anonymous.headers["location"].startswith("/login?notice=expired&next=/account")
        forged = await world.clients["alice"].post(path, data={"code": "123456"})
        assert forged.status_code == 403, path
    assert await _factor_state(world) == before


# -- passkeys: the credential's inside, and the sign-in routes open to anyone ----------------

_B64_JUNK = ["", "!!!!", "A", "=" * 8, "\u00e9\u00e9", "A" * 6000]
BAD_CREDENTIALS: dict[str, Any] = {
    "empty": {},
    "id-only": {"id": "AAAA"},
    "response-string": {"id": "AAAA", "rawId": "AAAA", "type": "public-key", "response": "x"},
    "response-array": {"id": "AAAA", "rawId": "AAAA", "type": "public-key", "response": [1]},
    **{
        f"bad-base64-{i}": {
            "id": junk,
            "rawId": junk,
            "type": "public-key",
            "response": {
                "clientDataJSON": junk,
                "attestationObject": junk,
                "authenticatorData": junk,
                "signature": junk,
                "userHandle": junk,
                "transports": [junk, 1, None],
            },
        }
        for i, junk in enumerate(_B64_JUNK)
    },
    "wrong-types": {
        "id": 1,
        "rawId": None,
        "type": True,
        "response": {"clientDataJSON": [], "userHandle": {}, "signature": 1.5},
    },
    "huge-user-handle": {
        "id": "AAAA",
        "rawId": "AAAA",
        "type": "public-key",
        "response": {"userHandle": "OTk5" * 2000, "clientDataJSON": "e30"},
    },
    "unicode-digit-handle": {
        "id": "AAAA",
        "rawId": "AAAA",
        "type": "public-key",
        "response": {"userHandle": "2aE", "clientDataJSON": "e30"},
    },
    "client-data-not-json": {
        "id": "AAAA",
        "rawId": "AAAA",
        "type": "public-key",
        "response": {
            "clientDataJSON": "bm90IGpzb24",
            "attestationObject": "oA",
            "authenticatorData": "AA",
            "signature": "AA",
            "userHandle": "MQ",
        },
    },
    "deep": {"response": json.loads("[" * 200 + "]" * 200)},
}


@pytest.mark.parametrize("kind", list(BAD_CREDENTIALS))
async def test_malformed_passkey_credentials_are_a_4xx(world: World, kind: str) -> None:
    """Junk credentials to registration (after its options) and sign-in: 400/401, no change."""
    before = await world.state()
    credential = BAD_CREDENTIALS[kind]
    alice = world.clients["alice"]
    headers = world.csrf("alice")
    options = await alice.post("/passkeys/register/options", headers=headers)
    assert options.status_code == 200
    registered = await alice.post(
        "/passkeys/register", json={"credential": credential}, headers=headers
    )
    assert (registered.status_code, registered.json()) == (400, {"error": "Invalid passkey"})
    anonymous = world.client()
    token = {"X-CSRF-Token": (await anonymous.get("/csrf-token")).json()["csrfToken"]}
    assert (await anonymous.post("/passkeys/login/options", headers=token)).status_code == 200
    signed = await anonymous.post("/passkeys/login", json={"credential": credential}, headers=token)
    assert (signed.status_code, signed.json()) == (401, {"error": "Invalid passkey"})
    assert (await anonymous.get("/me")).status_code == 401
    assert await world.state() == before


PASSKEY_LOGIN_BODIES: dict[str, bytes] = {
    **{f"malformed-{kind}": body for kind, body in MALFORMED_JSON.items()},
    "credential-missing": b"{}",
    "credential-string": b'{"credential": "{}"}',
    "credential-array": b'{"credential": []}',
    "credential-null": b'{"credential": null}',
    "remember-string": b'{"credential": {}, "remember": "true"}',
    "remember-int": b'{"credential": {}, "remember": 1}',
    "unknown-field": b'{"credential": {}, "isAdmin": true}',
}


@pytest.mark.parametrize("kind", list(PASSKEY_LOGIN_BODIES))
async def test_bad_passkey_sign_in_bodies_are_a_400(world: World, kind: str) -> None:
    """POST /passkeys/login with junk JSON, wrong types or unknown fields: 400, no session."""
    anonymous = world.client()
    token = {"X-CSRF-Token": (await anonymous.get("/csrf-token")).json()["csrfToken"]}
    await anonymous.post("/passkeys/login/options", headers=token)
    response = await anonymous.post(
        "/passkeys/login",
        content=PASSKEY_LOGIN_BODIES[kind],
        headers={**token, "content-type": "application/json"},
    )
    assert response.status_code == 400, response.text
    assert (await anonymous.get("/me")).status_code == 401


@pytest.mark.parametrize("name", ["x" * 257, "x" * 100_000])
async def test_overlong_passkey_names_are_a_4xx(world: World, name: str) -> None:
    """A name over 256 characters (or over the body limit) is refused before any lookup."""
    route = Route("PATCH", "/passkeys/" + PASSKEY_ID, "user", {"name": name})
    response = await world.call("alice", route)
    assert response.status_code in (400, 413), response.text


@pytest.mark.parametrize(
    "passkey_id", ["A", "AAAAA", "!!", "A" * 1365, "..", "%00", "AA%2FAA", "AA=="]
)
async def test_passkey_ids_that_are_no_base64url_are_a_4xx(world: World, passkey_id: str) -> None:
    """Bad base64url, too long, dot segments, NUL, slashes: 400/404/405, never a 500."""
    for method in ("PATCH", "DELETE"):
        route = Route(
            method, "/passkeys/" + passkey_id, "user", {"name": "n"} if method == "PATCH" else None
        )
        response = await world.call("alice", route)
        assert response.status_code in (400, 404, 405), (method, passkey_id, response.text)
